package router

import (
	"fmt"
	"strconv"
	"sync"
)

// DuplicateKeyError reports an object that has a key twice. Matching and
// rendering would read the first, most JSON parsers downstream the last,
// so a target could be handed something other than what was matched:
// events must have unique keys, as I-JSON (RFC 7493 §2.3) requires.
type DuplicateKeyError struct {
	// Offset is the byte offset of the key's second occurrence.
	Offset int
	// Path is where the key is, in JSONPath: $.detail.items[2].id, with
	// keys that are not plain words in brackets ($["a.b"]).
	Path string
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: duplicate key %s", e.Offset, e.Path)
}

// CheckJSON checks that data is one JSON value, with nothing but white
// space around it, as events must be: RFC 8259 JSON in UTF-8, and no
// object with a key twice. The error is a *SyntaxError or a
// *DuplicateKeyError.
func CheckJSON(data []byte) error {
	c := newStrict(data)
	defer c.release()
	if err := c.value(0); err != nil {
		return c.fail(err)
	}
	return c.s.end()
}

// smallObject is the most keys an object may have before its keys are
// compared through a map rather than one by one.
const smallObject = 16

// strict reads JSON as the scanner's skip does and also refuses objects
// that have a key twice. It recurses, as parseJSON does, to maxDepth.
type strict struct {
	s scanner
	// keys are the keys read so far of the objects open, outermost first.
	keys    []keyRef
	decoded []byte
	// bases and masks are fast's, by depth: where an open object's keys
	// start in keys, and a bit for each of their tags' hashes.
	bases []int32
	masks []uint64
	// ev, when set, receives the top-level object's id, source and
	// detail-type (ParseEvent).
	ev *Event
}

// keyRef is where a key's text is: its bounds in s.data, or in decoded
// (for keys with escapes) when a < 0. It holds no pointers, so that a
// pooled strict keeps no event alive. tag (the length and the first and
// last bytes) tells most different keys apart without reading them.
type keyRef struct {
	a, b int
	tag  uint64
}

func (c *strict) key(k keyRef) []byte {
	if k.a < 0 {
		return c.decoded[-k.a-1 : k.b]
	}
	return c.s.data[k.a:k.b]
}

func keyTag(key []byte) uint64 {
	if len(key) == 0 {
		return 0
	}
	return uint64(len(key))<<16 | uint64(key[0])<<8 | uint64(key[len(key)-1])
}

// strictPool keeps the key lists of past walks: events are read on every
// receive, and most have a few dozen keys.
var strictPool = sync.Pool{New: func() any {
	return &strict{keys: make([]keyRef, 0, 64), bases: make([]int32, fastDepth), masks: make([]uint64, fastDepth)}
}}

func newStrict(data []byte) *strict {
	c := strictPool.Get().(*strict)
	c.s = scanner{data: data}
	return c
}

// release returns c to the pool, holding nothing of the walk's data.
func (c *strict) release() {
	c.s, c.ev, c.keys = scanner{}, nil, c.keys[:0]
	if cap(c.decoded) > 4096 {
		c.decoded = nil
	}
	c.decoded = c.decoded[:0]
	strictPool.Put(c)
}

// dupPath is the error value while the recursion unwinds: the path's
// segments, innermost first.
type dupPath struct {
	offset int
	rev    []string
}

func (*dupPath) Error() string { return "duplicate key" }

// fail turns the error of a walk into the one callers see.
func (c *strict) fail(err error) error {
	d, ok := err.(*dupPath)
	if !ok {
		return err
	}
	b := []byte{'$'}
	for i := len(d.rev) - 1; i >= 0; i-- {
		b = append(b, d.rev[i]...)
	}
	return &DuplicateKeyError{Offset: d.offset, Path: string(b)}
}

