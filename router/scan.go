package router

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects in any JSON the router
// reads, as encoding/json does, so hostile input cannot exhaust the stack.
const maxDepth = 10000

// SyntaxError reports malformed JSON at a byte offset.
type SyntaxError struct {
	Offset int // byte offset of the problem
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
}

// scanner reads JSON in place. It validates everything it passes over,
// including the values it skips and the UTF-8 of every string, and never
// allocates except for errors.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) unexpected(want string) error {
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of input, want %s", want)
	}
	return s.errorf("unexpected %q, want %s", s.data[s.pos], want)
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	if s.pos < len(s.data) && s.data[s.pos] > ' ' {
		return s.data[s.pos] // compact JSON: no white space to skip
	}
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// end checks that only white space follows.
func (s *scanner) end() error {
	s.ws()
	if s.pos != len(s.data) {
		return s.errorf("unexpected %q after the top-level value", s.data[s.pos])
	}
	return nil
}

// str scans a string whose opening quote is at s.pos. It returns the raw
// content's bounds and whether it contains escapes.
func (s *scanner) str() (start, end int, esc bool, err error) {
	s.pos++
	start = s.pos
	d := s.data
	for {
		i := s.pos
		// Eight bytes at a time: find the first quote, backslash or control
		// character. The last word is padded with quotes.
		for {
			var w uint64
			if i+8 <= len(d) {
				w = binary.LittleEndian.Uint64(d[i:])
			} else {
				if i >= len(d) {
					break
				}
				var pad [8]byte
				n := copy(pad[:], d[i:])
				for j := n; j < 8; j++ {
					pad[j] = '"'
				}
				w = binary.LittleEndian.Uint64(pad[:])
			}
			if m := special(w); m != 0 {
				i = min(i+bits.TrailingZeros64(m)/8, len(d))
				break
			}
			i += 8
		}
		s.pos = i
		if i >= len(d) {
			return 0, 0, false, s.errorf("unterminated string")
		}
		if d[i] >= utf8.RuneSelf {
			s.pos = utf8Run(d, i)
			if s.pos < len(d) && d[s.pos] >= utf8.RuneSelf {
				return 0, 0, false, s.errorf("invalid UTF-8 in string")
			}
			continue
		}
		switch d[i] {
		case '"':
			s.pos++
			return start, i, esc, nil
		case '\\':
			esc = true
			if i+1 >= len(d) {
				s.pos = i + 1
				return 0, 0, false, s.errorf("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos = i + 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					s.pos = i
					return 0, 0, false, s.errorf("invalid \\u escape")
				}
				s.pos = i + 6
			default:
				s.pos = i
				return 0, 0, false, s.errorf("invalid escape \\%c", d[i+1])
			}
		default:
			return 0, 0, false, s.errorf("control character %#02x in string", d[i])
		}
	}
}

const (
	lo = 0x0101010101010101
	hi = 0x8080808080808080
)

// special is non-zero when some byte of w is a quote, a backslash, a
// control character or not ASCII (to be checked as UTF-8); its lowest set
// bit is in the first such byte.
func special(w uint64) uint64 {
	// A zero byte of q, a zero byte of b: the hasZero trick; a byte below
	// 0x20 borrows into its high bit when 0x20 is taken from it, and a
	// byte of 0x80 or more has its own high bit set (bits above the first
	// borrow may be false alarms, never below it).
	q, b := w^(lo*'"'), w^(lo*'\\')
	return ((w - lo*0x20) | w | (q-lo)&^q | (b-lo)&^b) & hi
}

// utf8Run passes over the valid UTF-8 sequences from i, where d[i] is not
// ASCII, and returns where they end: at the end of d, at an ASCII byte, or
// at a byte that starts no valid sequence (JSON is UTF-8, RFC 8259 §8.1:
// such a byte makes the text invalid). Overlong forms and surrogates are
// invalid, as in utf8.Valid.
func utf8Run(d []byte, i int) int {
	for i < len(d) && d[i] >= utf8.RuneSelf {
		if _, n := utf8.DecodeRune(d[i:]); n > 1 {
			i += n
			continue
		}
		return i
	}
	return i
}

// hasZero is non-zero when some byte of w is zero; its lowest set bit is in
// the first zero byte (bits above it may be false alarms).
func hasZero(w uint64) uint64 { return (w - lo) &^ w & hi }

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// num scans a number per the JSON grammar and returns its bounds.
func (s *scanner) num() (start, end int, err error) {
	d := s.data
	start = s.pos
	i := s.pos
	if i >= len(d) || d[i] != '-' && (d[i] < '0' || d[i] > '9') {
		return 0, 0, s.unexpected("a JSON value")
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return 0, 0, s.unexpected("a digit")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.pos = i
			return 0, 0, s.unexpected("a digit after the decimal point")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.pos = i
			return 0, 0, s.unexpected("a digit in the exponent")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return start, i, nil
}

func (s *scanner) lit(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.unexpected("a JSON value")
	}
	s.pos += len(word)
	return nil
}

