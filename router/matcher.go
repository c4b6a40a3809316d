package router

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
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
// each a set of clauses, one per flattened key, and each clause a set of
// predicates (the elements of the key's value list). The keys any pattern
// mentions form a trie that steers one scan of the event: values under
// keys no pattern mentions are skipped without being decoded. Each key has
// an index of its distinct predicates (hash maps for exact and case-folded
// values, maps by length for prefixes and suffixes, an interval tree for
// numeric ranges, masks for CIDRs), so a value finds the predicates it
// satisfies without looking at the others, and a predicate shared by many
// rules (source = aws.s3) is evaluated once. A value that satisfies a
// predicate only marks it, except that each alternative is anchored on its
// most selective clause: when a predicate of an anchor clause is marked,
// its alternatives become candidates, and only candidates have their other
// clauses checked against the marks. So the work per event follows the
// values it holds and the rules it nearly matches, not the number of
// rules. Only when two clauses of a candidate were satisfied by values
// inside arrays of objects does a search check that the values come from
// the same array elements, as EventBridge requires.
type Matcher struct {
	root     *pathNode
	paths    []*pathIndex
	preds    []predInfo
	clauses  []clause
	alts     []alt
	always   []int32 // alternatives no value can put forward: only exists:false clauses
	patterns int
	pool     sync.Pool
}

// pathNode is a node of the trie of flattened keys, by component. Its
// children are found through a small open-addressing table hashed on a
// key's length and first eight bytes, cheaper than a map's hash of the
// whole key. A key that is not there (most of an event's) is usually
// turned away by a 64-bit filter of the hashes present, before the table
// is read.
type pathNode struct {
	kids   int          // children
	slots  []childEntry // by hash; node nil for none; a power of two long, at most half full
	filter uint64       // bit h>>58 set for each child's hash h
	shift  uint8        // 64 - log2(len(slots))
	path   int32        // index of the key ending here, or -1
}

type childEntry struct {
	key  string
	head uint64 // keyHead(key)
	node *pathNode
}

// keyHead packs the first eight bytes of k (fewer, zero-padded) into a
// word. It reads them at once when k's capacity allows: a key read from an
// event is followed by its closing quote and more.
func keyHead(k []byte) uint64 {
	n := min(len(k), 8)
	if cap(k) < 8 {
		var b [8]byte
		copy(b[:], k)
		return binary.LittleEndian.Uint64(b[:])
	}
	return binary.LittleEndian.Uint64(k[:8]) & (^uint64(0) >> (64 - 8*n))
}

func keyHash(head uint64, length int) uint64 {
	return (head ^ uint64(length)) * 0x9e3779b97f4a7c15
}

// find returns the child named k, whose keyHead is head, or nil.
func (n *pathNode) find(head uint64, k []byte) *pathNode {
	h := keyHash(head, len(k))
	if n.filter&(1<<(h>>58)) == 0 {
		return nil
	}
	mask := len(n.slots) - 1
	for i := int(h >> n.shift); ; i = (i + 1) & mask {
		e := &n.slots[i]
		if e.node == nil {
			return nil
		}
		if e.head == head && len(e.key) == len(k) && (len(k) <= 8 || e.key[8:] == string(k[8:])) {
			return e.node
		}
	}
}

func (n *pathNode) child(k []byte) *pathNode { return n.find(keyHead(k), k) }

func (n *pathNode) add(key string, c *pathNode) {
	kids := []childEntry{{key: key, head: keyHead([]byte(key)), node: c}}
	for _, e := range n.slots {
		if e.node != nil {
			kids = append(kids, e)
		}
	}
	n.kids = len(kids)
	size := 4
	for size < 2*len(kids) {
		size *= 2
	}
	n.slots = make([]childEntry, size)
	n.shift = uint8(64 - bits.Len(uint(size-1)))
	n.filter = 0
	for _, e := range kids {
		h := keyHash(e.head, len(e.key))
		n.filter |= 1 << (h >> 58)
		i := int(h >> n.shift)
		for n.slots[i].node != nil {
			i = (i + 1) & (size - 1)
		}
		n.slots[i] = e
	}
}