// keySegment is a key as a step of a JSONPath.
func keySegment(key []byte) string {
	plain := len(key) > 0
	for _, c := range key {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	if plain {
		return "." + string(key)
	}
	return "[" + string(appendQuoted(nil, string(key))) + "]"
}

// within adds a step to the path of a duplicate key found inside a value.
func within(err error, step string) error {
	if d, ok := err.(*dupPath); ok {
		d.rev = append(d.rev, step)
	}
	return err
}

// value passes over the value at s.pos.
func (c *strict) value(depth int) error {
	s := &c.s
	switch s.peek() {
	case '{', '[':
		// ParseEvent reads the top level itself, for the envelope.
		if depth > 0 || c.ev == nil {
			if end, ok := c.fast(s.data, s.pos); ok {
				s.pos = end
				return nil
			}
		}
		if s.data[s.pos] == '[' {
			return c.array(depth + 1)
		}
		return c.object(depth + 1)
	case '"':
		if end := skipStr(s.data, s.pos+1); end >= 0 {
			s.pos = end
			return nil
		}
	}
	return s.scalar()
}

func (c *strict) array(depth int) error {
	s := &c.s
	if depth >= maxDepth {
		return s.errorf("nesting deeper than %d", maxDepth)
	}
	s.pos++
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := c.value(depth); err != nil {
			if _, ok := err.(*dupPath); ok {
				return within(err, "["+strconv.Itoa(i)+"]")
			}
			return err
		}
		if more, err := s.next(']'); !more {
			return err
		}
	}
}

func (c *strict) object(depth int) error {
	s := &c.s
	if depth >= maxDepth {
		return s.errorf("nesting deeper than %d", maxDepth)
	}
	s.pos++
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	d := s.data
	base := len(c.keys)
	var seen map[string]struct{} // past smallObject keys
	for {
		at := s.pos
		ref := keyRef{a: -1}
		if i := s.pos; i < len(d) && d[i] == '"' {
			if end := plainStr(d, i); end >= 0 && end+1 < len(d) && d[end+1] == ':' {
				ref = keyRef{a: i + 1, b: end}
				s.pos = end + 2
			}
		}
		if ref.a < 0 {
			a, b, esc, err := s.key()
			if err != nil {
				c.keys = c.keys[:base]
				return err
			}
			ref = keyRef{a: a, b: b}
			if esc {
				off := len(c.decoded)
				c.decoded = unescape(c.decoded, d[a:b])
				ref = keyRef{a: -off - 1, b: len(c.decoded)}
			}
		}
		key := c.key(ref)
		ref.tag = keyTag(key)
		dup := false
		if seen == nil {
			for _, k := range c.keys[base:] {
				if k.tag == ref.tag && string(c.key(k)) == string(key) {
					dup = true
					break
				}
			}
			c.keys = append(c.keys, ref)
			if len(c.keys)-base > smallObject {
				seen = make(map[string]struct{}, 2*smallObject)
				for _, k := range c.keys[base:] {
					seen[string(c.key(k))] = struct{}{}
				}
			}
		} else if _, dup = seen[string(key)]; !dup {
			seen[string(key)] = struct{}{}
		}
		if dup {
			c.keys = c.keys[:base]
			return &dupPath{offset: at, rev: []string{keySegment(key)}}
		}
		var err error
		if c.ev != nil && depth == 1 && s.peek() == '"' {
			err = c.envelopeField(key)
		} else {
			err = c.value(depth)
		}
		if err != nil {
			c.keys = c.keys[:base]
			return within(err, keySegment(key))
		}
		if more, err := s.next('}'); !more {
			c.keys = c.keys[:base]
			return err
		}
	}
}

// envelopeField reads a string value of the top-level object, keeping it
// in c.ev when key is id, source or detail-type.
func (c *strict) envelopeField(key []byte) error {
	var dst *string
	switch string(key) {
	case "id":
		dst = &c.ev.ID
	case "source":
		dst = &c.ev.Source
	case "detail-type":
		dst = &c.ev.DetailType
	default:
		return c.value(1)
	}
	a, b, esc, err := c.s.str()
	if err != nil {
		return err
	}
	*dst = decodeStr(c.s.data[a:b], esc)
	return nil
}

// Elements checks that data is a JSON array as CheckJSON requires and
// returns its elements, as slices of data (not copies). A duplicate key's
// path starts at the array: $[1].detail.id.
func Elements(data []byte) ([][]byte, error) {
	c := newStrict(data)
	defer c.release()
	s := &c.s
	if s.peek() != '[' {
		return nil, s.unexpected("'['")
	}
	s.pos++
	var out [][]byte
	if s.peek() == ']' {
		s.pos++
		return out, s.end()
	}
	for i := 0; ; i++ {
		s.peek()
		start := s.pos
		if err := c.value(1); err != nil {
			return nil, c.fail(within(err, "["+strconv.Itoa(i)+"]"))
		}
		out = append(out, data[start:s.pos])
		if more, err := s.next(']'); err != nil {
			return nil, err
		} else if !more {
			return out, s.end()
		}
	}
}

