package router

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Matcher matches an event against many patterns in one pass over the
// event. It is immutable and safe for concurrent use; a match allocates
// nothing once the Matcher's scratch pool is warm.
//
// How it works: every pattern is a set of alternatives (its $or expanded),
// each a set of clauses, one per flattened key. The keys any pattern
// mentions form a trie that steers one scan of the event: values under
// keys no pattern mentions are skipped without being decoded. Each key
// has an index of its clauses' predicates (hash maps for exact values and
// case-folded values, maps by length for prefixes and suffixes, an interval
// tree for numeric ranges, masks for CIDRs), so a value finds the clauses
// it satisfies without looking at the others. An alternative matches when
// all its clauses are satisfied (counted with generation stamps, so
// nothing is cleared between events). Only when two of its clauses were
// satisfied by values inside arrays of objects does a search check that
// the values come from the same array elements, as EventBridge requires.
type Matcher struct {
	root     *pathNode
	paths    []*pathIndex
	clauses  []clause
	alts     []alt
	always   []int32 // alternatives that need no value: only exists:false clauses
	patterns int
	pool     sync.Pool
}

// pathNode is a node of the trie of flattened keys, by component.
type pathNode struct {
	children map[string]*pathNode
	path     int32 // index of the key ending here, or -1
}

type clause struct {
	alt    int32
	path   int32
	absent bool // exists:false is one of its alternatives
}

type alt struct {
	pattern int32
	need    int32   // clauses that only a value can satisfy
	clauses []int32 // in key order
}

// ErrTooComplex is returned for an event whose arrays make checking that
// values come from the same array element too expensive.
var ErrTooComplex = errors.New("event too complex to match: too many combinations of array elements")

// NewMatcher compiles patterns into one Matcher. Match reports patterns
// by their index in this slice.
func NewMatcher(patterns []*Pattern) *Matcher {
	m := &Matcher{root: &pathNode{path: -1}, patterns: len(patterns)}
	keys := map[string]int32{}
	for pi, p := range patterns {
		for _, sp := range p.subs {
			ai := int32(len(m.alts))
			a := alt{pattern: int32(pi)}
			for _, f := range sp.fields {
				path, ok := keys[f.key]
				if !ok {
					path = int32(len(m.paths))
					keys[f.key] = path
					m.paths = append(m.paths, newPathIndex())
					m.insertKey(f.key, path)
				}
				ci := int32(len(m.clauses))
				m.clauses = append(m.clauses, clause{alt: ai, path: path, absent: f.absent})
				a.clauses = append(a.clauses, ci)
				if !f.absent {
					a.need++
				}
				for _, pr := range f.preds {
					m.paths[path].add(pr, ci)
				}
			}
			if a.need == 0 {
				m.always = append(m.always, ai)
			}
			m.alts = append(m.alts, a)
		}
	}
	for _, pi := range m.paths {
		pi.finish()
	}
	m.pool.New = func() any { return m.newScratch() }
	return m
}

func (m *Matcher) insertKey(key string, path int32) {
	n := m.root
	for part := range strings.SplitSeq(key, ".") {
		if n.children == nil {
			n.children = map[string]*pathNode{}
		}
		c := n.children[part]
		if c == nil {
			c = &pathNode{path: -1}
			n.children[part] = c
		}
		n = c
	}
	n.path = path
}

// lookup follows an event key, whose dots separate components as they do
// in pattern keys.
func (n *pathNode) lookup(key []byte) *pathNode {
	for n != nil {
		i := bytes.IndexByte(key, '.')
		if i < 0 {
			return n.children[string(key)]
		}
		n = n.children[string(key[:i])]
		key = key[i+1:]
	}
	return nil
}