// predInfo is one distinct predicate on one key.
type predInfo struct {
	weight  int32   // how unselective its kind is, for choosing anchors
	uses    int32   // clauses that hold it
	anchors []int32 // alternatives whose anchor clause holds it
}

type clause struct {
	path   int32
	absent bool    // exists:false is one of its alternatives
	preds  []int32 // any of them satisfies it
}

type alt struct {
	pattern int32
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
			a := alt{pattern: int32(pi)}
			for _, f := range sp.fields {
				path, ok := keys[f.key]
				if !ok {
					path = int32(len(m.paths))
					keys[f.key] = path
					m.paths = append(m.paths, newPathIndex())
					m.insertKey(f.key, path)
				}
				cl := clause{path: path, absent: f.absent}
				for _, pr := range f.preds {
					id := m.paths[path].intern(m, pr)
					if !slices.Contains(cl.preds, id) {
						cl.preds = append(cl.preds, id)
						m.preds[id].uses++
					}
				}
				a.clauses = append(a.clauses, int32(len(m.clauses)))
				m.clauses = append(m.clauses, cl)
			}
			m.alts = append(m.alts, a)
		}
	}
	for ai := range m.alts {
		m.anchor(int32(ai))
	}
	for _, pi := range m.paths {
		pi.finish()
	}
	m.pool.New = func() any { return m.newScratch() }
	return m
}

// anchor picks the alternative's most selective clause that only a value
// can satisfy: the one whose predicates are of the most selective kinds and
// shared by the fewest clauses.
func (m *Matcher) anchor(ai int32) {
	best, bestScore := int32(-1), int64(math.MaxInt64)
	for _, c := range m.alts[ai].clauses {
		cl := &m.clauses[c]
		if cl.absent {
			continue
		}
		var score int64
		for _, p := range cl.preds {
			score += int64(m.preds[p].weight) * int64(m.preds[p].uses)
		}
		if score < bestScore {
			best, bestScore = c, score
		}
	}
	if best < 0 {
		m.always = append(m.always, ai)
		return
	}
	for _, p := range m.clauses[best].preds {
		m.preds[p].anchors = append(m.preds[p].anchors, ai)
	}
}

func (m *Matcher) insertKey(key string, path int32) {
	n := m.root
	for part := range strings.SplitSeq(key, ".") {
		c := n.child([]byte(part))
		if c == nil {
			c = &pathNode{path: -1}
			n.add(part, c)
		}
		n = c
	}
	n.path = path
}

// hasDot reports whether k, whose keyHead is head, has a dot, looking at
// eight bytes at a time.
func hasDot(k []byte, head uint64) bool {
	const dots = lo * '.'
	if hasZero(head^dots) != 0 {
		return true
	}
	for i := 8; i < len(k); i += 8 {
		if hasZero(keyHead(k[i:])^dots) != 0 {
			return true
		}
	}
	return false
}

// leafless reports whether no key continues below n.
func (n *pathNode) leafless() bool { return n.kids == 0 }

// lookup follows an event key, whose dots separate components as they do
// in pattern keys.
func (n *pathNode) lookup(key []byte) *pathNode {
	// Components have no dots, so a key that names a child has none: look
	// for dots only when it does not, and for a short key, in a word.
	head := keyHead(key)
	if c := n.find(head, key); c != nil || !hasDot(key, head) {
		return c
	}
	for n != nil {
		i := bytes.IndexByte(key, '.')
		if i < 0 {
			return n.child(key)
		}
		n = n.child(key[:i])
		key = key[i+1:]
	}
	return nil
}

// Match appends to dst the indexes, ascending, of the patterns event
// matches. event must be a JSON object; malformed JSON yields a
// *SyntaxError and other values ErrNotObject.
func (m *Matcher) Match(event []byte, dst []int) ([]int, error) {
	s := m.pool.Get().(*scratch)
	defer m.put(s, len(event))
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
	for _, list := range [2][]int32{s.cands, m.always} {
		for _, a := range list {
			p := m.alts[a].pattern
			if s.patGen[p] == s.gen {
				continue
			}
			ok, err := s.finish(m, a)
			if err != nil {
				return dst[:start], err
			}
			if ok {
				s.patGen[p] = s.gen
				dst = append(dst, int(p))
			}
		}
	}
	slices.Sort(dst[start:])
	return dst, nil
}

