package router

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Limits on one pattern, as EventBridge has.
const (
	maxAlternatives = 1024 // sub-patterns after $or expansion
	maxFields       = 256  // fields in one sub-pattern
)

// PatternError is a pattern EventBridge would reject, with where and why.
type PatternError struct {
	// Path leads from the pattern's root to the offending value: object
	// keys, and list positions written [i].
	Path []string
	Msg  string
}

func (e *PatternError) Error() string {
	var b strings.Builder
	for _, p := range e.Path {
		if !strings.HasPrefix(p, "[") && b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	if b.Len() == 0 {
		return e.Msg
	}
	return b.String() + ": " + e.Msg
}

// Pattern is a compiled EventBridge event pattern. It is immutable and safe
// for concurrent use.
type Pattern struct {
	src  []byte
	subs []subPattern // alternatives: $or expanded, OR-ed

	once   sync.Once
	single *Matcher
}

// subPattern is one alternative of a pattern: fields AND-ed, sorted by key.
type subPattern struct {
	fields []*field
}

// field is the condition on one flattened key (path components joined
// with "."): some predicate must hold for some value at the key, or, when
// absent is set, the key may have no value.
type field struct {
	key    string
	preds  []pred
	absent bool // exists: false is one of the alternatives
}

type predKind uint8

const (
	pString      predKind = iota // s, textual
	pIP                          // ip, an address literal
	pNumber                      // f, a representable number
	pNumText                     // s, a number EventBridge cannot compare: matched by spelling
	pTrue                        //
	pFalse                       //
	pNull                        //
	pPrefix                      // s
	pSuffix                      // s
	pPrefixFold                  // s, case-folded
	pSuffixFold                  // s, case-folded
	pFold                        // s, case-folded (equals-ignore-case)
	pWildcard                    // glob
	pRange                       // lo, hi
	pCIDR                        // cidr
	pExists                      // exists: true
	pAnythingBut                 // but
)

// pred is one element of a field's value list.
type pred struct {
	kind   predKind
	s      string
	f      float64
	ip     netip.Addr
	cidr   netip.Prefix
	glob   *glob
	lo, hi float64
	loIncl bool
	hiIncl bool
	but    *anythingBut
}

type butKind uint8

const (
	butStrings butKind = iota
	butNumbers
	butPrefix
	butSuffix
	butFold
	butWildcard
)

// anythingBut excludes values; every other value, of any type, matches.
type anythingBut struct {
	kind  butKind
	strs  []string // strings, prefixes, suffixes, or folded strings
	nums  []float64
	globs []*glob
}

// ParsePattern compiles an event pattern. An invalid pattern yields a
// *SyntaxError for malformed JSON, or one or more *PatternErrors (joined)
// naming the path and operator at fault.
func ParsePattern(data []byte) (*Pattern, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	c := &compiler{}
	if v.kind != jObj {
		return nil, &PatternError{Msg: "a pattern must be a JSON object, got " + article(v.kind)}
	}
	subs := c.object(v, "", false, nil, nil, false)
	if len(c.errs) == 0 {
		for _, s := range subs {
			if len(s.fields) > maxFields {
				c.errorf(nil, "a pattern may test at most %d fields, this one tests %d", maxFields, len(s.fields))
				break
			}
		}
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	p := &Pattern{src: data}
	for _, s := range subs {
		slices.SortFunc(s.fields, func(a, b *field) int { return strings.Compare(a.key, b.key) })
		p.subs = append(p.subs, subPattern{fields: s.fields})
	}
	return p, nil
}

// String returns the pattern's JSON as given.
func (p *Pattern) String() string { return string(p.src) }

// Match reports whether event, a JSON object, matches the pattern. It is
// for one-off tests; a Matcher matches many patterns at once.
func (p *Pattern) Match(event []byte) (bool, error) {
	p.once.Do(func() { p.single = NewMatcher([]*Pattern{p}) })
	m, err := p.single.Match(event, nil)
	return len(m) > 0, err
}

func article(k jkind) string {
	switch k {
	case jArr, jObj:
		return "an " + k.String()
	}
	return "a " + k.String()
}

type compiler struct {
	errs []error
}

func (c *compiler) errorf(path []string, format string, args ...any) {
	c.errs = append(c.errs, &PatternError{Path: slices.Clone(path), Msg: fmt.Sprintf(format, args...)})
}

// partial is a sub-pattern being built: fields by key, in first-seen order.
type partial struct {
	fields []*field
}

func (p *partial) set(f *field) {
	for i, g := range p.fields {
		if g.key == f.key {
			p.fields[i] = f // a later occurrence replaces an earlier one
			return
		}
	}
	p.fields = append(p.fields, f)
}

func (p *partial) clone() *partial {
	return &partial{fields: slices.Clone(p.fields)}
}

// orReserved are names that may not be field names inside $or.
var orReserved = map[string]bool{
	"exactly": true, "equals-ignore-case": true, "prefix": true, "suffix": true, "anything-but": true,
	"exists": true, "wildcard": true, "numeric": true, "cidr": true, "=": true, "<": true, "<=": true,
	">": true, ">=": true,
}

// object applies the members of an object pattern to the sub-patterns in
// subs (nil: none yet) and returns the new list. prefix is the flattened key
// of the object, when nested (the top level has none; an object under the
// key "" has the prefix "").
func (c *compiler) object(v *jvalue, prefix string, nested bool, path []string, subs []*partial, inOr bool) []*partial {
	if len(v.keys) == 0 {
		c.errorf(path, "empty objects are not allowed")
		return subs
	}
	for i, k := range v.keys {
		val := v.vals[i]
		kpath := append(path, k)
		if k == "$or" {
			subs = c.or(val, prefix, nested, kpath, subs)
			continue
		}
		if inOr && orReserved[k] {
			c.errorf(kpath, "%q is an operator and cannot be a field name inside $or (operators go inside a field's list, as in \"field\": [{%q: ...}])", k, k)
			continue
		}
		key := k
		if nested {
			key = prefix + "." + k
		}
		switch val.kind {
		case jObj:
			subs = c.object(val, key, true, kpath, subs, inOr)
		case jArr:
			f := c.field(val, key, kpath)
			if f == nil {
				continue
			}
			if len(subs) == 0 {
				subs = []*partial{{}}
			}
			for _, s := range subs {
				s.set(f)
			}
		default:
			c.errorf(kpath, "must be a list of values (such as [%s]) or an object, got %s", val, article(val.kind))
		}
	}
	return subs
}

// or expands "$or": [alternatives...] against subs.
func (c *compiler) or(v *jvalue, prefix string, nested bool, path []string, subs []*partial) []*partial {
	if v.kind != jArr {
		c.errorf(path, "$or must be a list of at least two objects, got %s", article(v.kind))
		return subs
	}
	if len(v.arr) < 2 {
		c.errorf(path, "$or must have at least two alternatives, got %d", len(v.arr))
		return subs
	}
	base := subs
	if len(base) == 0 {
		base = []*partial{{}}
	}
	var out []*partial
	for i, alt := range v.arr {
		apath := append(path, "["+strconv.Itoa(i)+"]")
		if alt.kind != jObj {
			c.errorf(apath, "each $or alternative must be an object, got %s", article(alt.kind))
			continue
		}
		copies := make([]*partial, len(base))
		for j, b := range base {
			copies[j] = b.clone()
		}
		out = append(out, c.object(alt, prefix, nested, apath, copies, true)...)
		if len(out) > maxAlternatives {
			c.errorf(path, "the pattern expands to more than %d alternatives", maxAlternatives)
			return subs
		}
	}
	return out
}

// field compiles a value list.
func (c *compiler) field(v *jvalue, key string, path []string) *field {
	if len(v.arr) == 0 {
		c.errorf(path, "empty lists are not allowed: list the values to match")
		return nil
	}
	f := &field{key: key}
	n := len(c.errs)
	for i, el := range v.arr {
		epath := append(path, "["+strconv.Itoa(i)+"]")
		switch el.kind {
		case jStr:
			if ip, ok := parseIP([]byte(el.s)); ok {
				f.preds = append(f.preds, pred{kind: pIP, ip: ip, s: el.s})
			} else {
				f.preds = append(f.preds, pred{kind: pString, s: el.s})
			}
		case jNum:
			if x, ok := parseNumber([]byte(el.s)); ok {
				f.preds = append(f.preds, pred{kind: pNumber, f: x, s: el.s})
			} else {
				f.preds = append(f.preds, pred{kind: pNumText, s: el.s})
			}
		case jBool:
			if el.b {
				f.preds = append(f.preds, pred{kind: pTrue})
			} else {
				f.preds = append(f.preds, pred{kind: pFalse})
			}
		case jNull:
			f.preds = append(f.preds, pred{kind: pNull})
		case jArr:
			c.errorf(epath, "a value must be a string, number, true, false, null or an operator object, got a list")
		case jObj:
			c.operator(el, epath, f)
		}
	}
	if len(c.errs) > n {
		return nil
	}
	return f
}

var operators = []string{"anything-but", "cidr", "equals-ignore-case", "exists", "numeric", "prefix", "suffix", "wildcard"}

// operator compiles {"op": operand} into f.
func (c *compiler) operator(v *jvalue, path []string, f *field) {
	if len(v.keys) == 0 {
		c.errorf(path, "empty operator object: want one of %s", strings.Join(operators, ", "))
		return
	}
	op, arg := v.keys[0], v.vals[0]
	if !slices.Contains(operators, op) {
		c.errorf(path, "unknown operator %q (valid: %s)", op, strings.Join(operators, ", "))
		return
	}
	if len(v.keys) > 1 {
		c.errorf(path, "%s: an operator object holds exactly one operator, found %q too", op, v.keys[1])
		return
	}
	switch op {
	case "prefix", "suffix":
		kind, foldKind := pPrefix, pPrefixFold
		if op == "suffix" {
			kind, foldKind = pSuffix, pSuffixFold
		}
		switch {
		case arg.kind == jStr:
			f.preds = append(f.preds, pred{kind: kind, s: arg.s})
		case arg.kind == jObj && len(arg.keys) == 1 && arg.keys[0] == "equals-ignore-case":
			if arg.vals[0].kind != jStr {
				c.errorf(path, "%s: equals-ignore-case takes a string, got %s", op, article(arg.vals[0].kind))
				return
			}
			f.preds = append(f.preds, pred{kind: foldKind, s: string(appendFold(nil, []byte(arg.vals[0].s)))})
		case arg.kind == jObj:
			c.errorf(path, "%s: takes a string or {\"equals-ignore-case\": string}", op)
		default:
			c.errorf(path, "%s: takes a string, got %s", op, article(arg.kind))
		}
	case "equals-ignore-case":
		if arg.kind != jStr {
			c.errorf(path, "equals-ignore-case: takes a string, got %s", article(arg.kind))
			return
		}
		f.preds = append(f.preds, pred{kind: pFold, s: string(appendFold(nil, []byte(arg.s)))})
	case "wildcard":
		if arg.kind != jStr {
			c.errorf(path, "wildcard: takes a string, got %s", article(arg.kind))
			return
		}
		g, err := compileGlob(arg.s)
		if err != nil {
			c.errorf(path, "wildcard: %v", err)
			return
		}
		f.preds = append(f.preds, pred{kind: pWildcard, glob: g, s: arg.s})
	case "exists":
		if arg.kind != jBool {
			c.errorf(path, "exists: takes true or false, got %s", arg)
			return
		}
		if arg.b {
			f.preds = append(f.preds, pred{kind: pExists})
		} else {
			f.absent = true
		}
	case "cidr":
		if arg.kind != jStr {
			c.errorf(path, "cidr: takes a string such as \"10.0.0.0/24\", got %s", article(arg.kind))
			return
		}
		p, err := parseCIDR(arg.s)
		if err != nil {
			c.errorf(path, "cidr: %v", err)
			return
		}
		f.preds = append(f.preds, pred{kind: pCIDR, cidr: p, s: arg.s})
	case "numeric":
		c.numeric(arg, path, f)
	case "anything-but":
		c.anythingBut(arg, path, f)
	}
}

// numeric compiles ["op", N] or [">"|">=", N, "<"|"<=", N].
func (c *compiler) numeric(arg *jvalue, path []string, f *field) {
	if arg.kind != jArr {
		c.errorf(path, "numeric: takes a list such as [\">\", 0, \"<=\", 5], got %s", article(arg.kind))
		return
	}
	a := arg.arr
	operand := func(i int) (float64, bool) {
		op := a[i-1].s
		if i >= len(a) || a[i].kind != jNum {
			got := "nothing"
			if i < len(a) {
				got = a[i].String()
			}
			c.errorf(path, "numeric: %q must be followed by a number, got %s", op, got)
			return 0, false
		}
		x, ok := parseNumber([]byte(a[i].s))
		if !ok {
			c.errorf(path, "numeric: cannot compare %s: numbers must be finite and have at most the precision of a 64-bit float", a[i].s)
			return 0, false
		}
		return x, true
	}
	if len(a) == 0 || a[0].kind != jStr {
		c.errorf(path, "numeric: must start with an operator (=, <, <=, >, >=), got %s", firstOr(a))
		return
	}
	switch op := a[0].s; op {
	case "=", "<", "<=":
		x, ok := operand(1)
		if !ok {
			return
		}
		if len(a) > 2 {
			c.errorf(path, "numeric: nothing may follow %q %s (a range starts with its lower bound, as in [\">\", 0, \"<\", 5])", op, a[1])
			return
		}
		switch op {
		case "=":
			f.preds = append(f.preds, pred{kind: pNumber, f: x, s: a[1].s})
		case "<":
			f.preds = append(f.preds, pred{kind: pRange, lo: math.Inf(-1), hi: x})
		case "<=":
			f.preds = append(f.preds, pred{kind: pRange, lo: math.Inf(-1), hi: x, hiIncl: true})
		}
	case ">", ">=":
		lo, ok := operand(1)
		if !ok {
			return
		}
		p := pred{kind: pRange, lo: lo, loIncl: op == ">=", hi: math.Inf(1)}
		if len(a) > 2 {
			if a[2].kind != jStr {
				c.errorf(path, "numeric: expected \"<\" or \"<=\" after %q %s, got %s", op, a[1], a[2])
				return
			}
			if a[2].s != "<" && a[2].s != "<=" {
				c.errorf(path, "numeric: the upper bound's operator must be \"<\" or \"<=\", got %q", a[2].s)
				return
			}
			hi, ok := operand(3)
			if !ok {
				return
			}
			if len(a) > 4 {
				c.errorf(path, "numeric: too many elements: a range has at most two bounds")
				return
			}
			if !(lo < hi) {
				c.errorf(path, "numeric: the lower bound %s must be less than the upper bound %s", a[1], a[3])
				return
			}
			p.hi, p.hiIncl = hi, a[2].s == "<="
		}
		f.preds = append(f.preds, p)
	default:
		c.errorf(path, "numeric: unknown operator %q (valid: =, <, <=, >, >=)", op)
	}
}

func firstOr(a []*jvalue) string {
	if len(a) == 0 {
		return "an empty list"
	}
	return a[0].String()
}

// anythingBut compiles the operand of anything-but.
func (c *compiler) anythingBut(arg *jvalue, path []string, f *field) {
	b := &anythingBut{}
	switch arg.kind {
	case jStr:
		b.kind, b.strs = butStrings, []string{arg.s}
	case jNum:
		x, ok := parseNumber([]byte(arg.s))
		if !ok {
			c.errorf(path, "anything-but: cannot compare %s: numbers must be finite and have at most the precision of a 64-bit float", arg.s)
			return
		}
		b.kind, b.nums = butNumbers, []float64{x}
	case jArr:
		if len(arg.arr) == 0 {
			c.errorf(path, "anything-but: the list is empty")
			return
		}
		for _, el := range arg.arr {
			switch el.kind {
			case jStr:
				b.strs = append(b.strs, el.s)
			case jNum:
				x, ok := parseNumber([]byte(el.s))
				if !ok {
					c.errorf(path, "anything-but: cannot compare %s: numbers must be finite and have at most the precision of a 64-bit float", el.s)
					return
				}
				b.nums = append(b.nums, x)
			default:
				c.errorf(path, "anything-but: a list holds only strings or only numbers, got %s", article(el.kind))
				return
			}
		}
		if len(b.strs) > 0 && len(b.nums) > 0 {
			c.errorf(path, "anything-but: a list holds only strings or only numbers, not both")
			return
		}
		if len(b.nums) > 0 {
			b.kind = butNumbers
		}
	case jObj:
		if len(arg.keys) != 1 {
			if len(arg.keys) == 0 {
				c.errorf(path, "anything-but: empty object: want prefix, suffix, equals-ignore-case or wildcard")
			} else {
				c.errorf(path, "anything-but: an operator object holds exactly one operator, found %d", len(arg.keys))
			}
			return
		}
		op, val := arg.keys[0], arg.vals[0]
		switch op {
		case "prefix":
			b.kind = butPrefix
		case "suffix":
			b.kind = butSuffix
		case "equals-ignore-case":
			b.kind = butFold
		case "wildcard":
			b.kind = butWildcard
		default:
			c.errorf(path, "anything-but: %q is not allowed inside anything-but (valid: prefix, suffix, equals-ignore-case, wildcard)", op)
			return
		}
		var items []*jvalue
		switch val.kind {
		case jStr:
			items = []*jvalue{val}
		case jArr:
			if len(val.arr) == 0 {
				c.errorf(path, "anything-but: %s: the list is empty", op)
				return
			}
			items = val.arr
		default:
			c.errorf(path, "anything-but: %s takes a string or a list of strings, got %s", op, article(val.kind))
			return
		}
		for _, it := range items {
			if it.kind != jStr {
				c.errorf(path, "anything-but: %s takes only strings, got %s", op, article(it.kind))
				return
			}
			switch b.kind {
			case butPrefix, butSuffix:
				if it.s == "" {
					c.errorf(path, "anything-but: %s: an empty %s would exclude every string", op, op)
					return
				}
				b.strs = append(b.strs, it.s)
			case butFold:
				b.strs = append(b.strs, string(appendFold(nil, []byte(it.s))))
			case butWildcard:
				g, err := compileGlob(it.s)
				if err != nil {
					c.errorf(path, "anything-but: wildcard: %v", err)
					return
				}
				b.globs = append(b.globs, g)
			}
		}
	default:
		c.errorf(path, "anything-but: takes a string, a number, a list of either, or an object with prefix, suffix, equals-ignore-case or wildcard; got %s", article(arg.kind))
		return
	}
	f.preds = append(f.preds, pred{kind: pAnythingBut, but: b})
}