// Match appends to dst the indexes, ascending, of the patterns event
// matches. event must be a JSON object; malformed JSON yields a
// *SyntaxError and other values ErrNotObject.
func (m *Matcher) Match(event []byte, dst []int) ([]int, error) {
	s := m.pool.Get().(*scratch)
	defer m.pool.Put(s)
	s.reset()
	if err := s.flatten(m, event); err != nil {
		return dst, err
	}
	for i := range s.leaves {
		lf := &s.leaves[i]
		s.pathGen[lf.path] = s.gen
		if lf.memLen > 0 {
			s.pathMemGen[lf.path] = s.gen
		}
		s.eval(m, m.paths[lf.path], int32(i))
	}
	start := len(dst)
	check := func(a int32) error {
		p := m.alts[a].pattern
		if s.patGen[p] == s.gen {
			return nil
		}
		ok, err := s.finish(m, a)
		if err != nil {
			return err
		}
		if ok {
			s.patGen[p] = s.gen
			dst = append(dst, int(p))
		}
		return nil
	}
	for _, a := range s.cands {
		if err := check(a); err != nil {
			return dst[:start], err
		}
	}
	for _, a := range m.always {
		if err := check(a); err != nil {
			return dst[:start], err
		}
	}
	slices.Sort(dst[start:])
	return dst, nil
}

// Patterns reports how many patterns the Matcher holds.
func (m *Matcher) Patterns() int { return m.patterns }

// --- per-key indexes ---

// pathIndex holds the predicates of every clause on one key.
type pathIndex struct {
	exact      map[string][]int32 // typed value key → clauses
	hasIP      bool               // exact holds address keys
	numeric    bool               // some predicate needs the value as a number
	needFold   bool
	fold       map[string][]int32
	prefix     affixIndex
	suffix     affixIndex
	prefixFold affixIndex
	suffixFold affixIndex
	globs      []globEntry
	globPrefix affixIndex // globs by their leading literal, as indexes into globs
	globRest   []int32    // globs that start with *
	ranges     rangeIndex
	cidrs      cidrIndex
	exists     []int32
	buts       []butEntry
}

type globEntry struct {
	g       *glob
	clauses []int32
}

type butEntry struct {
	but     *anythingBut
	clauses []int32
}

func newPathIndex() *pathIndex {
	return &pathIndex{exact: map[string][]int32{}, fold: map[string][]int32{}}
}

// Keys of exact values carry their type in the first byte, so the string
// "5", the number 5 and the literal true never collide.
func exactString(s string) string { return "s" + s }
func exactIP(a netip.Addr) string {
	b := a.As16()
	return "i" + string(b[:])
}
func exactNumber(f float64) string {
	var b [9]byte
	b[0] = 'n'
	putFloat(b[1:], f)
	return string(b[:])
}
func exactNumText(s string) string { return "N" + s }

func putFloat(b []byte, f float64) {
	u := math.Float64bits(f)
	for i := range 8 {
		b[i] = byte(u >> (56 - 8*i))
	}
}

func (pi *pathIndex) add(p pred, c int32) {
	switch p.kind {
	case pString:
		pi.exact[exactString(p.s)] = appendOnce(pi.exact[exactString(p.s)], c)
	case pIP:
		pi.hasIP = true
		pi.exact[exactIP(p.ip)] = appendOnce(pi.exact[exactIP(p.ip)], c)
	case pNumber:
		pi.numeric = true
		pi.exact[exactNumber(p.f)] = appendOnce(pi.exact[exactNumber(p.f)], c)
	case pNumText:
		pi.numeric = true
		pi.exact[exactNumText(p.s)] = appendOnce(pi.exact[exactNumText(p.s)], c)
	case pTrue:
		pi.exact["t"] = appendOnce(pi.exact["t"], c)
	case pFalse:
		pi.exact["f"] = appendOnce(pi.exact["f"], c)
	case pNull:
		pi.exact["z"] = appendOnce(pi.exact["z"], c)
	case pPrefix:
		pi.prefix.add(p.s, c)
	case pSuffix:
		pi.suffix.add(p.s, c)
	case pPrefixFold:
		pi.needFold = true
		pi.prefixFold.add(p.s, c)
	case pSuffixFold:
		pi.needFold = true
		pi.suffixFold.add(p.s, c)
	case pFold:
		pi.needFold = true
		pi.fold[p.s] = appendOnce(pi.fold[p.s], c)
	case pWildcard:
		gi := int32(len(pi.globs))
		pi.globs = append(pi.globs, globEntry{g: p.glob, clauses: []int32{c}})
		if lead := p.glob.parts[0]; lead != "" && len(p.glob.parts) > 1 {
			pi.globPrefix.add(lead, gi)
		} else {
			pi.globRest = append(pi.globRest, gi)
		}
	case pRange:
		pi.numeric = true
		pi.ranges.add(p, c)
	case pCIDR:
		pi.cidrs.add(p.cidr, c)
	case pExists:
		pi.exists = appendOnce(pi.exists, c)
	case pAnythingBut:
		if p.but.kind == butNumbers {
			pi.numeric = true
		}
		pi.buts = append(pi.buts, butEntry{but: p.but, clauses: []int32{c}})
	}
}