// skip passes over one value, validating it.
func (s *scanner) skip() error {
	switch s.peek() {
	case '{', '[':
		return s.skipNested()
	case '"':
		if end := skipStr(s.data, s.pos+1); end >= 0 {
			s.pos = end
			return nil
		}
	}
	return s.scalar()
}

// skipNested passes over an object or array, validating it.
func (s *scanner) skipNested() error {
	if end, ok := skipFast(s.data, s.pos); ok {
		s.pos = end
		return nil
	}
	return s.skipCareful()
}

// skipFast passes over the object or array at i, validating it, and
// returns where it ends. It is skipCareful without the error messages,
// its position in a register rather than in the scanner, and strings
// read by skipStr; it gives up (ok false) on malformed JSON and on
// nesting past 256 levels, for skipCareful to start over and say what is
// wrong.
func skipFast(d []byte, i int) (end int, ok bool) {
	var stack [4]uint64 // bit n%64 of word n/64: level n is an object
	depth := 0
	for {
		// A value is expected at i.
		if i < len(d) && d[i] <= ' ' {
			i = skipWS(d, i)
		}
		if i >= len(d) {
			return 0, false
		}
		switch c := d[i]; c {
		case '"':
			if i = skipStr(d, i+1); i < 0 {
				return 0, false
			}
		case '{', '[':
			i++
			if i < len(d) && d[i] <= ' ' {
				i = skipWS(d, i)
			}
			if i < len(d) && d[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				i++
				break
			}
			if depth++; depth >= len(stack)*64 {
				return 0, false
			}
			if c == '[' {
				stack[depth/64] &^= 1 << (depth % 64)
				continue
			}
			stack[depth/64] |= 1 << (depth % 64)
			if i = skipKey(d, i); i < 0 {
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
			if c := d[i]; c == ',' {
				i++
				if inObject {
					if i = skipKey(d, i); i < 0 {
						return 0, false
					}
				}
				break
			} else if inObject && c == '}' || !inObject && c == ']' {
				i++
				depth--
				continue
			}
			return 0, false
		}
	}
}

func skipWS(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// skipKey passes over `"name":` and the white space around it, or returns
// -1 when there is none.
func skipKey(d []byte, i int) int {
	if i < len(d) && d[i] <= ' ' {
		i = skipWS(d, i)
	}
	if i >= len(d) || d[i] != '"' {
		return -1
	}
	if i = skipStr(d, i+1); i < 0 {
		return -1
	}
	if i < len(d) && d[i] <= ' ' {
		i = skipWS(d, i)
	}
	if i >= len(d) || d[i] != ':' {
		return -1
	}
	return i + 1
}

// nextSpecial returns the index of the first byte from i on that ends or
// interrupts a string's plain ASCII run (a quote, a backslash, a control
// character, or a byte of 0x80 or more, for utf8Run), or len(d): eight
// bytes at a time while eight remain.
func nextSpecial(d []byte, i int) int {
	for i+8 <= len(d) {
		if m := special(binary.LittleEndian.Uint64(d[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	for i < len(d) && d[i] >= 0x20 && d[i] < utf8.RuneSelf && d[i] != '"' && d[i] != '\\' {
		i++
	}
	return i
}

// plainStr returns the index of the closing quote of the string whose
// opening quote is at i, when the string is plain: no escapes, no control
// characters, valid UTF-8. Otherwise it returns -1, for str to read or
// reject it.
func plainStr(d []byte, i int) int { return plainEnd(d, i+1) }

// plainEnd is plainStr from just after the opening quote: nextSpecial's
// loop, going on past valid UTF-8, in one call for the callers' hot loops.
func plainEnd(d []byte, i int) int {
	for {
		for i+8 <= len(d) {
			if m := special(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				goto stop
			}
			i += 8
		}
		for i < len(d) && d[i] >= 0x20 && d[i] < utf8.RuneSelf && d[i] != '"' && d[i] != '\\' {
			i++
		}
	stop:
		if i < len(d) && d[i] == '"' {
			return i
		}
		if i >= len(d) || d[i] < utf8.RuneSelf {
			return -1
		}
		if i = utf8Run(d, i); i < len(d) && d[i] >= utf8.RuneSelf {
			return -1
		}
	}
}

// skipStr passes over the rest of a string, from just after its opening
// quote, validating it, and returns where it ends, or -1 when it is
// malformed.
func skipStr(d []byte, i int) int {
	for {
		i = nextSpecial(d, i)
		if i >= len(d) {
			return -1
		}
		switch d[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(d) {
				return -1
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default:
			if d[i] < utf8.RuneSelf {
				return -1
			}
			if i = utf8Run(d, i); i < len(d) && d[i] >= utf8.RuneSelf {
				return -1
			}
		}
	}
}

// skipNum passes over a number per the JSON grammar, or returns -1.
func skipNum(d []byte, i int) int {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		i = skipDigits(d, i+1)
	default:
		return -1
	}
	if i < len(d) && d[i] == '.' {
		if i+1 >= len(d) || d[i+1] < '0' || d[i+1] > '9' {
			return -1
		}
		i = skipDigits(d, i+2)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return -1
		}
		i = skipDigits(d, i+1)
	}
	return i
}

func skipDigits(d []byte, i int) int {
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		i++
	}
	return i
}

// skipCareful passes over an object or array, saying what is wrong when
// it is malformed. Nesting is tracked with a counter and a bit stack (1 =
// inside an object), not recursion; the stack grows past 256 levels only
// for input that needs it.
func (s *scanner) skipCareful() error {
	var small [4]uint64
	stack := small[:]
	depth := 0
	for {
		// A value is expected here.
		switch s.peek() {
		case '{', '[':
			obj := s.data[s.pos] == '{'
			s.pos++
			if c := s.peek(); obj && c == '}' || !obj && c == ']' {
				s.pos++
				break
			}
			if depth++; depth >= maxDepth {
				return s.errorf("nesting deeper than %d", maxDepth)
			}
			if depth/64 >= len(stack) {
				stack = append(stack, make([]uint64, len(stack))...)
			}
			if obj {
				stack[depth/64] |= 1 << (depth % 64)
				if _, _, _, err := s.key(); err != nil {
					return err
				}
			} else {
				stack[depth/64] &^= 1 << (depth % 64)
			}
			continue
		default:
			if err := s.scalar(); err != nil {
				return err
			}
		}
		// A value ended: close containers until one continues.
		for {
			if depth == 0 {
				return nil
			}
			inObject := stack[depth/64]&(1<<(depth%64)) != 0
			c := s.peek()
			if c == ',' {
				s.pos++
				if inObject {
					if _, _, _, err := s.key(); err != nil {
						return err
					}
				}
				break
			}
			if inObject && c == '}' || !inObject && c == ']' {
				s.pos++
				depth--
				continue
			}
			if inObject {
				return s.unexpected("',' or '}'")
			}
			return s.unexpected("',' or ']'")
		}
	}
}

// key scans `"name":`, returns the name's raw bounds and whether it has
// escapes, and leaves s.pos before the value.
func (s *scanner) key() (a, b int, esc bool, err error) {
	if s.peek() != '"' {
		return 0, 0, false, s.unexpected("an object key")
	}
	if a, b, esc, err = s.str(); err != nil {
		return 0, 0, false, err
	}
	if s.peek() != ':' {
		return 0, 0, false, s.unexpected("':'")
	}
	s.pos++
	return a, b, esc, nil
}

// next reads what follows a member or element: a comma, when another
// follows (more), or the closing byte end ('}' or ']').
func (s *scanner) next(end byte) (more bool, err error) {
	switch s.peek() {
	case ',':
		s.pos++
		return true, nil
	case end:
		s.pos++
		return false, nil
	}
	return false, s.unexpected("',' or '" + string(end) + "'")
}

// scalar passes over a string, number or literal.
func (s *scanner) scalar() error {
	switch s.peek() {
	case '"':
		_, _, _, err := s.str()
		return err
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	_, _, err := s.num()
	return err
}

// unescape appends the decoded content of a JSON string (without quotes)
// to dst. Invalid surrogates become U+FFFD, as in encoding/json. The
// content must have been validated by str.
func unescape(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c != '\\' {
			j := i + 1
			for j < len(src) && src[j] != '\\' {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
			continue
		}
		switch src[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(src[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, rune(hex4(src[i+2:i+6]))); r2 != utf8.RuneError {
						r = r2
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, src[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) uint16 {
	var v uint16
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		v = v<<4 | uint16(c)
	}
	return v
}

// skipLit skips the literal true, false or null at d[i]; -1 when there is
// none.
func skipLit(d []byte, i int) int {
	var lit string
	switch d[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	case 'n':
		lit = "null"
	default:
		return -1
	}
	if i+len(lit) > len(d) || string(d[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}
