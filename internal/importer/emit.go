package importer

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// ynode is a node of the YAML document the import writes: a scalar, a
// mapping or a sequence, with comments. yaml.v3 places comments on its own
// nodes loosely (a comment after a list's last item moves to the next
// key), and the output is read by people who act on its comments, so the
// document is written by this small emitter; yaml.v3 checks each scalar's
// form.
type ynode struct {
	kind ykind
	// A scalar's value, and its type: "str", "num", "bool" or "null".
	val, typ string
	// flow writes a mapping or sequence on one line: {a: b}, [a, b].
	flow bool
	// A mapping's keys and values, or a sequence's items (vals).
	keys []string
	vals []*ynode
	// heads are comment lines written before each entry or item.
	heads [][]string
	// foot are comment lines after the last entry or item.
	foot []string
}

type ykind uint8

const (
	yScalar ykind = iota
	yMap
	ySeq
)

func yStr(s string) *ynode { return &ynode{kind: yScalar, val: s, typ: "str"} }
func yNum(s string) *ynode { return &ynode{kind: yScalar, val: s, typ: "num"} }
func yBool(b bool) *ynode {
	return &ynode{kind: yScalar, val: map[bool]string{true: "true", false: "false"}[b], typ: "bool"}
}
func yMapNode() *ynode    { return &ynode{kind: yMap} }
func ySeqNode() *ynode    { return &ynode{kind: ySeq} }
func yText(t text) *ynode { return yStr(t.config()) }
func yFlowSeq() *ynode    { return &ynode{kind: ySeq, flow: true} }
func yStrs(ss []string) *ynode {
	n := yFlowSeq()
	for _, s := range ss {
		n.add(yStr(s))
	}
	return n
}

// set adds a mapping entry, with comment lines before it.
func (n *ynode) set(key string, v *ynode, comments ...string) *ynode {
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
	n.heads = append(n.heads, comments)
	return n
}

// add appends a sequence item, with comment lines before it.
func (n *ynode) add(v *ynode, comments ...string) *ynode {
	n.vals = append(n.vals, v)
	n.heads = append(n.heads, comments)
	return n
}

// get returns a mapping's value for key, or nil.
func (n *ynode) get(key string) *ynode {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// emit writes the document whose root is the mapping n.
func emit(n *ynode) []byte {
	var b strings.Builder
	writeBlock(&b, n, 0)
	for _, c := range n.foot {
		writeComment(&b, 0, c)
	}
	return []byte(b.String())
}

func writeComment(b *strings.Builder, indent int, c string) {
	if c == "" {
		b.WriteString("\n")
		return
	}
	b.WriteString(strings.Repeat(" ", indent) + "# " + c + "\n")
}

// writeBlock writes a block mapping or sequence whose entries start at
// column indent. A sequence's items are "- " at indent.
func writeBlock(b *strings.Builder, n *ynode, indent int) {
	pad := strings.Repeat(" ", indent)
	for i, v := range n.vals {
		// A blank line sets apart the file's sections, and the commented
		// entries and items within them.
		if i > 0 && (indent == 0 && n.kind == yMap || len(n.heads[i]) > 0) {
			b.WriteString("\n")
		}
		for _, c := range n.heads[i] {
			writeComment(b, indent, c)
		}
		if n.kind == yMap {
			b.WriteString(pad + plainKey(n.keys[i]) + ":")
		} else {
			b.WriteString(pad + "-")
		}
		writeValue(b, v, indent, n.kind == ySeq)
	}
	if n.kind != yMap || indent > 0 {
		for _, c := range n.foot {
			writeComment(b, indent, c)
		}
	}
}

// writeValue writes v after "key:" or "-" at column indent.
func writeValue(b *strings.Builder, v *ynode, indent int, item bool) {
	switch {
	case v.kind == yScalar:
		s := scalarText(v, false)
		if strings.HasPrefix(s, "|") {
			// A literal block: its lines indented under the key.
			head, body, _ := strings.Cut(s, "\n")
			b.WriteString(" " + head + "\n")
			for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
				if l == "" {
					b.WriteString("\n")
					continue
				}
				b.WriteString(strings.Repeat(" ", indent) + l + "\n") // l is indented by two
			}
			return
		}
		b.WriteString(" " + s + "\n")
	case v.flow || len(v.vals) == 0:
		b.WriteString(" " + flowText(v) + "\n")
	case item && v.kind == yMap:
		// "- key: value", the item's other keys under the first.
		var first strings.Builder
		writeBlock(&first, v, indent+2)
		b.WriteString(" " + strings.TrimLeft(first.String(), " "))
	default:
		b.WriteString("\n")
		writeBlock(b, v, indent+2)
	}
}

