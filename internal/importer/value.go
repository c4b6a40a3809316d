package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// envRef is a value the import could not resolve from its input (a name
// CloudFormation generates, a parameter without a default, an export of
// another stack): the config reads it from the environment, as
// ${Name:-Default}, where Default keeps the config valid until it is set.
type envRef struct {
	// Name is the environment variable.
	Name string
	// Default is what the config uses while Name is unset: a value of the
	// right shape (an ARN of the right service, a queue URL), never the
	// real one. It holds neither "}" nor "${".
	Default string
	// What says what to set Name to, for the output's comments and stderr.
	What string
	// Hint is the flag of switchyard import that gives the value instead,
	// or "".
	Hint string
}

// seg is a run of literal text, or one reference to the environment.
type seg struct {
	lit string
	ref *envRef
}

// text is a string value: literal runs and references to the environment.
// The zero text is the empty string.
type text []seg

// lit returns s as a literal text.
func lit(s string) text {
	if s == "" {
		return nil
	}
	return text{{lit: s}}
}

// refText returns a text that is r alone.
func refText(r *envRef) text { return text{{ref: r}} }

// plain is the text with every reference at its default: what the import
// checks and takes apart (an ARN's service, a pattern's validity).
func (t text) plain() string {
	var b strings.Builder
	for _, s := range t {
		if s.ref != nil {
			b.WriteString(s.ref.Default)
		} else {
			b.WriteString(s.lit)
		}
	}
	return b.String()
}

// config is the text as the config file holds it: literal "${" written
// "$${" (the config expands ${NAME} in every value), references as
// ${NAME:-default}.
func (t text) config() string {
	var b strings.Builder
	for _, s := range t {
		if s.ref != nil {
			b.WriteString("${" + s.ref.Name + ":-" + s.ref.Default + "}")
		} else {
			b.WriteString(strings.ReplaceAll(s.lit, "${", "$${"))
		}
	}
	return b.String()
}

// refs lists the references in t, in order.
func (t text) refs() []*envRef {
	var rs []*envRef
	for _, s := range t {
		if s.ref != nil {
			rs = append(rs, s.ref)
		}
	}
	return rs
}

// literal reports whether t holds no reference.
func (t text) literal() bool { return len(t.refs()) == 0 }

