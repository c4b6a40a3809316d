package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Transformer renders a rule's payload from an event, with EventBridge's
// input-transformer semantics: named JSON paths into the event, and a
// template with <name> placeholders. It is immutable and safe for
// concurrent use.
//
// How a value is rendered depends on where its placeholder stands:
//
//   - In a JSON template, outside quotes: a string becomes a JSON string,
//     anything else its JSON text; a missing path becomes "".
//   - In a JSON template, inside quotes: a string's characters, a number's
//     or boolean's text, an object or array as its compact JSON with the
//     double quotes removed (as EventBridge renders them); the result is
//     JSON-escaped, so the payload stays valid JSON. A missing path adds
//     nothing.
//   - In a template that is not JSON: the same as inside quotes, without
//     escaping; the payload is text, not JSON.
type Transformer struct {
	paths    []*jsonPath
	parts    []part
	text     bool // the template is not JSON: the payload is a string
	template string
	constant bool // NewConstant's: template is the payload
}

// part is a literal run of the template, or one placeholder.
type part struct {
	lit      string
	ph       int  // index into paths, or one of the ph* constants; phNone for a literal
	inString bool // the placeholder stands inside a JSON string
}

const (
	phNone = -1 - iota
	phRuleName
	phRuleARN
	phIngestionTime
	phEvent
	phEventJSON
)

var predefined = map[string]int{
	"aws.events.rule-name":            phRuleName,
	"aws.events.rule-arn":             phRuleARN,
	"aws.events.event.ingestion-time": phIngestionTime,
	"aws.events.event":                phEvent,
	"aws.events.event.json":           phEventJSON,
}

// The expressions are compiled on first use, not when the program starts:
// every command (version too) would pay for them.
var (
	placeholderRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<[A-Za-z0-9_.\-]+>`) })
	pathKeyRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_\-]{1,256}$`) })
)

