package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/internal/size"
)

// decoder walks a yaml.Node tree into typed structs, collecting every
// problem with its position instead of stopping at the first.
type decoder struct {
	file string
	errs Errors
	// raw holds the text of scalars before ${ENV} expansion, so that
	// messages quote what the file says and never an expanded secret.
	raw map[*yaml.Node]string
	// nodes maps every decoded path (sources[0].wait_time) to its node,
	// for checks that run after decoding.
	nodes map[string]*yaml.Node
	// failed holds the paths that could not be decoded, so later checks
	// do not pile a second message onto the same mistake.
	failed map[string]bool
	// expanded lists (value, original text) of expanded scalars, longest
	// value first, for scrub.
	expanded [][2]string
	// visits counts nodes decoded; aliases can make a small file decode to
	// a huge one, so there is a budget.
	visits, maxVisits int
	// zeros are the numbers and durations the file sets to 0, for
	// defaultedZeros.
	zeros []zero
}

// zero is a value the file sets to 0: where, and the field decoded into.
type zero struct {
	n    *yaml.Node
	path string
	v    reflect.Value
}

// defaultedZeros reports every 0 in the file that defaults replaced: a
// field whose zero value means "the default" cannot take 0, and silently
// using the default (retry.attempts: 0 meaning 5) is worse than saying so.
// It runs after the defaults are set.
func (d *decoder) defaultedZeros() {
	for _, z := range d.zeros {
		if z.v.IsZero() {
			continue // 0 is a value it takes
		}
		def := fmt.Sprint(z.v.Interface())
		if z.v.Type() == durationType {
			def = size.Duration(time.Duration(z.v.Int()))
		}
		d.errorf(z.n, z.path, "0 is not allowed: leave the key out for the default (%s), or write another value", def)
	}
}

// overBudget counts a visit and reports, once, a file whose aliases expand
// it beyond its budget.
func (d *decoder) overBudget(n *yaml.Node, path string) bool {
	d.visits++
	if d.visits == d.maxVisits+1 {
		d.errorf(n, path, "aliases expand the file to more than %d values", d.maxVisits)
	}
	return d.visits > d.maxVisits
}

// countNodes counts the nodes of a tree without following aliases.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, ch := range n.Content {
		c += countNodes(ch)
	}
	return c
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Msg: d.scrub(fmt.Sprintf(format, args...))}
	if d.failed != nil {
		d.failed[path] = true
	}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// scrub replaces every expanded value in msg with the text it came from:
// a message may quote a value (an unknown name, an address) that came from
// a secret. Values under six bytes are left: they are not secrets, and
// replacing them would garble words.
func (d *decoder) scrub(msg string) string {
	if len(d.expanded) == 0 {
		for n, raw := range d.raw {
			if len(n.Value) >= 6 {
				d.expanded = append(d.expanded, [2]string{n.Value, raw})
			}
		}
		slices.SortFunc(d.expanded, func(a, b [2]string) int { return len(b[0]) - len(a[0]) })
	}
	for _, e := range d.expanded {
		msg = strings.ReplaceAll(msg, e[0], e[1])
	}
	return msg
}

// text is a scalar's value as written in the file, for messages.
func (d *decoder) text(n *yaml.Node) string {
	if s, ok := d.raw[n]; ok {
		return s
	}
	return n.Value
}

// nodeDecoder is implemented by config types that decode themselves.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	nodeDecoderType = reflect.TypeFor[nodeDecoder]()
)

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// describe names what a node is, for "expected X, got Y" messages, quoting
// the file's text rather than an expanded value.
func (d *decoder) describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "the boolean " + d.text(n)
	case "!!int", "!!float":
		return "the number " + d.text(n)
	}
	return fmt.Sprintf("the string %q", d.text(n))
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decode stores n into v. A null node leaves v as it is (its zero value, to
// which defaults apply later).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.overBudget(n, path) {
		return
	}
	n = deref(n)
	d.nodes[path] = n
	if isNull(n) {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a duration such as 30s, got %s", d.describe(n))
			return
		}
		dur, err := parseDuration(n.Value)
		if err != nil {
			d.errorf(n, path, "invalid duration %q: %v", d.text(n), err)
			return
		}
		v.SetInt(int64(dur))
		if dur == 0 {
			d.zeros = append(d.zeros, zero{n, path, v})
		}
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", d.describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", d.describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := parseBool(n)
		if !ok {
			d.errorf(n, path, "expected true or false, got %s", d.describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errorf(n, path, "expected a whole number, got %s", d.describe(n))
			return
		}
		v.SetInt(i)
		if i == 0 {
			d.zeros = append(d.zeros, zero{n, path, v})
		}
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.errorf(n, path, "expected a number, got %s", d.describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", d.describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if isNull(deref(c)) {
				d.errorf(c, indexPath(path, i), "an empty entry (null) in a list")
				continue
			}
			d.decode(c, s.Index(i), indexPath(path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "expected a mapping, got %s", d.describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		d.eachKey(n, path, func(key string, k, val *yaml.Node) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, joinPath(path, key))
			m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
		})
		v.Set(m)
	case reflect.Struct:
		d.decodeStruct(n, v, path, nil)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	default:
		panic(fmt.Sprintf("config: cannot decode into %s", v.Type())) // a wiring bug
	}
}

func parseBool(n *yaml.Node) (value, ok bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, false
	}
	b, err := strconv.ParseBool(n.Value)
	return b, err == nil
}

// eachKey calls f for every key of a mapping, reporting non-string and
// duplicate keys instead of passing them on.
func (d *decoder) eachKey(n *yaml.Node, path string, f func(key string, k, v *yaml.Node)) {
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be strings, got %s", d.describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			d.errorf(k, path, "merge keys (<<) are not supported")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, joinPath(path, k.Value), "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		f(k.Value, k, v)
	}
}

// field is one YAML key of a struct.
type field struct {
	key   string
	index []int
}

var fieldCache sync.Map // reflect.Type → []field

// fieldsOf lists the YAML keys of a struct type, from `yaml:"key"` tags;
// untagged and `yaml:"-"` fields are not part of the file.
func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for _, sf := range reflect.VisibleFields(t) {
		tag := sf.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		fs = append(fs, field{key: name, index: sf.Index})
	}
	fieldCache.Store(t, fs)
	return fs
}

func keysOf(fs []field, extra ...string) []string {
	keys := slices.Clone(extra)
	for _, f := range fs {
		keys = append(keys, f.key)
	}
	return keys
}

// decodeStruct decodes a mapping into a struct's tagged fields. Keys in
// known are accepted without being stored (the caller handles them).
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, known []string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", d.describe(n))
		return
	}
	fs := fieldsOf(v.Type())
	d.eachKey(n, path, func(key string, k, val *yaml.Node) {
		if slices.Contains(known, key) {
			return
		}
		for _, f := range fs {
			if f.key == key {
				d.decode(val, v.FieldByIndex(f.index), joinPath(path, key))
				return
			}
		}
		d.errorf(k, path, "unknown key %q%s", key, suggest(key, keysOf(fs, known...)))
	})
}

// suggest returns ` (did you mean "x"?)` when a candidate is close to key,
// or the list of valid keys when there are few.
func suggest(key string, candidates []string) string {
	best, bestDist := "", 1<<30
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(key), c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best != "" && bestDist <= max(2, len(key)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(candidates) > 0 && len(candidates) <= 8 {
		return " (valid: " + strings.Join(candidates, ", ") + ")"
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, with a
// transposition of neighbours counting as one edit.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