func (pi *pathIndex) finish() {
	pi.ranges.build()
	pi.cidrs.build()
	for _, a := range []*affixIndex{&pi.prefix, &pi.suffix, &pi.prefixFold, &pi.suffixFold, &pi.globPrefix} {
		a.build()
	}
	if len(pi.fold) == 0 {
		pi.fold = nil
	}
	if len(pi.exact) == 0 {
		pi.exact = nil
	}
}

func appendOnce(s []int32, c int32) []int32 {
	if len(s) > 0 && s[len(s)-1] == c {
		return s
	}
	return append(s, c)
}

// affixIndex finds prefixes (or suffixes) of a value with one map lookup
// per distinct length.
type affixIndex struct {
	m    map[string][]int32
	lens []int
}

func (a *affixIndex) add(s string, c int32) {
	if a.m == nil {
		a.m = map[string][]int32{}
	}
	a.m[s] = appendOnce(a.m[s], c)
}

func (a *affixIndex) build() {
	seen := map[int]bool{}
	for k := range a.m {
		if !seen[len(k)] {
			seen[len(k)] = true
			a.lens = append(a.lens, len(k))
		}
	}
	slices.Sort(a.lens)
}

// rangeIndex is a static interval tree: intervals sorted by lower bound,
// each node of the implicit binary tree over them knowing the largest
// upper bound below it.
type rangeIndex struct {
	iv    []interval
	maxHi []float64
}

type interval struct {
	lo, hi         float64
	loIncl, hiIncl bool
	clauses        []int32
}

func (r *rangeIndex) add(p pred, c int32) {
	for i := range r.iv {
		v := &r.iv[i]
		if v.lo == p.lo && v.hi == p.hi && v.loIncl == p.loIncl && v.hiIncl == p.hiIncl {
			v.clauses = appendOnce(v.clauses, c)
			return
		}
	}
	r.iv = append(r.iv, interval{lo: p.lo, hi: p.hi, loIncl: p.loIncl, hiIncl: p.hiIncl, clauses: []int32{c}})
}