// flowText writes v on one line, in flow style.
func flowText(v *ynode) string {
	switch v.kind {
	case yScalar:
		return scalarText(v, true)
	case yMap:
		parts := make([]string, len(v.keys))
		for i, k := range v.keys {
			parts[i] = flowKey(k) + ": " + flowText(v.vals[i])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	parts := make([]string, len(v.vals))
	for i, e := range v.vals {
		parts[i] = flowText(e)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// plainKey writes a mapping key, quoted when it must be.
func plainKey(k string) string {
	if plainOK(k, false) {
		return k
	}
	return doubleQuoted(k)
}

func flowKey(k string) string {
	if plainOK(k, true) {
		return k
	}
	return doubleQuoted(k)
}

// scalarText writes a scalar: plain when YAML reads it back as the same
// value of the same type, else quoted (single quotes for one line with
// double quotes in it, such as a JSON template; double quotes, JSON's
// escapes, otherwise), or as a literal block for several lines.
func scalarText(v *ynode, flow bool) string {
	switch v.typ {
	case "bool", "null":
		return v.val
	case "num":
		if readsAs(v.val, flow, "!!int", "!!float") {
			return v.val
		}
		return "!!float " + v.val
	}
	s := v.val
	// Values read from the environment, and placeholders (<key>), read
	// better quoted.
	if !strings.Contains(s, "${") && !strings.HasPrefix(s, "<") && plainOK(s, flow) && (!flow || flowWord().MatchString(s)) {
		return s
	}
	if !flow && strings.Contains(s, "\n") {
		if lb := literalBlock(s); lb != "" {
			return lb
		}
	}
	if !strings.ContainsAny(s, "'\n\r\t") && strings.Contains(s, `"`) && !hasControl(s) {
		return "'" + s + "'"
	}
	return doubleQuoted(s)
}

// hasControl reports whether s has a character YAML does not take as it
// is (outside its printable set) or that reads poorly (tab, line breaks).
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return !printable(r) || r == '\t' || r == '\n' || r == '\r' })
}

// printable is YAML's printable set, less the BOM.
func printable(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return true
	case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
		return false
	case r >= 0xd800 && r <= 0xdfff, r == 0xfeff, r == 0xfffe, r == 0xffff, r == utf8.RuneError:
		return false
	}
	return true
}

// doubleQuoted writes s as a YAML double-quoted scalar: JSON's escapes for
// quotes, backslashes and line breaks, \uXXXX for what YAML does not
// take as it is.
func doubleQuoted(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == 0x85 || !printable(r):
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// plainOK reports whether s can be written unquoted and be read back as
// the same string.
func plainOK(s string, flow bool) bool {
	if s == "" || hasControl(s) || strings.TrimSpace(s) != s || strings.Contains(s, " #") || strings.Contains(s, ": ") {
		return false
	}
	return readsAs(s, flow, "!!str") && readBack(s, flow) == s
}

// readsAs reports whether YAML reads s, written plain, as one of tags.
func readsAs(s string, flow bool, tags ...string) bool {
	n := parseOne(s, flow)
	if n == nil {
		return false
	}
	for _, t := range tags {
		if n.ShortTag() == t && n.Style == 0 {
			return true
		}
	}
	return false
}

func readBack(s string, flow bool) string {
	if n := parseOne(s, flow); n != nil {
		return n.Value
	}
	return "\x00"
}

// parseOne parses s as the value of a key (or, flow, an item of a flow
// sequence) and returns that scalar node, or nil.
func parseOne(s string, flow bool) *yaml.Node {
	doc := "k: " + s
	if flow {
		doc = "k: [" + s + "]"
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil || len(root.Content) != 1 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode || len(m.Content) != 2 {
		return nil
	}
	v := m.Content[1]
	if flow {
		if v.Kind != yaml.SequenceNode || len(v.Content) != 1 {
			return nil
		}
		v = v.Content[0]
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "" {
		return nil
	}
	return v
}

// literalBlock writes s as a literal block ("|" and its lines, indented
// by two), or "" when s cannot be one (YAML would read it otherwise).
func literalBlock(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !printable(r) || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029 }) {
		return ""
	}
	chomp := "-"
	body := s
	switch {
	case strings.HasSuffix(s, "\n\n"):
		chomp = "+"
	case strings.HasSuffix(s, "\n"):
		chomp = ""
		body = strings.TrimSuffix(s, "\n")
	}
	header := "|"
	if strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\n") {
		header += "2"
	}
	header += chomp
	var b strings.Builder
	b.WriteString(header + "\n")
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if l == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("  " + l + "\n")
	}
	if chomp == "+" {
		b.WriteString("\n")
	}
	out := b.String()
	// Check it: YAML must read the same string back.
	var got struct{ K string }
	if err := yaml.Unmarshal([]byte("k: "+out), &got); err != nil || got.K != s {
		return ""
	}
	return strings.TrimSuffix(out, "\n")
}

// flowWord is what a string in a flow list or mapping may be to stay
// unquoted: words (Order Placed, com.example.orders, subnet-1), not the
// operators and placeholders ("<=", "<id>") that read better quoted.
var flowWord = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._/:@+-]*$`) })
