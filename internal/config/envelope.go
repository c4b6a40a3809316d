package config

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// envelopeStrings are the envelope fields that are strings in every event
// (resources: a list of strings), as EventBridge sends them and as sources
// wrap what they receive.
var envelopeStrings = []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources"}

// envelopeTypes reports the values of a rule's pattern that can never match
// an envelope field because they are not strings: account: [123456789012]
// compares a number with the string "123456789012", and never matches (nor
// does anything-but 123456789012 exclude it). n is the pattern's node,
// data its JSON.
func (d *decoder) envelopeTypes(n *yaml.Node, path string, data []byte) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return
	}
	d.envelopeObject(n, path, nil, v)
}

func (d *decoder) envelopeObject(n *yaml.Node, path string, at []string, v any) {
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		if key == "$or" {
			alts, _ := obj[key].([]any)
			for i, alt := range alts {
				d.envelopeObject(n, path, elems(at, key, i), alt)
			}
			continue
		}
		if !slices.Contains(envelopeStrings, key) {
			continue
		}
		list, _ := obj[key].([]any)
		for i, m := range list {
			d.envelopeMatcher(n, path, key, elems(at, key, i), m)
		}
	}
}

// envelopeMatcher checks one matcher of the list of the envelope field
// field.
func (d *decoder) envelopeMatcher(n *yaml.Node, path, field string, at []string, m any) {
	report := func(at []string, format string, args ...any) {
		node, _ := walk(n, at)
		d.errorf(node, joinPattern(path, at), format, args...)
	}
	if what, text, ok := notString(m); ok {
		report(at, "%s is %s, and %s in an event, so this never matches: quote it (%s)", text, what, alwaysString(field), strconv.Quote(text))
		return
	}
	ops, ok := m.(map[string]any)
	if !ok {
		return
	}
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		switch op {
		case "numeric":
			report(append(slices.Clip(at), op), "numeric matching never matches: %s in an event; match its text (a quoted value, or prefix)", alwaysString(field))
		case "anything-but":
			values, isList := ops[op].([]any)
			if !isList {
				values = []any{ops[op]}
			}
			for i, v := range values {
				if what, text, ok := notString(v); ok {
					where := append(slices.Clip(at), op)
					if isList {
						where = append(where, "["+strconv.Itoa(i)+"]")
					}
					report(where, "%s is %s, and %s in an event, so this excludes nothing: quote it (%s)", text, what, alwaysString(field), strconv.Quote(text))
				}
			}
		}
	}
}

func alwaysString(field string) string {
	if field == "resources" {
		return "resources holds only strings"
	}
	return field + " is always a string"
}

// notString describes a number or boolean from a pattern, and its text.
func notString(v any) (what, text string, ok bool) {
	switch v := v.(type) {
	case json.Number:
		return "a number", v.String(), true
	case bool:
		return "a boolean", strconv.FormatBool(v), true
	}
	return "", "", false
}

// elems extends a pattern path with a key and a list position.
func elems(at []string, key string, i int) []string {
	return append(slices.Clip(at), key, "["+strconv.Itoa(i)+"]")
}
