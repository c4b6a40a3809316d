package router

// A slow, deliberately simple reference matcher for event patterns, written
// from docs/patterns.md and the brute-force algorithm that was validated
// against aws/event-ruler (Appendix A of the semantics notes). It shares no
// code with the compiled matcher: JSON is decoded with encoding/json, numbers
// are compared with math/big, case folding uses strings.EqualFold, globs use
// a plain dynamic program and addresses use net/netip.
//
// It does not validate patterns: call it only for patterns ParsePattern
// accepts. Where an accepted pattern has a shape the reference cannot
// interpret, it returns an error rather than guess.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// errRefBudget reports that the brute-force search gave up: the event has
// too many combinations of array elements for the reference to try them all.
var errRefBudget = errors.New("reference: search budget exhausted")

// refBudget bounds the number of search steps of one refMatch call.
const refBudget = 2_000_000

// refNonRepresentableMatchesNumericAnythingBut selects what a numeric
// anything-but does with an event number that is not exactly a double.
// event-ruler (notes §5.2, §6) never excludes such a number, so it matches;
// router/testdata/match.jsonl ("anything-but: inexact numbers are never
// excluded") and docs/patterns.md expect the same. Flip this to test the
// other reading.
const refNonRepresentableMatchesNumericAnythingBut = true

// ---------------------------------------------------------------------------
// JSON values that keep member order, duplicate keys and number text.

type refKind uint8

const (
	refNull refKind = iota
	refTrue
	refFalse
	refNumber
	refString
	refArray
	refObject
)

type refValue struct {
	kind refKind
	text string      // string contents (decoded) or number text
	keys []string    // object member names in order, duplicates kept
	vals []*refValue // object member values (parallel to keys) or array elements
}

