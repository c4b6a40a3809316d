package router

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Setting is a target setting rendered per delivery (a partition key, a
// message attribute, a message group): text with placeholders of two kinds.
//
//   - <name> stands for what DeliveryValues gives: a top-level field of the
//     payload, or switchyard.delivery-id, switchyard.event-id or
//     switchyard.rule, as in the http target's URL and the nats target's
//     subject.
//   - <$.path> is a JSON path into the event (the EventBridge envelope the
//     source made), in the input transformer's syntax: <$.detail.orderId>.
//
// A string stands for its characters; a number, boolean, null, object or
// array for its compact JSON; a wildcard path for the JSON array of what it
// found. A Setting is immutable and safe for concurrent use.
type Setting struct {
	src   string
	parts []settingPart
}

// settingPart is a literal run, a <name> or a <$.path>.
type settingPart struct {
	lit  string
	name string    // set for <name>
	path *jsonPath // set for <$.path>
}

// settingRE matches both kinds of placeholder. It is compiled on first use.
var settingRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<(\$[^<>\s]*|[A-Za-z0-9_.\-]+)>`) })

// ParseSetting compiles s. Its error says which <$.path> is not a valid
// path; anything else is text.
func ParseSetting(s string) (*Setting, error) {
	st := &Setting{src: s}
	last := 0
	var errs []error
	for _, loc := range settingRE().FindAllStringSubmatchIndex(s, -1) {
		if loc[0] > last {
			st.parts = append(st.parts, settingPart{lit: s[last:loc[0]]})
		}
		inner := s[loc[2]:loc[3]]
		if strings.HasPrefix(inner, "$") {
			jp, err := compilePath(inner)
			if err != nil {
				errs = append(errs, fmt.Errorf("placeholder <%s>: %v", inner, err))
			}
			st.parts = append(st.parts, settingPart{path: jp})
		} else {
			st.parts = append(st.parts, settingPart{name: inner})
		}
		last = loc[1]
	}
	if last < len(s) {
		st.parts = append(st.parts, settingPart{lit: s[last:]})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return st, nil
}

// MustParseSetting is ParseSetting for settings known to be valid (a
// constant, or one Validate checked); it panics on an error.
func MustParseSetting(s string) *Setting {
	st, err := ParseSetting(s)
	if err != nil {
		panic(err)
	}
	return st
}

// String returns the setting as written.
func (st *Setting) String() string { return st.src }

// Constant reports whether the setting has no placeholders.
func (st *Setting) Constant() bool {
	for _, p := range st.parts {
		if p.lit == "" {
			return false
		}
	}
	return true
}

// Literal returns the setting's text with every placeholder replaced by
// with: what a config check can judge before any delivery (its length at
// least, the characters it is made of).
func (st *Setting) Literal(with string) string {
	var b strings.Builder
	for _, p := range st.parts {
		if p.lit != "" {
			b.WriteString(p.lit)
		} else {
			b.WriteString(with)
		}
	}
	return b.String()
}

// Render fills the placeholders for d. A placeholder with no value (a field
// the payload lacks, a path the event lacks, an event-id with no event) is
// an error that names it: a half-filled setting would say something else.
func (st *Setting) Render(d *Delivery) (string, error) {
	if st.Constant() {
		return st.src, nil
	}
	var vars map[string]string
	var b []byte
	for _, p := range st.parts {
		switch {
		case p.lit != "":
			b = append(b, p.lit...)
		case p.path != nil:
			var ev []byte
			if d.Message != nil && d.Message.Event != nil {
				ev = d.Message.Event.JSON
			}
			var ok bool
			if b, ok = appendPathValue(b, p.path, ev); !ok {
				return "", fmt.Errorf("placeholder <%s> has no value: the event has no %s", p.path.src, p.path.src)
			}
		default:
			if vars == nil {
				vars = DeliveryValues(d)
			}
			v, ok := vars[p.name]
			if !ok {
				return "", fmt.Errorf("placeholder <%s> has no value: the payload has no top-level field %q", p.name, p.name)
			}
			b = append(b, v...)
		}
	}
	return string(b), nil
}

// appendPathValue appends the value at jp in event: a string's characters,
// anything else as compact JSON, a wildcard's finds as a JSON array. It
// reports false when nothing is there (or there is no event).
func appendPathValue(dst []byte, jp *jsonPath, event []byte) ([]byte, bool) {
	if len(event) == 0 {
		return dst, false
	}
	var found [][2]int
	jp.eval(event, func(a, b int) bool {
		found = append(found, [2]int{a, b})
		return jp.wild
	})
	switch {
	case len(found) == 0:
		return dst, false
	case jp.wild:
		dst = append(dst, '[')
		for i, f := range found {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCompact(dst, event[f[0]:f[1]])
		}
		return append(dst, ']'), true
	}
	raw := event[found[0][0]:found[0][1]]
	if raw[0] == '"' {
		return unescape(dst, raw[1:len(raw)-1]), true
	}
	return appendCompact(dst, raw), true
}
