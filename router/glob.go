package router

import (
	"bytes"
	"fmt"
	"strings"
)

// glob is a compiled wildcard pattern: literal parts separated by *, which
// matches any run of characters, the empty one included.
type glob struct {
	parts []string // len(parts) = stars + 1; parts may be empty
}

// compileGlob parses a wildcard operand: * is the wildcard, \* a literal
// star and \\ a literal backslash. Two stars in a row and any other escape
// are errors, as in EventBridge.
func compileGlob(s string) (*glob, error) {
	g := &glob{}
	var cur strings.Builder
	prevStar := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*':
			if prevStar {
				return nil, fmt.Errorf("consecutive wildcard characters at offset %d", i-1)
			}
			g.parts = append(g.parts, cur.String())
			cur.Reset()
			prevStar = true
			continue
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '*' && s[i+1] != '\\') {
				return nil, fmt.Errorf("invalid escape at offset %d: only \\* and \\\\ are allowed", i)
			}
			i++
			cur.WriteByte(s[i])
		default:
			cur.WriteByte(c)
		}
		prevStar = false
	}
	g.parts = append(g.parts, cur.String())
	return g, nil
}

// match reports whether the whole of s matches. The first part anchors at
// the start, the last at the end, and the middle ones are found leftmost
// first, which is optimal for patterns whose only wildcard is *.
func (g *glob) match(s []byte) bool {
	if len(g.parts) == 1 {
		return string(s) == g.parts[0]
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(s) < len(first)+len(last) || string(s[:len(first)]) != first || string(s[len(s)-len(last):]) != last {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, p := range g.parts[1 : len(g.parts)-1] {
		i := bytes.Index(s, []byte(p))
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// String writes the glob back in wildcard syntax.
func (g *glob) String() string {
	var b strings.Builder
	for i, p := range g.parts {
		if i > 0 {
			b.WriteByte('*')
		}
		b.WriteString(strings.NewReplacer(`\`, `\\`, `*`, `\*`).Replace(p))
	}
	return b.String()
}