// refDecode decodes exactly one JSON value (surrounding whitespace allowed),
// in UTF-8 as RFC 8259 requires (encoding/json would replace invalid bytes
// with U+FFFD).
func refDecode(data []byte) (*refValue, error) {
	if !json.Valid(data) || !utf8.Valid(data) {
		return nil, errors.New("reference: invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := refDecodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("reference: data after the JSON value")
	}
	return v, nil
}

func refDecodeValue(dec *json.Decoder) (*refValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &refValue{kind: refNull}, nil
	case bool:
		if t {
			return &refValue{kind: refTrue}, nil
		}
		return &refValue{kind: refFalse}, nil
	case json.Number:
		return &refValue{kind: refNumber, text: string(t)}, nil
	case string:
		return &refValue{kind: refString, text: t}, nil
	case json.Delim:
		switch t {
		case '{':
			v := &refValue{kind: refObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("reference: object key %v", kt)
				}
				e, err := refDecodeValue(dec)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, e)
			}
			if end, err := dec.Token(); err != nil || end != json.Delim('}') {
				return nil, fmt.Errorf("reference: unterminated object (%v)", err)
			}
			return v, nil
		case '[':
			v := &refValue{kind: refArray}
			for dec.More() {
				e, err := refDecodeValue(dec)
				if err != nil {
					return nil, err
				}
				v.vals = append(v.vals, e)
			}
			if end, err := dec.Token(); err != nil || end != json.Delim(']') {
				return nil, fmt.Errorf("reference: unterminated array (%v)", err)
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("reference: unexpected token %v", tok)
}

// only returns the name and value of the only member of an operator object.
func (v *refValue) only() (string, *refValue, error) {
	if v.kind != refObject || len(v.keys) != 1 {
		return "", nil, fmt.Errorf("reference: expected an object with one member, got %d members", len(v.keys))
	}
	return v.keys[0], v.vals[0], nil
}

// ---------------------------------------------------------------------------
// Pattern compilation: $or expansion (notes §13.1).

// refSubRule is one alternative of a pattern: flattened key -> value list.
// A later assignment of a key replaces an earlier one.
type refSubRule map[string][]*refValue

func (s refSubRule) clone() refSubRule {
	c := make(refSubRule, len(s))
	for k, v := range s {
		c[k] = v
	}
	return c
}

// refCompile expands a pattern into its sub-rules. It walks the pattern in
// member order with one list S of partial sub-rules for the whole pattern:
// a value list is assigned in every sub-rule of S; an "$or" replaces S by
// the concatenation, over its alternatives, of a copy of S (or one empty
// sub-rule when S is empty) with the alternative applied.
func refCompile(p *refValue) ([]refSubRule, error) {
	if p.kind != refObject {
		return nil, errors.New("reference: pattern is not an object")
	}
	return refCompileObject(p, nil, nil)
}

func refCompileObject(obj *refValue, path []string, s []refSubRule) ([]refSubRule, error) {
	for i, k := range obj.keys {
		v := obj.vals[i]
		switch {
		case k == "$or":
			if v.kind != refArray {
				return nil, errors.New("reference: $or is not a list")
			}
			base := s
			var next []refSubRule
			for _, alt := range v.vals {
				if alt.kind != refObject {
					return nil, errors.New("reference: $or alternative is not an object")
				}
				var cp []refSubRule
				for _, sr := range base {
					cp = append(cp, sr.clone())
				}
				if len(cp) == 0 {
					cp = []refSubRule{{}}
				}
				cp, err := refCompileObject(alt, path, cp)
				if err != nil {
					return nil, err
				}
				next = append(next, cp...)
			}
			s = next
		case v.kind == refObject:
			var err error
			s, err = refCompileObject(v, append(slices.Clip(path), k), s)
			if err != nil {
				return nil, err
			}
		case v.kind == refArray:
			if len(s) == 0 {
				s = []refSubRule{{}}
			}
			key := strings.Join(append(slices.Clip(path), k), ".")
			for _, sr := range s {
				sr[key] = v.vals
			}
		default:
			return nil, fmt.Errorf("reference: %q is neither an object nor a list", k)
		}
	}
	return s, nil
}

// ---------------------------------------------------------------------------
// Event flattening (Appendix A).

type refMem struct{ array, index int }

type refLeaf struct {
	key string
	val *refValue // a scalar
	mem []refMem  // arrays whose object or array element holds the leaf
}

func refFlatten(ev *refValue) []refLeaf {
	var leaves []refLeaf
	arrays := 0
	var walk func(v *refValue, path []string, mem []refMem)
	walk = func(v *refValue, path []string, mem []refMem) {
		switch v.kind {
		case refObject:
			for i, k := range v.keys {
				walk(v.vals[i], append(slices.Clip(path), k), mem)
			}
		case refArray:
			id := arrays
			arrays++
			for i, e := range v.vals {
				if e.kind == refObject || e.kind == refArray {
					walk(e, path, append(slices.Clip(mem), refMem{id, i}))
				} else {
					walk(e, path, mem)
				}
			}
		default:
			leaves = append(leaves, refLeaf{key: strings.Join(path, "."), val: v, mem: mem})
		}
	}
	walk(ev, nil, nil)
	return leaves
}

// refBind adds m to the bindings b (array id -> element index), or reports
// that a leaf in m lies in another element of an array b already binds.
func refBind(b map[int]int, m []refMem) (map[int]int, bool) {
	for _, x := range m {
		if i, ok := b[x.array]; ok && i != x.index {
			return nil, false
		}
	}
	nb := make(map[int]int, len(b)+len(m))
	for k, v := range b {
		nb[k] = v
	}
	for _, x := range m {
		nb[x.array] = x.index
	}
	return nb, true
}

// ---------------------------------------------------------------------------
// Matching (Appendix A).

// refMatch reports whether event matches pattern. pattern must be one
// ParsePattern accepts; event must be a JSON object.
func refMatch(pattern, event []byte) (bool, error) {
	p, err := refParsePattern(pattern)
	if err != nil {
		return false, err
	}
	ev, err := refParseEvent(event)
	if err != nil {
		return false, err
	}
	return p.match(ev)
}

// refPattern is a pattern decoded and expanded into sub-rules.
type refPattern struct {
	subs []refSubRule
}

func refParsePattern(pattern []byte) (*refPattern, error) {
	v, err := refDecode(pattern)
	if err != nil {
		return nil, fmt.Errorf("reference: pattern: %w", err)
	}
	subs, err := refCompile(v)
	if err != nil {
		return nil, err
	}
	return &refPattern{subs: subs}, nil
}

// refEvent is an event flattened into its leaves, by key.
type refEvent map[string][]refLeaf

func refParseEvent(event []byte) (refEvent, error) {
	v, err := refDecode(event)
	if err != nil {
		return nil, fmt.Errorf("reference: event: %w", err)
	}
	if v.kind != refObject {
		return nil, errors.New("reference: event is not an object")
	}
	ev := refEvent{}
	for _, l := range refFlatten(v) {
		ev[l.key] = append(ev[l.key], l)
	}
	return ev, nil
}

// match reports whether any sub-rule of p matches ev.
func (p *refPattern) match(ev refEvent) (bool, error) {
	budget := refBudget
	for _, sr := range p.subs {
		ok, err := refSubMatch(sr, ev, &budget)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func refSubMatch(sr refSubRule, byKey refEvent, budget *int) (bool, error) {
	keys := make([]string, 0, len(sr))
	for k := range sr {
		keys = append(keys, k)
	}
	slices.Sort(keys) // byte order
	var try func(i int, b map[int]int) (bool, error)
	try = func(i int, b map[int]int) (bool, error) {
		if *budget--; *budget < 0 {
			return false, errRefBudget
		}
		if i == len(keys) {
			return true, nil
		}
		vals := byKey[keys[i]]
		for _, p := range sr[keys[i]] {
			if exists, ok := refExistsOperand(p); ok && !exists {
				// exists:false: no value at the key may be consistent
				// with the bindings made by the keys before it.
				present := false
				for _, v := range vals {
					if _, ok := refBind(b, v.mem); ok {
						present = true
						break
					}
				}
				if !present {
					if ok, err := try(i+1, b); ok || err != nil {
						return ok, err
					}
				}
				continue
			}
			for _, v := range vals {
				nb, ok := refBind(b, v.mem)
				if !ok {
					continue
				}
				m, err := refValueMatches(p, v.val)
				if err != nil {
					return false, err
				}
				if !m {
					continue
				}
				if ok, err := try(i+1, nb); ok || err != nil {
					return ok, err
				}
			}
		}
		return false, nil
	}
	return try(0, map[int]int{})
}

// refExistsOperand reports whether p is {"exists": bool}, and its operand.
func refExistsOperand(p *refValue) (exists, ok bool) {
	if p.kind != refObject || len(p.keys) != 1 || p.keys[0] != "exists" {
		return false, false
	}
	switch p.vals[0].kind {
	case refTrue:
		return true, true
	case refFalse:
		return false, true
	}
	return false, false
}

// refValueMatches reports whether the pattern list element p matches the
// scalar event value v.
func refValueMatches(p, v *refValue) (bool, error) {
	switch p.kind {
	case refNull, refTrue, refFalse:
		return v.kind == p.kind, nil
	case refString:
		if v.kind != refString {
			return false, nil
		}
		if p.text == v.text {
			return true, nil
		}
		pa, ok1 := refParseIP(p.text)
		va, ok2 := refParseIP(v.text)
		return ok1 && ok2 && pa == va, nil
	case refNumber:
		if v.kind != refNumber {
			return false, nil
		}
		if p.text == v.text {
			return true, nil
		}
		pr, ok1 := refExactNumber(p.text)
		vr, ok2 := refExactNumber(v.text)
		return ok1 && ok2 && pr.Cmp(vr) == 0, nil
	case refObject:
		return refOperatorMatches(p, v)
	}
	return false, fmt.Errorf("reference: unexpected list element of kind %d", p.kind)
}

func refOperatorMatches(p, v *refValue) (bool, error) {
	op, arg, err := p.only()
	if err != nil {
		return false, err
	}
	switch op {
	case "exists":
		exists, ok := refExistsOperand(p)
		if !ok || !exists {
			return false, errors.New("reference: exists:false reached the value test")
		}
		return true, nil
	case "prefix", "suffix":
		if v.kind != refString {
			return false, nil
		}
		switch arg.kind {
		case refString:
			if op == "prefix" {
				return strings.HasPrefix(v.text, arg.text), nil
			}
			return strings.HasSuffix(v.text, arg.text), nil
		case refObject:
			inner, s, err := arg.only()
			if err != nil || inner != "equals-ignore-case" || s.kind != refString {
				return false, fmt.Errorf("reference: unexpected %s operand", op)
			}
			return refFoldEnd(v.text, s.text, op == "prefix"), nil
		}
		return false, fmt.Errorf("reference: unexpected %s operand", op)
	case "equals-ignore-case":
		if arg.kind != refString {
			return false, errors.New("reference: unexpected equals-ignore-case operand")
		}
		return v.kind == refString && strings.EqualFold(v.text, arg.text), nil
	case "wildcard":
		if arg.kind != refString {
			return false, errors.New("reference: unexpected wildcard operand")
		}
		return v.kind == refString && refGlob(arg.text, v.text), nil
	case "cidr":
		if arg.kind != refString {
			return false, errors.New("reference: unexpected cidr operand")
		}
		pfx, err := refParseCIDR(arg.text)
		if err != nil {
			return false, err
		}
		if v.kind != refString {
			return false, nil
		}
		a, ok := refParseIP(v.text)
		return ok && a.Is4() == pfx.Addr().Is4() && pfx.Contains(a), nil
	case "numeric":
		if v.kind != refNumber {
			return false, nil
		}
		x, ok := refExactNumber(v.text)
		if !ok {
			return false, nil
		}
		return refInRange(arg, x)
	case "anything-but":
		excluded, err := refExcluded(arg, v)
		return !excluded, err
	}
	return false, fmt.Errorf("reference: unknown operator %q", op)
}

// refFoldEnd reports whether the first (atStart) or last N runes of s,
// N = the rune count of t, equal t ignoring case.
func refFoldEnd(s, t string, atStart bool) bool {
	rs, n := []rune(s), utf8.RuneCountInString(t)
	if len(rs) < n {
		return false
	}
	if atStart {
		return strings.EqualFold(string(rs[:n]), t)
	}
	return strings.EqualFold(string(rs[len(rs)-n:]), t)
}

// refInRange evaluates a numeric operand list for x.
func refInRange(arg *refValue, x *big.Rat) (bool, error) {
	if arg.kind != refArray || len(arg.vals)%2 != 0 || len(arg.vals) == 0 {
		return false, errors.New("reference: unexpected numeric operand")
	}
	for i := 0; i < len(arg.vals); i += 2 {
		op, n := arg.vals[i], arg.vals[i+1]
		if op.kind != refString || n.kind != refNumber {
			return false, errors.New("reference: unexpected numeric operand")
		}
		bound, ok := refExactNumber(n.text)
		if !ok {
			return false, fmt.Errorf("reference: numeric operand %s is not exact", n.text)
		}
		c := x.Cmp(bound)
		var holds bool
		switch op.text {
		case "=":
			holds = c == 0
		case "<":
			holds = c < 0
		case "<=":
			holds = c <= 0
		case ">":
			holds = c > 0
		case ">=":
			holds = c >= 0
		default:
			return false, fmt.Errorf("reference: unknown numeric operator %q", op.text)
		}
		if !holds {
			return false, nil
		}
	}
	return true, nil
}

// refExcluded reports whether an anything-but operand excludes v.
func refExcluded(arg, v *refValue) (bool, error) {
	switch arg.kind {
	case refString, refNumber:
		return refExcludedBy(arg, v), nil
	case refArray:
		for _, e := range arg.vals {
			if e.kind != refString && e.kind != refNumber {
				return false, errors.New("reference: unexpected anything-but list element")
			}
			if refExcludedBy(e, v) {
				return true, nil
			}
		}
		return false, nil
	case refObject:
		op, inner, err := arg.only()
		if err != nil {
			return false, err
		}
		var operands []string
		switch inner.kind {
		case refString:
			operands = []string{inner.text}
		case refArray:
			for _, e := range inner.vals {
				if e.kind != refString {
					return false, errors.New("reference: unexpected anything-but operand")
				}
				operands = append(operands, e.text)
			}
		default:
			return false, errors.New("reference: unexpected anything-but operand")
		}
		if v.kind != refString {
			return false, nil // only strings are excluded
		}
		for _, o := range operands {
			var hit bool
			switch op {
			case "prefix":
				hit = strings.HasPrefix(v.text, o)
			case "suffix":
				hit = strings.HasSuffix(v.text, o)
			case "equals-ignore-case":
				hit = strings.EqualFold(v.text, o)
			case "wildcard":
				hit = refGlob(o, v.text)
			default:
				return false, fmt.Errorf("reference: unknown anything-but operator %q", op)
			}
			if hit {
				return true, nil
			}
		}
		return false, nil
	}
	return false, errors.New("reference: unexpected anything-but operand")
}

// refExcludedBy reports whether the plain anything-but value e (a string or
// a number) excludes v. String exclusions are textual; number exclusions
// are by value.
func refExcludedBy(e, v *refValue) bool {
	if e.kind != v.kind {
		return false
	}
	if e.kind == refString {
		return e.text == v.text
	}
	x, ok := refExactNumber(v.text)
	if !ok {
		return !refNonRepresentableMatchesNumericAnythingBut
	}
	y, ok := refExactNumber(e.text)
	return ok && x.Cmp(y) == 0
}

// ---------------------------------------------------------------------------
// Numbers.

// refExactNumber returns the exact value of the JSON number text t when t
// says exactly the double it denotes: the nearest double is finite and
// its shortest round-trip decimal has the same value as t. Otherwise it
// returns false.
func refExactNumber(t string) (*big.Rat, bool) {
	r, ok := refParseDecimal(t)
	if !ok {
		return nil, false
	}
	f, _ := r.Float64() // nearest double, correctly rounded
	if math.IsInf(f, 0) {
		return nil, false
	}
	short, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'e', -1, 64))
	if !ok || short.Cmp(r) != 0 {
		return nil, false
	}
	return r, true
}

// refParseDecimal returns the exact value of a JSON number, or false when
// its magnitude is far outside the range of doubles (so that a huge
// exponent cannot make math/big build an enormous number).
func refParseDecimal(t string) (*big.Rat, bool) {
	s := t
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return new(big.Rat), true // zero, whatever the exponent
	}
	e := new(big.Int)
	if exp != "" {
		if _, ok := e.SetString(strings.TrimPrefix(exp, "+"), 10); !ok {
			return nil, false
		}
	}
	// value = digits × 10^(e - len(frac)); its most significant digit sits
	// at 10^(e - len(frac) + len(digits) - 1).
	e.Sub(e, big.NewInt(int64(len(frac))))
	top := new(big.Int).Add(e, big.NewInt(int64(len(digits)-1)))
	if top.Cmp(big.NewInt(400)) > 0 || top.Cmp(big.NewInt(-400)) < 0 {
		return nil, false // beyond ±1.8e308 or below the smallest subnormal
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, false
	}
	r := new(big.Rat).SetInt(n)
	p := new(big.Int).Exp(big.NewInt(10), new(big.Int).Abs(e), nil)
	if e.Sign() >= 0 {
		r.Mul(r, new(big.Rat).SetInt(p))
	} else {
		r.Quo(r, new(big.Rat).SetInt(p))
	}
	if neg {
		r.Neg(r)
	}
	return r, true
}