// fast passes over the object or array at i as skipFast does, and also
// refuses an object with a key twice. It gives up (ok false) wherever
// skipFast does, and on a key with escapes, on an object of more than
// smallObject keys and on a repeated key, for the recursive walk to start
// over and say what is wrong, or to use a map: the common event costs one
// tight loop.
func (c *strict) fast(d []byte, i int) (end int, ok bool) {
	var stack [fastDepth / 64]uint64
	bases, masks := c.bases[:fastDepth], c.masks[:fastDepth]
	keys := c.keys
	defer func() { c.keys = keys[:len(c.keys)] }() // keep what append grew
	depth := 0
	for {
		// A value is expected at i.
		if i < len(d) && d[i] <= ' ' {
			i = skipWS(d, i)
		}
		if i >= len(d) {
			return 0, false
		}
		switch ch := d[i]; ch {
		case '"':
			if i = skipStr(d, i+1); i < 0 {
				return 0, false
			}
		case '{', '[':
			i++
			if i < len(d) && d[i] <= ' ' {
				i = skipWS(d, i)
			}
			if i < len(d) && d[i] == ch+2 { // '}' is '{'+2, ']' is '['+2
				i++
				break
			}
			if depth++; depth >= len(bases) {
				return 0, false
			}
			if ch == '[' {
				stack[depth/64] &^= 1 << (depth % 64)
				continue
			}
			stack[depth/64] |= 1 << (depth % 64)
			bases[depth], masks[depth] = int32(len(keys)), 0
			if i, keys = fastKey(d, i, keys, int(bases[depth]), &masks[depth]); i < 0 {
				return 0, false
			}
			continue
		case 't', 'f', 'n':
			if i = skipLit(d, i); i < 0 {
				return 0, false
			}
		default:
			if i = skipNum(d, i); i < 0 {
				return 0, false
			}
		}
		// A value ended: close containers until one continues.
		for {
			if depth == 0 {
				return i, true
			}
			if i < len(d) && d[i] <= ' ' {
				i = skipWS(d, i)
			}
			if i >= len(d) {
				return 0, false
			}
			inObject := stack[depth/64]&(1<<(depth%64)) != 0
			if ch := d[i]; ch == ',' {
				i++
				if inObject {
					if i, keys = fastKey(d, i, keys, int(bases[depth]), &masks[depth]); i < 0 {
						return 0, false
					}
				}
				break
			} else if inObject && ch == '}' || !inObject && ch == ']' {
				i++
				if inObject {
					keys = keys[:bases[depth]]
				}
				depth--
				continue
			}
			return 0, false
		}
	}
}

// fastDepth is the deepest nesting fast follows.
const fastDepth = 256

// fastKey passes over `"name":` at i, as skipKey does, and adds the name to
// keys, which from base hold the names of its object so far; mask has a
// bit for each of their tags' hashes, so that most names are known new
// without comparing. It returns -1 for a name with escapes, one already
// there, or one past smallObject.
func fastKey(d []byte, i int, keys []keyRef, base int, mask *uint64) (int, []keyRef) {
	if i < len(d) && d[i] <= ' ' {
		i = skipWS(d, i)
	}
	if i >= len(d) || d[i] != '"' {
		return -1, keys
	}
	end := plainEnd(d, i+1)
	if end < 0 || len(keys)-base >= smallObject {
		return -1, keys
	}
	key := d[i+1 : end]
	tag := keyTag(key)
	if bit := uint64(1) << (tag * 0x9E3779B97F4A7C15 >> 58); *mask&bit == 0 {
		*mask |= bit
	} else {
		for _, k := range keys[base:] {
			if k.tag == tag && string(d[k.a:k.b]) == string(key) {
				return -1, keys
			}
		}
	}
	keys = append(keys, keyRef{a: i + 1, b: end, tag: tag})
	i = end + 1
	if i < len(d) && d[i] <= ' ' {
		i = skipWS(d, i)
	}
	if i >= len(d) || d[i] != ':' {
		return -1, keys
	}
	return i + 1, keys
}