// NewTransformer compiles an input transformer. paths maps placeholder
// names to JSON paths; template is required. Errors are *FieldErrors for
// "paths.NAME" or "template".
func NewTransformer(paths map[string]string, template string) (*Transformer, error) {
	var errs []error
	t := &Transformer{template: template}
	index := map[string]int{}
	if len(paths) > 100 {
		errs = append(errs, Fieldf("paths", "%d paths exceed EventBridge's limit of 100", len(paths)))
	}
	for _, name := range slices.Sorted(maps.Keys(paths)) {
		// An invalid entry keeps its name, so the template is still checked
		// without calling its placeholder undefined.
		index[name] = len(t.paths)
		t.paths = append(t.paths, nil)
		if !pathKeyRE().MatchString(name) {
			errs = append(errs, Fieldf("paths."+name, "invalid name %q: use letters, digits, '-' and '_'", name))
			continue
		}
		jp, err := compilePath(paths[name])
		if err != nil {
			errs = append(errs, Fieldf("paths."+name, "invalid path %q: %v", paths[name], err))
			continue
		}
		t.paths[len(t.paths)-1] = jp
	}
	switch {
	case template == "":
		errs = append(errs, Fieldf("template", "required (the payload, with <name> placeholders)"))
		return nil, errors.Join(errs...)
	case len(template) > 8192:
		errs = append(errs, Fieldf("template", "%d characters exceed EventBridge's limit of 8192", len(template)))
		return nil, errors.Join(errs...)
	}

	// Split the template into literals and placeholders, tracking whether
	// each placeholder stands inside a JSON string, and whether one stands
	// inside an escape sequence (\<v> or \u<v>), where no value can go.
	inString, escaped := false, false
	hexLeft := 0 // hex digits still due after \u
	inEscape := false
	track := func(lit string) {
		for i := 0; i < len(lit); i++ {
			switch {
			case hexLeft > 0:
				hexLeft--
			case escaped:
				escaped = false
				if lit[i] == 'u' {
					hexLeft = 4
				}
			case inString && lit[i] == '\\':
				escaped = true
			case lit[i] == '"':
				inString = !inString
			}
		}
	}
	last := 0
	for _, loc := range placeholderRE().FindAllStringIndex(template, -1) {
		lit := template[last:loc[0]]
		track(lit)
		if lit != "" {
			t.parts = append(t.parts, part{lit: lit, ph: phNone})
		}
		name := template[loc[0]+1 : loc[1]-1]
		ph, ok := index[name]
		if !ok {
			if ph, ok = predefined[name]; !ok {
				errs = append(errs, Fieldf("template", "undefined placeholder <%s>%s", name, definedNames(index)))
				last = loc[1]
				continue
			}
		}
		t.parts = append(t.parts, part{ph: ph, inString: inString})
		if inString && (escaped || hexLeft > 0) {
			inEscape = true
		}
		last = loc[1]
	}
	if lit := template[last:]; lit != "" {
		t.parts = append(t.parts, part{lit: lit, ph: phNone})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// A template that is JSON once its placeholders are filled in renders
	// JSON; one shaped like a JSON object or array ({...} or [...]) that is
	// not JSON is a mistake; anything else is text.
	probeErr := t.probe(`null`)
	trim := strings.TrimSpace(template)
	jsonShaped := len(trim) >= 2 && (trim[0] == '{' && trim[len(trim)-1] == '}' || trim[0] == '[' && trim[len(trim)-1] == ']')
	switch {
	case inEscape && (probeErr == nil || jsonShaped):
		return nil, Fieldf("template", "a placeholder cannot stand inside an escape sequence (after \\ or \\u)")
	case probeErr == nil:
	case t.probe(`"k"`) == nil:
		return nil, Fieldf("template", "a placeholder cannot be an object key")
	case jsonShaped:
		return nil, Fieldf("template", "looks like JSON but is not valid JSON: %v", probeErr)
	default:
		t.text = true
	}
	for _, p := range t.parts {
		if (p.ph == phEvent || p.ph == phEventJSON) && (p.inString || t.text) {
			return nil, Fieldf("template", "<%s> can only be used as a JSON value, not inside a string", phName(p.ph))
		}
	}
	return t, nil
}

// NewConstant compiles an EventBridge target's Input: constant JSON text,
// at most 8192 characters, which every payload is, exactly as written.
// Nothing of the event goes in: "<name>" in it is text, not a
// placeholder. The error says why input is not such a text.
func NewConstant(input string) (*Transformer, error) {
	switch {
	case strings.TrimSpace(input) == "":
		return nil, errors.New("required (constant JSON, such as {\"kind\": \"nightly\"})")
	case len(input) > 8192:
		return nil, fmt.Errorf("%d characters exceed EventBridge's limit of 8192", len(input))
	}
	if err := CheckJSON([]byte(input)); err != nil {
		return nil, fmt.Errorf("not valid JSON (Input is constant JSON text): %v", err)
	}
	return &Transformer{parts: []part{{lit: input, ph: phNone}}, template: input, constant: true}, nil
}

func definedNames(index map[string]int) string {
	if len(index) == 0 {
		return " (no paths are defined)"
	}
	return " (defined: " + strings.Join(slices.Sorted(maps.Keys(index)), ", ") + ")"
}

func phName(ph int) string {
	for k, v := range predefined {
		if v == ph {
			return k
		}
	}
	return ""
}

// probe checks that the template is valid JSON with every placeholder
// outside a string replaced by value.
func (t *Transformer) probe(value string) error {
	var b []byte
	for _, p := range t.parts {
		switch {
		case p.ph == phNone:
			b = append(b, p.lit...)
		case !p.inString:
			b = append(b, value...)
		}
	}
	var v any
	return json.Unmarshal(b, &v)
}

// Text reports whether the template is not JSON, so its payloads are text.
func (t *Transformer) Text() bool { return t.text }

// RuleARN is the identifier templates see as <aws.events.rule-arn>.
func RuleARN(rule string) string { return "switchyard:rule/" + rule }

// Render appends the payload for ev, matched by the named rule, to dst.
// ev.JSON must be a valid JSON object, as ParseEvent ensures.
func (t *Transformer) Render(dst []byte, ev *Event, rule string) []byte {
	for _, p := range t.parts {
		switch p.ph {
		case phNone:
			dst = append(dst, p.lit...)
		case phRuleName:
			dst = t.appendString(dst, rule, p.inString)
		case phRuleARN:
			dst = t.appendString(dst, RuleARN(rule), p.inString)
		case phIngestionTime:
			dst = t.appendString(dst, ev.Received.UTC().Format(time.RFC3339), p.inString)
		case phEventJSON:
			dst = appendCompact(dst, ev.JSON)
		case phEvent:
			dst = appendEventHeader(dst, ev.JSON)
		default:
			dst = t.appendPath(dst, t.paths[p.ph], ev.JSON, p.inString)
		}
	}
	return dst
}

func (t *Transformer) appendString(dst []byte, s string, inString bool) []byte {
	switch {
	case t.text:
		return append(dst, s...)
	case inString:
		return appendEscaped(dst, s)
	}
	return appendQuoted(dst, s)
}

// appendPath renders the value at path.
func (t *Transformer) appendPath(dst []byte, jp *jsonPath, event []byte, inString bool) []byte {
	var found [][2]int
	var one [1][2]int
	found = one[:0]
	jp.eval(event, func(a, b int) bool {
		found = append(found, [2]int{a, b})
		return jp.wild
	})
	if len(found) == 0 {
		if t.text || inString {
			return dst
		}
		return append(dst, `""`...)
	}
	var raw []byte
	if jp.wild {
		raw = append(raw, '[')
		for i, f := range found {
			if i > 0 {
				raw = append(raw, ',')
			}
			raw = appendCompact(raw, event[f[0]:f[1]])
		}
		raw = append(raw, ']')
	} else {
		raw = event[found[0][0]:found[0][1]]
	}
	switch {
	case !t.text && !inString:
		if raw[0] == '{' || raw[0] == '[' {
			return appendCompact(dst, raw)
		}
		return append(dst, raw...)
	case raw[0] == '"':
		if t.text {
			return unescape(dst, raw[1:len(raw)-1])
		}
		return append(dst, raw[1:len(raw)-1]...) // already escaped
	case raw[0] == '{' || raw[0] == '[':
		if t.text {
			return appendUnquoted(dst, raw)
		}
		return appendEscaped(dst, string(appendUnquoted(nil, raw)))
	}
	return append(dst, raw...) // number, true, false, null
}

// appendCompact appends valid JSON without insignificant white space.
func appendCompact(dst, src []byte) []byte {
	inString, escaped := false, false
	for _, c := range src {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// appendUnquoted appends valid JSON compactly with its strings' quotes
// removed and their escapes decoded: {"a":["x"]} becomes {a:[x]}, the way
// EventBridge writes objects into strings.
func appendUnquoted(dst, src []byte) []byte {
	s := &scanner{data: src}
	for s.pos < len(src) {
		c := src[s.pos]
		switch c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		case '"':
			a, b, esc, err := s.str()
			if err != nil {
				return append(dst, src[a:]...)
			}
			if esc {
				dst = unescape(dst, src[a:b])
			} else {
				dst = append(dst, src[a:b]...)
			}
		default:
			dst = append(dst, c)
			s.pos++
		}
	}
	return dst
}

// headerKeys are the envelope fields <aws.events.event> has, in the order
// EventBridge writes them, with detail-type renamed detailType.
var headerKeys = [...]struct{ from, to string }{
	{"id", "id"}, {"account", "account"}, {"detail-type", "detailType"}, {"time", "time"},
	{"source", "source"}, {"region", "region"}, {"resources", "resources"}, {"version", "version"},
}

// appendEventHeader appends the event without its detail, as EventBridge
// renders <aws.events.event>. Fields the event lacks are left out.
func appendEventHeader(dst []byte, event []byte) []byte {
	dst = append(dst, '{')
	n := 0
	for _, k := range headerKeys {
		jp := jsonPath{steps: []pathStep{{kind: stepKey, key: k.from}}}
		jp.eval(event, func(a, b int) bool {
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = appendQuoted(dst, k.to)
			dst = append(dst, ':')
			dst = appendCompact(dst, event[a:b])
			return false
		})
	}
	return append(dst, '}')
}

// String returns the template, for dry runs and errors.
func (t *Transformer) String() string {
	if t.constant {
		return fmt.Sprintf("constant input %q", t.template)
	}
	return fmt.Sprintf("input template %q", t.template)
}