// ---------------------------------------------------------------------------
// Wildcards.

// refGlob matches s against a wildcard pattern: '*' is any run of
// characters, "\*" a literal star, "\\" a literal backslash.
func refGlob(pattern, s string) bool {
	type item struct {
		star bool
		r    rune
	}
	var items []item
	pr := []rune(pattern)
	for i := 0; i < len(pr); i++ {
		switch {
		case pr[i] == '*':
			items = append(items, item{star: true})
		case pr[i] == '\\' && i+1 < len(pr):
			i++
			items = append(items, item{r: pr[i]})
		default:
			items = append(items, item{r: pr[i]})
		}
	}
	sr := []rune(s)
	// m[j] reports whether items[:i] matches sr[:j], for the current i.
	m := make([]bool, len(sr)+1)
	m[0] = true
	for _, it := range items {
		next := make([]bool, len(sr)+1)
		for j := range next {
			if it.star {
				next[j] = m[j] || (j > 0 && next[j-1])
			} else {
				next[j] = j > 0 && m[j-1] && sr[j-1] == it.r
			}
		}
		m = next
	}
	return m[len(sr)]
}

// ---------------------------------------------------------------------------
// IP addresses.

// refParseIP reads an IP address literal as events and exact pattern
// values spell them: IPv4 as four decimal parts, leading zeros allowed;
// IPv6 as hex digits and colons only. IPv4-mapped IPv6 becomes IPv4.
func refParseIP(s string) (netip.Addr, bool) {
	if parts := strings.Split(s, "."); len(parts) == 4 {
		var b [4]byte
		for i, p := range parts {
			if p == "" || strings.Trim(p, "0123456789") != "" {
				return netip.Addr{}, false
			}
			p = strings.TrimLeft(p, "0")
			if len(p) > 3 {
				return netip.Addr{}, false
			}
			n := 0
			for _, c := range p {
				n = n*10 + int(c-'0')
			}
			if n > 255 {
				return netip.Addr{}, false
			}
			b[i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	}
	if !strings.Contains(s, ":") || strings.Trim(s, "0123456789abcdefABCDEF:") != "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// refParseCIDR reads an accepted cidr operand; host bits are cleared.
func refParseCIDR(s string) (netip.Prefix, error) {
	addr, bits, ok := strings.Cut(s, "/")
	if !ok {
		return netip.Prefix{}, fmt.Errorf("reference: cidr %q has no mask", s)
	}
	a, ok := refParseIP(addr)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("reference: cidr %q: bad address", s)
	}
	n, err := strconv.Atoi(bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("reference: cidr %q: bad mask", s)
	}
	p, err := a.Prefix(n)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("reference: cidr %q: %v", s, err)
	}
	return p, nil
}