// Patterns reports how many patterns the Matcher holds.
func (m *Matcher) Patterns() int { return m.patterns }

// --- per-key indexes ---

// pathIndex holds the distinct predicates on one key.
type pathIndex struct {
	ids        map[string]int32 // predicate key → predicate, for interning
	exact      strIndex         // typed value key → predicate
	hasIP      bool             // exact holds address keys
	numeric    bool             // some predicate needs the value as a number
	needFold   bool
	fold       strIndex
	prefix     affixIndex
	suffix     affixIndex
	prefixFold affixIndex
	suffixFold affixIndex
	globs      []globEntry
	globPrefix affixIndex // globs by their leading literal, as indexes into globs
	globRest   []int32    // globs that start with *
	ranges     rangeIndex
	cidrs      cidrIndex
	exists     int32 // the exists:true predicate, or -1
	buts       []butEntry
}

type globEntry struct {
	g    *glob
	pred int32
}

type butEntry struct {
	but  *anythingBut
	pred int32
}

func newPathIndex() *pathIndex {
	return &pathIndex{ids: map[string]int32{}, exists: -1}
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
	binary.BigEndian.PutUint64(b, math.Float64bits(f))
}

// predKey identifies a predicate for interning: its kind and operand, each
// string length-prefixed so that no two operands share a key.
func predKey(p pred) string {
	b := []byte{byte(p.kind)}
	str := func(x string) {
		b = binary.AppendUvarint(b, uint64(len(x)))
		b = append(b, x...)
	}
	switch p.kind {
	case pString, pNumText, pPrefix, pSuffix, pPrefixFold, pSuffixFold, pFold, pWildcard:
		str(p.s)
	case pIP:
		str(exactIP(p.ip))
	case pNumber:
		str(exactNumber(p.f))
	case pRange:
		str(exactNumber(p.lo))
		str(exactNumber(p.hi))
		b = append(b, byte(btoi(p.loIncl)), byte(btoi(p.hiIncl)))
	case pCIDR:
		str(p.cidr.String())
	case pAnythingBut:
		b = append(b, byte(p.but.kind))
		b = binary.AppendUvarint(b, uint64(len(p.but.strs)+len(p.but.nums)+len(p.but.globs)))
		for _, x := range p.but.strs {
			str(x)
		}
		for _, x := range p.but.nums {
			str(exactNumber(x))
		}
		for _, g := range p.but.globs {
			str(g.String())
		}
	}
	return string(b)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// weights rank predicate kinds by how many events they tend to match: an
// exact value few, a prefix more, a range or CIDR more, anything-but and
// exists nearly all.
var weights = map[predKind]int32{
	pString: 1, pIP: 1, pNumber: 1, pNumText: 1, pFold: 1,
	pTrue: 16, pFalse: 16, pNull: 16,
	pPrefix: 4, pSuffix: 4, pPrefixFold: 4, pSuffixFold: 4, pWildcard: 4,
	pRange: 8, pCIDR: 8,
	pExists: 64, pAnythingBut: 64,
}

// intern returns the predicate's ID on this key, adding it to the index
// the first time.
func (pi *pathIndex) intern(m *Matcher, p pred) int32 {
	key := predKey(p)
	if id, ok := pi.ids[key]; ok {
		return id
	}
	id := int32(len(m.preds))
	m.preds = append(m.preds, predInfo{weight: weights[p.kind]})
	pi.ids[key] = id
	switch p.kind {
	case pString:
		pi.exact.set(exactString(p.s), id)
	case pIP:
		pi.hasIP = true
		pi.exact.set(exactIP(p.ip), id)
	case pNumber:
		pi.numeric = true
		pi.exact.set(exactNumber(p.f), id)
	case pNumText:
		pi.numeric = true
		pi.exact.set(exactNumText(p.s), id)
	case pTrue:
		pi.exact.set("t", id)
	case pFalse:
		pi.exact.set("f", id)
	case pNull:
		pi.exact.set("z", id)
	case pPrefix:
		pi.prefix.add(p.s, id)
	case pSuffix:
		pi.suffix.add(p.s, id)
	case pPrefixFold:
		pi.needFold = true
		pi.prefixFold.add(p.s, id)
	case pSuffixFold:
		pi.needFold = true
		pi.suffixFold.add(p.s, id)
	case pFold:
		pi.needFold = true
		pi.fold.set(exactString(p.s), id)
	case pWildcard:
		gi := int32(len(pi.globs))
		pi.globs = append(pi.globs, globEntry{g: p.glob, pred: id})
		if lead := p.glob.parts[0]; lead != "" && len(p.glob.parts) > 1 {
			pi.globPrefix.add(lead, gi)
		} else {
			pi.globRest = append(pi.globRest, gi)
		}
	case pRange:
		pi.numeric = true
		pi.ranges.iv = append(pi.ranges.iv, interval{lo: p.lo, hi: p.hi, loIncl: p.loIncl, hiIncl: p.hiIncl, pred: id})
	case pCIDR:
		pi.cidrs.add(p.cidr, id)
	case pExists:
		pi.exists = id
	case pAnythingBut:
		if p.but.kind == butNumbers {
			pi.numeric = true
		}
		if p.but.kind == butFold {
			pi.needFold = true
		}
		pi.buts = append(pi.buts, butEntry{but: p.but, pred: id})
	}
	return id
}

func (pi *pathIndex) finish() {
	pi.ranges.build()
	pi.cidrs.build()
	for _, a := range []*affixIndex{&pi.prefix, &pi.suffix, &pi.prefixFold, &pi.suffixFold, &pi.globPrefix} {
		a.build()
	}
	pi.ids = nil
}

// strIndex maps typed values to predicates. Its keys are spelled as
// exactString and the like spell them, the type byte first, and looked up
// by type and value, so that a value need not be copied after its type
// byte first. It is an open-addressing table hashed on the type, the
// value's length and its first and last eight bytes, which costs less than
// a map's hash of the whole string for the short values of events.
type strIndex struct {
	keys  []string
	ids   []int32
	slots []int32 // indexes into keys, -1 for none; a power of two long, at most half full
	shift uint8   // 64 - log2(len(slots))
}

func (x *strIndex) len() int { return len(x.keys) }

func (x *strIndex) slot(typ byte, v []byte) int {
	h := keyHead(v) ^ uint64(len(v))<<56 ^ uint64(typ)<<48
	if len(v) > 8 {
		h ^= bits.RotateLeft64(binary.LittleEndian.Uint64(v[len(v)-8:]), 29)
	}
	return int((h * 0x9e3779b97f4a7c15) >> x.shift)
}

// get returns the predicate of value v of type typ.
func (x *strIndex) get(typ byte, v []byte) (int32, bool) {
	if j := x.find(typ, v); j >= 0 {
		return x.ids[j], true
	}
	return 0, false
}

// find returns the index in keys of value v of type typ, or -1.
func (x *strIndex) find(typ byte, v []byte) int32 {
	if len(x.keys) == 0 {
		return -1
	}
	mask := len(x.slots) - 1
	for i := x.slot(typ, v); ; i = (i + 1) & mask {
		j := x.slots[i]
		if j < 0 {
			return -1
		}
		if k := x.keys[j]; len(k) == len(v)+1 && k[0] == typ && k[1:] == string(v) {
			return j
		}
	}
}

// set maps k, a type byte and a value, to id.
func (x *strIndex) set(k string, id int32) {
	if j := x.find(k[0], []byte(k[1:])); j >= 0 {
		x.ids[j] = id
		return
	}
	x.keys = append(x.keys, k)
	x.ids = append(x.ids, id)
	if 2*len(x.keys) <= len(x.slots) {
		x.insert(len(x.keys) - 1)
		return
	}
	size := max(4, 2*len(x.slots))
	x.slots = make([]int32, size)
	for i := range x.slots {
		x.slots[i] = -1
	}
	x.shift = uint8(64 - bits.Len(uint(size-1)))
	for j := range x.keys {
		x.insert(j)
	}
}

func (x *strIndex) insert(j int) {
	mask := len(x.slots) - 1
	k := x.keys[j]
	i := x.slot(k[0], []byte(k[1:]))
	for x.slots[i] >= 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = int32(j)
}

// affixIndex finds prefixes (or suffixes) of a value with one map lookup
// per distinct length. A glob index maps a literal to several globs.
type affixIndex struct {
	m    map[string][]int32
	lens []int
}

func (a *affixIndex) add(s string, id int32) {
	if a.m == nil {
		a.m = map[string][]int32{}
	}
	a.m[s] = append(a.m[s], id)
}

func (a *affixIndex) build() {
	for k := range a.m {
		if !slices.Contains(a.lens, len(k)) {
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
	pred           int32
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
	m        map[netip.Prefix]int32
	lens4    []int
	lens6    []int
	nonEmpty bool
}

func (ci *cidrIndex) add(p netip.Prefix, id int32) {
	if ci.m == nil {
		ci.m = map[netip.Prefix]int32{}
	}
	ci.m[p] = id
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

// hit says a value satisfies a predicate.
type hit struct {
	pred, leaf int32
}

// scratch is the reusable state of one Match call.
type scratch struct {
	gen        uint32
	leaves     []leaf
	mem        []arrayPos
	stack      []arrayPos
	arrays     int32
	arena      []byte // decoded strings (leaves keep slices of it, valid if it grows)
	folds      []byte
	keyBuf     []byte
	hits       []hit
	cands      []int32
	pathGen    []uint32 // the key has a value in this event
	pathMemGen []uint32 // the key has a value inside an array element
	predGen    []uint32 // the predicate is satisfied by a value
	predMem    []uint32 // ... by a value inside an array element
	altGen     []uint32 // the alternative is a candidate
	patGen     []uint32 // the pattern matched
	bind       []arrayPos
	choices    [][]int32 // per clause of the alternative being verified: values that satisfy it
	present    [][]int32 // ... and for exists:false clauses, the values at its key
	steps      int       // work spent on array consistency for this event
}

func (m *Matcher) newScratch() *scratch {
	return &scratch{
		pathGen:    make([]uint32, len(m.paths)),
		pathMemGen: make([]uint32, len(m.paths)),
		predGen:    make([]uint32, len(m.preds)),
		predMem:    make([]uint32, len(m.preds)),
		altGen:     make([]uint32, len(m.alts)),
		patGen:     make([]uint32, m.patterns),
	}
}

// maxArena bounds the arena a scratch is given up front, and keeps in the
// pool: a large event's decoded strings grow it as they need, and a 60 MB
// event does not leave a 60 MB arena behind.
const maxArena = 64 << 10

// put returns s to the pool. After a large event it keeps neither an
// arena or folds grown past maxArena nor leaves, which hold slices of the
// event and of the arena.
func (m *Matcher) put(s *scratch, eventLen int) {
	if eventLen > maxArena || cap(s.arena) > maxArena {
		clear(s.leaves)
		s.leaves = s.leaves[:0]
		if cap(s.arena) > maxArena {
			s.arena = nil
		}
		if cap(s.folds) > maxArena {
			s.folds = nil
		}
	}
	m.pool.Put(s)
}

func (s *scratch) reset() {
	s.gen++
	if s.gen == 0 { // wrapped: stamps from 2^32 events ago could collide
		for _, a := range [][]uint32{s.pathGen, s.pathMemGen, s.predGen, s.predMem, s.altGen, s.patGen} {
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
	s.steps = 0
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
	if n := min(len(data), maxArena); cap(s.arena) < n {
		s.arena = make([]byte, 0, n)
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
	d := sc.data
	for {
		// Most keys are plain strings right before their colon; the
		// scanner reads the others, and says what is wrong.
		var key []byte
		if i := sc.pos; i < len(d) && d[i] == '"' {
			if end := plainStr(d, i); end >= 0 && end+1 < len(d) && d[end+1] == ':' {
				key = d[i+1 : end]
				sc.pos = end + 2
			}
		}
		if key == nil {
			a, b, esc, err := sc.key()
			if err != nil {
				return err
			}
			key = d[a:b]
			if esc {
				s.keyBuf = unescape(s.keyBuf[:0], key)
				key = s.keyBuf
			}
		}
		// A value under a key no pattern mentions is skipped, plain
		// strings and containers here; the scanner takes the rest.
		var err error
		child := n.lookup(key)
		switch i := sc.pos; {
		case child != nil:
			err = s.value(child, sc, depth+1)
		case i < len(d) && d[i] == '"':
			if end := skipStr(d, i+1); end >= 0 {
				sc.pos = end
			} else {
				err = sc.skip()
			}
		case i < len(d) && (d[i] == '{' || d[i] == '['):
			if end, ok := skipFast(d, i); ok {
				sc.pos = end
			} else {
				err = sc.skip()
			}
		default:
			err = sc.skip()
		}
		if err != nil {
			return err
		}
		if i := sc.pos; i < len(d) && d[i] == ',' {
			sc.pos = i + 1
			continue
		}
		if more, err := sc.next('}'); !more {
			return err
		}
	}
}

func (s *scratch) value(n *pathNode, sc *scanner, depth int) error {
	if depth >= maxDepth {
		return sc.errorf("nesting deeper than %d", maxDepth)
	}
	switch sc.peek() {
	case '{':
		if n.leafless() {
			return sc.skipNested()
		}
		return s.object(n, sc, depth)
	case '[':
		if n.leafless() && n.path < 0 {
			return sc.skipNested()
		}
		return s.array(n, sc, depth)
	case '"':
		if end := plainStr(sc.data, sc.pos); end >= 0 {
			if n.path >= 0 {
				s.leaf(n.path, kString, sc.data[sc.pos+1:end])
			}
			sc.pos = end + 1
			return nil
		}
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
		if more, err := sc.next(']'); !more {
			return err
		}
	}
}

func (s *scratch) leaf(path int32, kind leafKind, v []byte) {
	off := int32(len(s.mem))
	s.mem = append(s.mem, s.stack...)
	s.leaves = append(s.leaves, leaf{path: path, kind: kind, val: v, memOff: off, memLen: int32(len(s.stack)), foldLen: -1})
}

// --- evaluation ---

// mark records that leaf li satisfies predicate p, and puts forward the
// alternatives anchored on it.
func (s *scratch) mark(m *Matcher, p, li int32) {
	s.hits = append(s.hits, hit{p, li})
	if s.leaves[li].memLen > 0 {
		s.predMem[p] = s.gen
	}
	if s.predGen[p] == s.gen {
		return
	}
	s.predGen[p] = s.gen
	for _, a := range m.preds[p].anchors {
		if s.altGen[a] != s.gen {
			s.altGen[a] = s.gen
			s.cands = append(s.cands, a)
		}
	}
}

func (s *scratch) markAll(m *Matcher, ps []int32, li int32) {
	for _, p := range ps {
		s.mark(m, p, li)
	}
}

// markKey marks the predicate of an exact value, if there is one.
func (s *scratch) markKey(m *Matcher, ids *strIndex, typ byte, v []byte, li int32) {
	if p, ok := ids.get(typ, v); ok {
		s.mark(m, p, li)
	}
}

// eval finds the predicates leaf li satisfies through its key's index.
func (s *scratch) eval(m *Matcher, pi *pathIndex, li int32) {
	lf := &s.leaves[li]
	if pi.exists >= 0 {
		s.mark(m, pi.exists, li)
	}
	switch lf.kind {
	case kString:
		v := lf.val
		var ip netip.Addr
		ipOK := false
		if pi.hasIP || pi.cidrs.nonEmpty {
			ip, ipOK = parseIP(v)
		}
		if pi.exact.len() > 0 {
			if ipOK && pi.hasIP {
				b := ip.As16()
				s.markKey(m, &pi.exact, 'i', b[:], li)
			} else {
				s.markKey(m, &pi.exact, 's', v, li)
			}
		}
		s.affix(m, &pi.prefix, v, false, li)
		s.affix(m, &pi.suffix, v, true, li)
		if pi.needFold {
			f := s.folded(lf)
			if pi.fold.len() > 0 {
				s.markKey(m, &pi.fold, 's', f, li)
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
						s.mark(m, g.pred, li)
					}
				}
			}
			for _, gi := range pi.globRest {
				if g := &pi.globs[gi]; g.g.match(v) {
					s.mark(m, g.pred, li)
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
				if id, ok := pi.cidrs.m[p]; ok {
					s.mark(m, id, li)
				}
			}
		}
	case kNumber:
		if pi.numeric {
			f, ok := s.number(lf)
			if ok {
				s.rangeQuery(m, &pi.ranges, f, 0, len(pi.ranges.iv), li)
			}
			if pi.exact.len() > 0 {
				if ok {
					var b [8]byte
					putFloat(b[:], f)
					s.markKey(m, &pi.exact, 'n', b[:], li)
				} else {
					s.markKey(m, &pi.exact, 'N', lf.val, li)
				}
			}
		}
	case kTrue:
		s.markKey(m, &pi.exact, 't', nil, li)
	case kFalse:
		s.markKey(m, &pi.exact, 'f', nil, li)
	case kNull:
		s.markKey(m, &pi.exact, 'z', nil, li)
	}
	for i := range pi.buts {
		b := &pi.buts[i]
		if !b.but.excludes(s, lf) {
			s.mark(m, b.pred, li)
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
		s.markAll(m, a.m[string(k)], li)
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
			s.mark(m, iv.pred, li)
		}
		i = mid + 1
	}
}

// satisfied reports whether a value satisfies some predicate of the
// clause, and whether one inside an array element does.
func (s *scratch) satisfied(cl *clause) (ok, inArray bool) {
	for _, p := range cl.preds {
		if s.predGen[p] == s.gen {
			ok = true
			if s.predMem[p] == s.gen {
				return true, true
			}
		}
	}
	return ok, false
}

// finish decides a candidate alternative: its value clauses, its
// exists:false clauses, and array consistency when it matters.
func (s *scratch) finish(m *Matcher, a int32) (bool, error) {
	al := &m.alts[a]
	inArrays := 0        // clauses whose choice could conflict with another's
	absentFails := false // an exists:false clause fails unless arrays rescue it
	for _, c := range al.clauses {
		cl := &m.clauses[c]
		sat, memHit := s.satisfied(cl)
		if !cl.absent {
			if !sat {
				return false, nil
			}
			if memHit {
				inArrays++
			}
			continue
		}
		if s.pathGen[cl.path] != s.gen {
			continue // the key has no value: absent
		}
		pathMem := s.pathMemGen[cl.path] == s.gen
		if sat {
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

// maxSteps bounds the work of checking array consistency for one event:
// choices tried and values looked at, over all its candidates.
const maxSteps = 1 << 20

// verify searches for one value per clause such that no two come from
// different elements of one array, taking clauses in key order; an
// exists:false clause holds when no value at its key is consistent with
// the choices made before it. This is EventBridge's definition.
func (s *scratch) verify(m *Matcher, al *alt) (bool, error) {
	for len(s.choices) < len(al.clauses) {
		s.choices = append(s.choices, nil)
		s.present = append(s.present, nil)
	}
	for i, c := range al.clauses {
		cl := &m.clauses[c]
		ch := s.choices[i][:0]
		var prev int32 = -1
		for _, h := range s.hits {
			if !slices.Contains(cl.preds, h.pred) {
				continue
			}
			if prev >= 0 && s.sameMem(prev, h.leaf) {
				continue // interchangeable with the previous choice
			}
			ch = append(ch, h.leaf)
			prev = h.leaf
		}
		s.choices[i] = ch
		pr := s.present[i][:0]
		if cl.absent {
			for li := range s.leaves {
				if s.leaves[li].path == cl.path {
					pr = append(pr, int32(li))
				}
			}
		}
		s.present[i] = pr
		s.steps += len(s.hits) + len(s.leaves)
	}
	s.bind = s.bind[:0]
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
		for _, li := range s.present[i] {
			s.steps++
			if s.consistent(li) {
				present = true
				break
			}
		}
		if !present && s.search(m, al, i+1) {
			return true
		}
	}
	for _, li := range s.choices[i] {
		if s.steps++; s.steps > maxSteps {
			return false
		}
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
