package router

import (
	"strings"
	"unicode/utf8"
)

// jkind is the type of a parsed JSON value.
type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNum
	jStr
	jArr
	jObj
)

func (k jkind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// jvalue is a parsed JSON value for the cold paths (patterns, templates):
// object keys keep their order and numbers keep their spelling.
type jvalue struct {
	kind jkind
	b    bool
	s    string // decoded string, or the number as written
	arr  []*jvalue
	keys []string
	vals []*jvalue
}

// parseJSON parses one JSON value, with nothing but white space around it.
func parseJSON(data []byte) (*jvalue, error) {
	s := &scanner{data: data}
	v, err := s.value(0)
	if err != nil {
		return nil, err
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *scanner) value(depth int) (*jvalue, error) {
	if depth >= maxDepth {
		return nil, s.errorf("nesting deeper than %d", maxDepth)
	}
	switch s.peek() {
	case '{':
		s.pos++
		v := &jvalue{kind: jObj}
		if s.peek() == '}' {
			s.pos++
			return v, nil
		}
		for {
			a, b, esc, err := s.key()
			if err != nil {
				return nil, err
			}
			val, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.keys = append(v.keys, decodeStr(s.data[a:b], esc))
			v.vals = append(v.vals, val)
			if more, err := s.next('}'); !more {
				return v, err
			}
		}
	case '[':
		s.pos++
		v := &jvalue{kind: jArr, arr: []*jvalue{}}
		if s.peek() == ']' {
			s.pos++
			return v, nil
		}
		for {
			el, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.arr = append(v.arr, el)
			if more, err := s.next(']'); !more {
				return v, err
			}
		}
	case '"':
		a, b, esc, err := s.str()
		if err != nil {
			return nil, err
		}
		return &jvalue{kind: jStr, s: decodeStr(s.data[a:b], esc)}, nil
	case 't':
		return &jvalue{kind: jBool, b: true}, s.lit("true")
	case 'f':
		return &jvalue{kind: jBool}, s.lit("false")
	case 'n':
		return &jvalue{kind: jNull}, s.lit("null")
	default:
		a, b, err := s.num()
		if err != nil {
			return nil, err
		}
		return &jvalue{kind: jNum, s: string(s.data[a:b])}, nil
	}
}

func decodeStr(raw []byte, esc bool) string {
	if !esc {
		return string(raw)
	}
	return string(unescape(make([]byte, 0, len(raw)), raw))
}

// appendQuoted appends s as a JSON string literal. Like encoding/json it
// escapes <, > and & only when asked; EventBridge does not.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s with the escapes a JSON string needs, without
// quotes. A byte that is not valid UTF-8 becomes \ufffd, as in
// encoding/json: the result is always valid JSON text.
func appendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			continue
		}
		if c >= utf8.RuneSelf {
			if _, n := utf8.DecodeRuneInString(s[i:]); n > 1 {
				i += n - 1
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + 1
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// appendJSON appends v in compact form.
func (v *jvalue) appendJSON(dst []byte) []byte {
	switch v.kind {
	case jNull:
		return append(dst, "null"...)
	case jBool:
		if v.b {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case jNum:
		return append(dst, v.s...)
	case jStr:
		return appendQuoted(dst, v.s)
	case jArr:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.appendJSON(dst)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendQuoted(dst, k)
			dst = append(dst, ':')
			dst = v.vals[i].appendJSON(dst)
		}
		return append(dst, '}')
	}
}

func (v *jvalue) String() string {
	var b strings.Builder
	b.Write(v.appendJSON(nil))
	return b.String()
}