// join concatenates texts, merging adjacent literal runs.
func join(ts ...text) text {
	var out text
	for _, t := range ts {
		for _, s := range t {
			if s.ref == nil && s.lit == "" {
				continue
			}
			if n := len(out); s.ref == nil && n > 0 && out[n-1].ref == nil {
				out[n-1].lit += s.lit
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

// split cuts t at every sep in its literal runs; references stay whole in
// the piece they fall in.
func (t text) split(sep string) []text {
	pieces := []text{nil}
	for _, s := range t {
		if s.ref != nil {
			pieces[len(pieces)-1] = join(pieces[len(pieces)-1], text{s})
			continue
		}
		parts := strings.Split(s.lit, sep)
		for i, p := range parts {
			if i > 0 {
				pieces = append(pieces, nil)
			}
			pieces[len(pieces)-1] = join(pieces[len(pieces)-1], lit(p))
		}
	}
	return pieces
}

// kind is the JSON type of a value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kObject
	kArray
)

func (k kind) String() string {
	return [...]string{"null", "a boolean", "a number", "a string", "an object", "an array"}[k]
}

// value is a JSON value whose strings are texts, and whose objects keep
// their keys in the order they were written.
type value struct {
	kind kind
	b    bool
	num  string // a number's JSON text
	str  text
	keys []string // an object's keys, in order
	vals []*value // an object's values (by keys), or an array's elements
	line int      // where it is in its file; 0 when unknown
}

// get returns the member key of an object, or nil.
func (v *value) get(key string) *value {
	if v == nil || v.kind != kObject {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

// getFold is get with the key matched without regard to case: the AWS
// CLI's JSON and CloudFormation spell some keys differently
// (awsvpcConfiguration, AwsVpcConfiguration).
func (v *value) getFold(key string) *value {
	if v == nil || v.kind != kObject {
		return nil
	}
	for i, k := range v.keys {
		if strings.EqualFold(k, key) {
			return v.vals[i]
		}
	}
	return nil
}

// set adds or replaces an object's member.
func (v *value) set(key string, val *value) {
	for i, k := range v.keys {
		if k == key {
			v.vals[i] = val
			return
		}
	}
	v.keys = append(v.keys, key)
	v.vals = append(v.vals, val)
}

// appendJSON appends v as compact JSON, each reference at its default
// (plain) or as the config holds it.
func (v *value) appendJSON(dst []byte, plain bool) []byte {
	switch v.kind {
	case kNull:
		return append(dst, "null"...)
	case kBool:
		return strconv.AppendBool(dst, v.b)
	case kNumber:
		return append(dst, v.num...)
	case kString:
		s := v.str.config()
		if plain {
			s = v.str.plain()
		}
		return appendJSONString(dst, s)
	case kObject:
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = v.vals[i].appendJSON(dst, plain)
		}
		return append(dst, '}')
	default:
		dst = append(dst, '[')
		for i, e := range v.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.appendJSON(dst, plain)
		}
		return append(dst, ']')
	}
}

// jsonText is v as JSON text whose strings keep their references: what a
// CloudFormation Fn::ToJsonString of v gives, or a constant Input.
func (v *value) jsonText() text {
	switch v.kind {
	case kString:
		var out text
		out = join(out, lit(`"`))
		for _, s := range v.str {
			if s.ref != nil {
				out = join(out, text{s})
				continue
			}
			q := appendJSONString(nil, s.lit)
			out = join(out, lit(string(q[1:len(q)-1])))
		}
		return join(out, lit(`"`))
	case kObject:
		out := lit("{")
		for i, k := range v.keys {
			if i > 0 {
				out = join(out, lit(","))
			}
			out = join(out, lit(string(appendJSONString(nil, k))+":"), v.vals[i].jsonText())
		}
		return join(out, lit("}"))
	case kArray:
		out := lit("[")
		for i, e := range v.vals {
			if i > 0 {
				out = join(out, lit(","))
			}
			out = join(out, e.jsonText())
		}
		return join(out, lit("]"))
	}
	return lit(string(v.appendJSON(nil, true)))
}

// appendJSONString quotes s as JSON, escaping only what JSON requires, so
// that <, > and & stay as they are (templates are read by people).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// Sentinels stand for references while a text is parsed as JSON: two
// characters of Unicode's private use area around the reference's index,
// valid inside a JSON string and never in AWS's own input.
const (
	sentinelOpen  = '\uE000'
	sentinelClose = '\uE001'
)

// parseJSONText parses t as JSON. References may stand inside JSON strings
// only (as ${NAME} does in a !Sub of a pattern); what parses keeps them.
func parseJSONText(t text) (*value, error) {
	var b strings.Builder
	var refs []*envRef
	for _, s := range t {
		if s.ref != nil {
			b.WriteRune(sentinelOpen)
			b.WriteString(strconv.Itoa(len(refs)))
			b.WriteRune(sentinelClose)
			refs = append(refs, s.ref)
			continue
		}
		b.WriteString(s.lit)
	}
	v, err := parseJSON([]byte(b.String()))
	if err != nil {
		// Where a number in place of each reference parses, a reference
		// stood outside a string.
		var alt strings.Builder
		for _, s := range t {
			if s.ref != nil {
				alt.WriteString("0")
			} else {
				alt.WriteString(s.lit)
			}
		}
		if _, aerr := parseJSON([]byte(alt.String())); len(refs) > 0 && aerr == nil {
			return nil, fmt.Errorf("%s, read from the environment, stands outside a JSON string", refs[0].Name)
		}
		return nil, err
	}
	if len(refs) > 0 {
		if err := v.restoreRefs(refs); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// restoreRefs turns sentinels in v's strings back into references.
func (v *value) restoreRefs(refs []*envRef) error {
	switch v.kind {
	case kString:
		var out text
		for _, s := range v.str {
			rest := s.lit
			for {
				i := strings.IndexRune(rest, sentinelOpen)
				if i < 0 {
					out = join(out, lit(rest))
					break
				}
				j := strings.IndexRune(rest[i:], sentinelClose)
				n, err := strconv.Atoi(rest[i+utf8.RuneLen(sentinelOpen) : i+max(j, 0)])
				if j < 0 || err != nil || n < 0 || n >= len(refs) {
					return errors.New("a reference was cut apart")
				}
				out = join(out, lit(rest[:i]), refText(refs[n]))
				rest = rest[i+j+utf8.RuneLen(sentinelClose):]
			}
		}
		v.str = out
	case kObject, kArray:
		for _, k := range v.keys {
			if strings.ContainsRune(k, sentinelOpen) {
				return errors.New("a reference stands in an object key")
			}
		}
		for _, e := range v.vals {
			if err := e.restoreRefs(refs); err != nil {
				return err
			}
		}
	case kNumber:
		if strings.ContainsRune(v.num, sentinelOpen) {
			return errors.New("a reference stands outside a JSON string")
		}
	}
	return nil
}

// parseJSON parses one JSON value, keeping the order of keys and the line
// of each value, and refusing a key given twice in an object (which
// readers of it would take differently).
func parseJSON(data []byte) (*value, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &jsonParser{dec: dec, data: data}
	v, err := p.value()
	if err != nil {
		return nil, p.locate(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, p.locate(errors.New("more after the JSON value"))
	}
	return v, nil
}

type jsonParser struct {
	dec  *json.Decoder
	data []byte
}

// locate prefixes err with the line it happened on.
func (p *jsonParser) locate(err error) error {
	var se *json.SyntaxError
	off := p.dec.InputOffset()
	if errors.As(err, &se) {
		off = se.Offset
	}
	msg := err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "unexpected end of JSON"
	}
	return fmt.Errorf("line %d: %s", p.lineAt(off), msg)
}

func (p *jsonParser) lineAt(off int64) int {
	off = min(max(off, 0), int64(len(p.data)))
	return 1 + bytes.Count(p.data[:off], []byte("\n"))
}

func (p *jsonParser) value() (*value, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	// The offset is the end of the token, on the line it stands on (JSON
	// tokens hold no line break).
	return p.from(tok, p.lineAt(p.dec.InputOffset()))
}

func (p *jsonParser) from(tok json.Token, line int) (*value, error) {
	switch t := tok.(type) {
	case nil:
		return &value{kind: kNull, line: line}, nil
	case bool:
		return &value{kind: kBool, b: t, line: line}, nil
	case json.Number:
		return &value{kind: kNumber, num: t.String(), line: line}, nil
	case string:
		return &value{kind: kString, str: lit(t), line: line}, nil
	case json.Delim:
		switch t {
		case '{':
			v := &value{kind: kObject, line: line}
			seen := map[string]bool{}
			for p.dec.More() {
				kt, err := p.dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				if seen[k] {
					return nil, fmt.Errorf("key %q given twice in an object", k)
				}
				seen[k] = true
				val, err := p.value()
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, val)
			}
			_, err := p.dec.Token()
			return v, err
		case '[':
			v := &value{kind: kArray, line: line}
			for p.dec.More() {
				e, err := p.value()
				if err != nil {
					return nil, err
				}
				v.vals = append(v.vals, e)
			}
			_, err := p.dec.Token()
			return v, err
		}
	}
	return nil, fmt.Errorf("unexpected %v", tok)
}