func (r *rangeIndex) build() {
	slices.SortFunc(r.iv, func(a, b interval) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	r.maxHi = make([]float64, len(r.iv))
	var fill func(i, j int) float64
	fill = func(i, j int) float64 {
		if i >= j {
			return math.Inf(-1)
		}
		mid := (i + j) / 2
		m := max(r.iv[mid].hi, fill(i, mid), fill(mid+1, j))
		r.maxHi[mid] = m
		return m
	}
	fill(0, len(r.iv))
}

func (v *interval) contains(x float64) bool {
	return (x > v.lo || v.loIncl && x == v.lo) && (x < v.hi || v.hiIncl && x == v.hi)
}

// cidrIndex finds the CIDRs containing an address with one map lookup per
// distinct prefix length of its family.
type cidrIndex struct {
	m        map[netip.Prefix][]int32
	lens4    []int
	lens6    []int
	nonEmpty bool
}

func (ci *cidrIndex) add(p netip.Prefix, c int32) {
	if ci.m == nil {
		ci.m = map[netip.Prefix][]int32{}
	}
	ci.m[p] = appendOnce(ci.m[p], c)
	ci.nonEmpty = true
}

func (ci *cidrIndex) build() {
	for p := range ci.m {
		if p.Addr().Is4() {
			if !slices.Contains(ci.lens4, p.Bits()) {
				ci.lens4 = append(ci.lens4, p.Bits())
			}
		} else if !slices.Contains(ci.lens6, p.Bits()) {
			ci.lens6 = append(ci.lens6, p.Bits())
		}
	}
	slices.Sort(ci.lens4)
	slices.Sort(ci.lens6)
}

// excludes reports whether an anything-but excludes a leaf. Values of
// another type than the excluded ones are never excluded.
func (b *anythingBut) excludes(s *scratch, lf *leaf) bool {
	if b.kind == butNumbers {
		if lf.kind != kNumber {
			return false
		}
		f, ok := s.number(lf)
		return ok && slices.Contains(b.nums, f)
	}
	if lf.kind != kString {
		return false
	}
	v := lf.val
	switch b.kind {
	case butStrings:
		for _, x := range b.strs {
			if string(v) == x {
				return true
			}
		}
	case butPrefix:
		for _, x := range b.strs {
			if len(v) >= len(x) && string(v[:len(x)]) == x {
				return true
			}
		}
	case butSuffix:
		for _, x := range b.strs {
			if len(v) >= len(x) && string(v[len(v)-len(x):]) == x {
				return true
			}
		}
	case butFold:
		f := s.folded(lf)
		for _, x := range b.strs {
			if string(f) == x {
				return true
			}
		}
	case butWildcard:
		for _, g := range b.globs {
			if g.match(v) {
				return true
			}
		}
	}
	return false
}

// --- per-event state ---

type leafKind uint8

const (
	kString leafKind = iota
	kNumber
	kTrue
	kFalse
	kNull
)

// leaf is one scalar value of the event at a key some pattern mentions.
type leaf struct {
	path   int32
	kind   leafKind
	val    []byte // a string's decoded text, or a number's text
	memOff int32  // its array positions: scratch.mem[memOff:memOff+memLen]
	memLen int32
	// Lazily computed forms of the value, valid when their flags are set.
	numDone, numOK bool
	num            float64
	foldOff        int32 // scratch.folds[foldOff:foldOff+foldLen], when foldLen >= 0
	foldLen        int32
}

// arrayPos says a value lies in element idx of array arr.
type arrayPos struct {
	arr, idx int32
}

type hit struct {
	clause, leaf int32
}

// scratch is the reusable state of one Match call.
type scratch struct {
	gen        uint32
	leaves     []leaf
	mem        []arrayPos
	stack      []arrayPos
	arrays     int32
	arena      []byte // decoded strings; never reallocated during a match
	folds      []byte
	keyBuf     []byte
	hits       []hit
	cands      []int32
	pathGen    []uint32 // the key has a value in this event
	pathMemGen []uint32 // the key has a value inside an array element
	clauseGen  []uint32 // the clause is satisfied by a value
	clauseMem  []uint32 // ... by a value inside an array element
	altGen     []uint32
	altCount   []int32
	patGen     []uint32
	bind       []arrayPos
	choices    [][]int32
	steps      int
}

func (m *Matcher) newScratch() *scratch {
	return &scratch{
		pathGen:    make([]uint32, len(m.paths)),
		pathMemGen: make([]uint32, len(m.paths)),
		clauseGen:  make([]uint32, len(m.clauses)),
		clauseMem:  make([]uint32, len(m.clauses)),
		altGen:     make([]uint32, len(m.alts)),
		altCount:   make([]int32, len(m.alts)),
		patGen:     make([]uint32, m.patterns),
	}
}

func (s *scratch) reset() {
	s.gen++
	if s.gen == 0 { // wrapped: stamps from 2^32 events ago could collide
		for _, a := range [][]uint32{s.pathGen, s.pathMemGen, s.clauseGen, s.clauseMem, s.altGen, s.patGen} {
			clear(a)
		}
		s.gen = 1
	}
	s.leaves = s.leaves[:0]
	s.mem = s.mem[:0]
	s.stack = s.stack[:0]
	s.arrays = 0
	s.arena = s.arena[:0]
	s.folds = s.folds[:0]
	s.hits = s.hits[:0]
	s.cands = s.cands[:0]
}

// number returns the leaf as a comparable number, if it is one.
func (s *scratch) number(lf *leaf) (float64, bool) {
	if !lf.numDone {
		lf.num, lf.numOK = parseNumber(lf.val)
		lf.numDone = true
	}
	return lf.num, lf.numOK
}

// folded returns the case-folded form of a string leaf.
func (s *scratch) folded(lf *leaf) []byte {
	if lf.foldLen < 0 {
		off := len(s.folds)
		s.folds = appendFold(s.folds, lf.val)
		lf.foldOff, lf.foldLen = int32(off), int32(len(s.folds)-off)
	}
	return s.folds[lf.foldOff : lf.foldOff+lf.foldLen]
}

// --- flattening ---

func (s *scratch) flatten(m *Matcher, data []byte) error {
	if cap(s.arena) < len(data) {
		s.arena = make([]byte, 0, len(data))
	}
	sc := &scanner{data: data}
	if sc.peek() != '{' {
		if err := sc.skip(); err != nil {
			return err
		}
		return ErrNotObject
	}
	if err := s.object(m.root, sc, 0); err != nil {
		return err
	}
	return sc.end()
}

func (s *scratch) object(n *pathNode, sc *scanner, depth int) error {
	sc.pos++ // '{'
	if sc.peek() == '}' {
		sc.pos++
		return nil
	}
	for {
		if sc.peek() != '"' {
			return sc.unexpected("an object key")
		}
		a, b, esc, err := sc.str()
		if err != nil {
			return err
		}
		if sc.peek() != ':' {
			return sc.unexpected("':'")
		}
		sc.pos++
		key := sc.data[a:b]
		if esc {
			s.keyBuf = unescape(s.keyBuf[:0], key)
			key = s.keyBuf
		}
		if child := n.lookup(key); child != nil {
			err = s.value(child, sc, depth+1)
		} else {
			err = sc.skip()
		}
		if err != nil {
			return err
		}
		switch sc.peek() {
		case ',':
			sc.pos++
		case '}':
			sc.pos++
			return nil
		default:
			return sc.unexpected("',' or '}'")
		}
	}
}

func (s *scratch) value(n *pathNode, sc *scanner, depth int) error {
	if depth >= maxDepth {
		return sc.errorf("nesting deeper than %d", maxDepth)
	}
	switch sc.peek() {
	case '{':
		if n.children == nil {
			return sc.skip()
		}
		return s.object(n, sc, depth)
	case '[':
		if n.children == nil && n.path < 0 {
			return sc.skip()
		}
		return s.array(n, sc, depth)
	case '"':
		a, b, esc, err := sc.str()
		if err != nil || n.path < 0 {
			return err
		}
		v := sc.data[a:b]
		if esc {
			off := len(s.arena)
			s.arena = unescape(s.arena, v)
			v = s.arena[off:len(s.arena):len(s.arena)]
		}
		s.leaf(n.path, kString, v)
	case 't':
		if err := sc.lit("true"); err != nil || n.path < 0 {
			return err
		}
		s.leaf(n.path, kTrue, nil)
	case 'f':
		if err := sc.lit("false"); err != nil || n.path < 0 {
			return err
		}
		s.leaf(n.path, kFalse, nil)
	case 'n':
		if err := sc.lit("null"); err != nil || n.path < 0 {
			return err
		}
		s.leaf(n.path, kNull, nil)
	default:
		a, b, err := sc.num()
		if err != nil || n.path < 0 {
			return err
		}
		s.leaf(n.path, kNumber, sc.data[a:b])
	}
	return nil
}

// array visits the elements of an array at n. Values inside an element
// that is an object or array record which element they are in; scalar
// elements do not, as in EventBridge.
func (s *scratch) array(n *pathNode, sc *scanner, depth int) error {
	id := s.arrays
	s.arrays++
	sc.pos++ // '['
	if sc.peek() == ']' {
		sc.pos++
		return nil
	}
	for idx := int32(0); ; idx++ {
		var err error
		if c := sc.peek(); c == '{' || c == '[' {
			s.stack = append(s.stack, arrayPos{id, idx})
			err = s.value(n, sc, depth+1)
			s.stack = s.stack[:len(s.stack)-1]
		} else {
			err = s.value(n, sc, depth+1)
		}
		if err != nil {
			return err
		}
		switch sc.peek() {
		case ',':
			sc.pos++
		case ']':
			sc.pos++
			return nil
		default:
			return sc.unexpected("',' or ']'")
		}
	}
}

func (s *scratch) leaf(path int32, kind leafKind, v []byte) {
	off := int32(len(s.mem))
	s.mem = append(s.mem, s.stack...)
	s.leaves = append(s.leaves, leaf{path: path, kind: kind, val: v, memOff: off, memLen: int32(len(s.stack)), foldLen: -1})
}

// --- evaluation ---

// hit records that leaf li satisfies clause c.
func (s *scratch) hit(m *Matcher, c, li int32) {
	s.hits = append(s.hits, hit{c, li})
	inArray := s.leaves[li].memLen > 0
	if s.clauseGen[c] == s.gen {
		if inArray {
			s.clauseMem[c] = s.gen
		}
		return
	}
	s.clauseGen[c] = s.gen
	if inArray {
		s.clauseMem[c] = s.gen
	}
	cl := &m.clauses[c]
	if cl.absent {
		return // judged in finish
	}
	a := cl.alt
	if s.altGen[a] != s.gen {
		s.altGen[a] = s.gen
		s.altCount[a] = 0
	}
	s.altCount[a]++
	if s.altCount[a] == m.alts[a].need {
		s.cands = append(s.cands, a)
	}
}

func (s *scratch) hits32(m *Matcher, cs []int32, li int32) {
	for _, c := range cs {
		s.hit(m, c, li)
	}
}

// eval finds the clauses leaf li satisfies through its key's index.
func (s *scratch) eval(m *Matcher, pi *pathIndex, li int32) {
	lf := &s.leaves[li]
	s.hits32(m, pi.exists, li)
	switch lf.kind {
	case kString:
		v := lf.val
		var ip netip.Addr
		ipOK := false
		if pi.hasIP || pi.cidrs.nonEmpty {
			ip, ipOK = parseIP(v)
		}
		if pi.exact != nil {
			k := append(s.keyBuf[:0], 's')
			if ipOK && pi.hasIP {
				b := ip.As16()
				k = append(k[:0], 'i')
				k = append(k, b[:]...)
			} else {
				k = append(k, v...)
			}
			s.keyBuf = k
			s.hits32(m, pi.exact[string(k)], li)
		}
		s.affix(m, &pi.prefix, v, false, li)
		s.affix(m, &pi.suffix, v, true, li)
		if pi.needFold {
			f := s.folded(lf)
			if pi.fold != nil {
				s.hits32(m, pi.fold[string(f)], li)
			}
			s.affix(m, &pi.prefixFold, f, false, li)
			s.affix(m, &pi.suffixFold, f, true, li)
		}
		if len(pi.globs) > 0 {
			for _, l := range pi.globPrefix.lens {
				if l > len(v) {
					break
				}
				for _, gi := range pi.globPrefix.m[string(v[:l])] {
					if g := &pi.globs[gi]; g.g.match(v) {
						s.hits32(m, g.clauses, li)
					}
				}
			}
			for _, gi := range pi.globRest {
				if g := &pi.globs[gi]; g.g.match(v) {
					s.hits32(m, g.clauses, li)
				}
			}
		}
		if ipOK && pi.cidrs.nonEmpty {
			lens := pi.cidrs.lens6
			if ip.Is4() {
				lens = pi.cidrs.lens4
			}
			for _, l := range lens {
				p, _ := ip.Prefix(l)
				s.hits32(m, pi.cidrs.m[p], li)
			}
		}
	case kNumber:
		if pi.numeric {
			f, ok := s.number(lf)
			k := s.keyBuf[:0]
			if ok {
				k = append(k, 'n', 0, 0, 0, 0, 0, 0, 0, 0)
				putFloat(k[1:], f)
				s.rangeQuery(m, &pi.ranges, f, 0, len(pi.ranges.iv), li)
			} else {
				k = append(k, 'N')
				k = append(k, lf.val...)
			}
			s.keyBuf = k
			if pi.exact != nil {
				s.hits32(m, pi.exact[string(k)], li)
			}
		}
	case kTrue:
		s.hits32(m, pi.exact["t"], li)
	case kFalse:
		s.hits32(m, pi.exact["f"], li)
	case kNull:
		s.hits32(m, pi.exact["z"], li)
	}
	for i := range pi.buts {
		b := &pi.buts[i]
		if !b.but.excludes(s, lf) {
			s.hits32(m, b.clauses, li)
		}
	}
}

// affix looks up every prefix (or suffix) length of v.
func (s *scratch) affix(m *Matcher, a *affixIndex, v []byte, suffix bool, li int32) {
	for _, l := range a.lens {
		if l > len(v) {
			return
		}
		var k []byte
		if suffix {
			k = v[len(v)-l:]
		} else {
			k = v[:l]
		}
		s.hits32(m, a.m[string(k)], li)
	}
}

func (s *scratch) rangeQuery(m *Matcher, r *rangeIndex, x float64, i, j int, li int32) {
	for i < j {
		mid := (i + j) / 2
		if r.maxHi[mid] < x {
			return
		}
		s.rangeQuery(m, r, x, i, mid, li)
		iv := &r.iv[mid]
		if iv.lo > x {
			return
		}
		if iv.contains(x) {
			s.hits32(m, iv.clauses, li)
		}
		i = mid + 1
	}
}

// finish decides an alternative whose value clauses are all satisfied:
// its exists:false clauses, and array consistency when it matters.
func (s *scratch) finish(m *Matcher, a int32) (bool, error) {
	al := &m.alts[a]
	inArrays := 0        // clauses whose choice could conflict with another's
	absentFails := false // an exists:false clause fails unless arrays rescue it
	for _, c := range al.clauses {
		cl := &m.clauses[c]
		satisfied := s.clauseGen[c] == s.gen
		memHit := satisfied && s.clauseMem[c] == s.gen
		if !cl.absent {
			if memHit {
				inArrays++
			}
			continue
		}
		if s.pathGen[cl.path] != s.gen {
			continue // the key has no value: absent
		}
		pathMem := s.pathMemGen[cl.path] == s.gen
		if satisfied {
			if memHit || pathMem {
				inArrays++
			}
			continue
		}
		if !pathMem {
			return false, nil // a value outside arrays is present whatever else is chosen
		}
		inArrays++
		absentFails = true
	}
	if inArrays < 2 {
		return !absentFails, nil
	}
	return s.verify(m, al)
}

// maxSteps bounds the search for array-consistent choices per event.
const maxSteps = 1 << 20

// verify searches for one value per clause such that no two come from
// different elements of one array, taking clauses in key order; an
// exists:false clause holds when no value at its key is consistent with
// the choices made before it. This is EventBridge's definition.
func (s *scratch) verify(m *Matcher, al *alt) (bool, error) {
	for len(s.choices) < len(al.clauses) {
		s.choices = append(s.choices, nil)
	}
	for i, c := range al.clauses {
		ch := s.choices[i][:0]
		var prev int32 = -1
		for _, h := range s.hits {
			if h.clause != c {
				continue
			}
			if prev >= 0 && s.sameMem(prev, h.leaf) {
				continue // interchangeable with the previous choice
			}
			ch = append(ch, h.leaf)
			prev = h.leaf
		}
		s.choices[i] = ch
	}
	s.bind = s.bind[:0]
	s.steps = 0
	ok := s.search(m, al, 0)
	if s.steps > maxSteps {
		return false, ErrTooComplex
	}
	return ok, nil
}

func (s *scratch) search(m *Matcher, al *alt, i int) bool {
	if i == len(al.clauses) {
		return true
	}
	if s.steps++; s.steps > maxSteps {
		return false
	}
	cl := &m.clauses[al.clauses[i]]
	if cl.absent {
		present := false
		for li := range s.leaves {
			if s.leaves[li].path == cl.path && s.consistent(int32(li)) {
				present = true
				break
			}
		}
		if !present && s.search(m, al, i+1) {
			return true
		}
	}
	for _, li := range s.choices[i] {
		if !s.consistent(li) {
			continue
		}
		mark := len(s.bind)
		lf := &s.leaves[li]
		for _, p := range s.mem[lf.memOff : lf.memOff+lf.memLen] {
			if !slices.Contains(s.bind, p) {
				s.bind = append(s.bind, p)
			}
		}
		if s.search(m, al, i+1) {
			return true
		}
		s.bind = s.bind[:mark]
		if s.steps > maxSteps {
			return false
		}
	}
	return false
}

// consistent reports whether a leaf is in the same element as the choices
// so far of every array they share.
func (s *scratch) consistent(li int32) bool {
	lf := &s.leaves[li]
	for _, p := range s.mem[lf.memOff : lf.memOff+lf.memLen] {
		for _, b := range s.bind {
			if b.arr == p.arr && b.idx != p.idx {
				return false
			}
		}
	}
	return true
}

func (s *scratch) sameMem(a, b int32) bool {
	x, y := &s.leaves[a], &s.leaves[b]
	return slices.Equal(s.mem[x.memOff:x.memOff+x.memLen], s.mem[y.memOff:y.memOff+y.memLen])
}

// String describes the Matcher's size, for logs.
func (m *Matcher) String() string {
	return fmt.Sprintf("matcher: %d patterns, %d alternatives, %d keys", m.patterns, len(m.alts), len(m.paths))
}
