package router

import (
	"errors"
	"strconv"
	"strings"
)

// jsonPath is a compiled input-transformer path: $ followed by .name,
// [index], and the wildcards .* and [*].
type jsonPath struct {
	src   string
	steps []pathStep
	wild  bool
}

type stepKind uint8

const (
	stepKey stepKind = iota
	stepIndex
	stepWild
)

type pathStep struct {
	kind  stepKind
	key   string
	index int
}

// compilePath parses the JSONPath subset EventBridge documents for
// InputPathsMap: dot notation, array indexes and wildcards.
func compilePath(p string) (*jsonPath, error) {
	if len(p) > 256 {
		return nil, errors.New("longer than EventBridge's limit of 256 characters")
	}
	if !strings.HasPrefix(p, "$") {
		return nil, errors.New("a path starts with $, as in $.detail.key")
	}
	jp := &jsonPath{src: p}
	rest := p[1:]
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			name := rest[:end]
			rest = rest[end:]
			switch {
			case name == "":
				return nil, errors.New("empty name after '.' (bracket and recursive forms are not supported)")
			case name == "*":
				jp.steps = append(jp.steps, pathStep{kind: stepWild})
				jp.wild = true
			case strings.ContainsAny(name, "]'\" "):
				return nil, errors.New("invalid character in name " + strconv.Quote(name) + ": use dot notation, as in $.detail.key")
			default:
				jp.steps = append(jp.steps, pathStep{kind: stepKey, key: name})
			}
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errors.New("unclosed '['")
			}
			in := rest[1:end]
			rest = rest[end+1:]
			if in == "*" {
				jp.steps = append(jp.steps, pathStep{kind: stepWild})
				jp.wild = true
				continue
			}
			i, err := strconv.Atoi(in)
			if err != nil || i < 0 || in[0] == '+' {
				return nil, errors.New("[" + in + "]: want an array index such as [0], or [*]; filters, slices and quoted names are not supported")
			}
			jp.steps = append(jp.steps, pathStep{kind: stepIndex, index: i})
		default:
			return nil, errors.New("unexpected " + strconv.QuoteRune(rune(rest[0])) + ": want '.' or '['")
		}
	}
	return jp, nil
}

// eval finds the path in data (a valid JSON value) and calls emit with the
// bounds of each value found: one at most, or any number for a wildcard
// path. It stops early when emit returns false.
func (jp *jsonPath) eval(data []byte, emit func(a, b int) bool) {
	s := &scanner{data: data}
	s.find(jp.steps, emit, false)
}

// find walks steps from the value at s.pos; it returns false once emit
// asked to stop. With consume set (inside a wildcard's loop, which goes on
// to the next element) it leaves s.pos after the value; otherwise it may
// stop as soon as the one value is found.
func (s *scanner) find(steps []pathStep, emit func(a, b int) bool, consume bool) bool {
	c := s.peek()
	if len(steps) == 0 {
		a := s.pos
		if s.skip() != nil {
			return false
		}
		return emit(a, s.pos)
	}
	st := steps[0]
	wild := st.kind == stepWild
	var end byte
	switch {
	case c == '{' && (st.kind == stepKey || wild):
		end = '}'
	case c == '[' && (st.kind == stepIndex || wild):
		end = ']'
	}
	if end != 0 {
		s.pos++
		if s.peek() == end {
			s.pos++
			return true
		}
		for i := 0; ; i++ {
			var match bool
			if end == '}' {
				ka, kb, esc, err := s.key()
				if err != nil {
					return false
				}
				match = wild || keyEquals(s.data[ka:kb], esc, st.key)
			} else {
				match = wild || i == st.index
			}
			if match {
				if !s.find(steps[1:], emit, consume || wild) {
					return false
				}
				if !wild && !consume {
					return true // found the one value; the rest is not needed
				}
			} else if s.skip() != nil {
				return false
			}
			if more, err := s.next(end); err != nil || !more {
				return err == nil
			}
		}
	}
	if consume {
		return s.skip() == nil
	}
	return true
}

// keyEquals compares a raw JSON key with a name.
func keyEquals(raw []byte, esc bool, name string) bool {
	if !esc {
		return string(raw) == name
	}
	var buf [64]byte
	return string(unescape(buf[:0], raw)) == name
}
