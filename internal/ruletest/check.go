package ruletest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Outcome is what the rules did with a test's event.
type Outcome struct {
	// Error is why the event could not be routed (the source would refuse
	// it, a pattern failed on it).
	Error string
	// DeadLetter is the target a malformed message went to instead.
	DeadLetter string
	Matches    []Match
}

// Match is one rule that matched, its targets and what it delivers.
type Match struct {
	Rule    string
	Targets []string
	// Payload is the rendered payload: JSON, or with Text the text.
	Payload []byte
	Text    bool
	// Whole says the payload is the whole event (the rule has no input).
	Whole bool
}

// Check compares an outcome with what the test expects: one line per
// difference, nil when there is none.
func (t *Test) Check(o Outcome) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if o.Error != "" {
		add("the event could not be routed: %s", o.Error)
		return out
	}
	if !t.hasExpect && t.DeadLetter == "" {
		add("no expect: list the rules that must match (expect: [] for none), or run with --update to write what they do now")
		return out
	}
	if o.DeadLetter != t.DeadLetter {
		switch {
		case t.DeadLetter == "":
			add("the message does not fit its source's envelope: dead-lettered to %s, not routed", o.DeadLetter)
		case o.DeadLetter == "":
			add("expected to be dead-lettered to %s; it was routed", t.DeadLetter)
		default:
			add("dead-lettered to %s, want %s", o.DeadLetter, t.DeadLetter)
		}
		return out
	}
	got := map[string]Match{}
	for _, m := range o.Matches {
		got[m.Rule] = m
	}
	for _, e := range t.Expect {
		m, ok := got[e.Rule]
		if !ok {
			add("rule %s: expected to match, did not", e.Rule)
			continue
		}
		delete(got, e.Rule)
		where := "rule " + e.Rule + " → " + strings.Join(m.Targets, ", ")
		if e.Targets != nil && !slices.Equal(e.Targets, m.Targets) {
			add("rule %s: targets [%s], want [%s]", e.Rule, strings.Join(m.Targets, ", "), strings.Join(e.Targets, ", "))
		}
		switch {
		case e.WholeEvent && !m.Whole:
			add("%s: delivers a rendered payload, want the whole event: %s", where, show(m))
		case e.hasPayload || e.hasSubset:
			want, subset := e.Payload, e.hasSubset
			if subset {
				want = e.Subset
			}
			have, err := payloadValue(m)
			if err != nil {
				add("%s: the payload is not JSON: %v: %s", where, err, m.Payload)
				continue
			}
			if path, diff, ok := firstDiff(have, want, "$", subset); !ok {
				kind := "payload"
				if subset {
					kind = "payload_subset"
				}
				add("%s: %s differs at %s: %s\n    got:  %s\n    want: %s", where, kind, path, diff, show(m), compact(want))
			}
		}
	}
	var extra []string
	for r := range got {
		extra = append(extra, r)
	}
	sort.Strings(extra)
	for _, r := range extra {
		m := got[r]
		add("rule %s → %s matched, but the test does not expect it; it delivers %s", r, strings.Join(m.Targets, ", "), show(m))
	}
	return out
}

// payloadValue is a match's payload as JSON values (numbers as
// json.Number): the text of a text payload.
func payloadValue(m Match) (any, error) {
	if m.Text {
		return string(m.Payload), nil
	}
	dec := json.NewDecoder(bytes.NewReader(m.Payload))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// show is a match's payload for a message.
func show(m Match) string {
	if m.Text {
		return strconv.Quote(string(m.Payload))
	}
	return string(m.Payload)
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// firstDiff finds where have and want first differ, as a JSON path, and
// says how; ok when they do not. With subset, want need only be part of
// have: objects may have more keys.
func firstDiff(have, want any, path string, subset bool) (at, diff string, ok bool) {
	switch w := want.(type) {
	case map[string]any:
		h, isObj := have.(map[string]any)
		if !isObj {
			return path, fmt.Sprintf("got %s, want an object", compact(have)), false
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			hv, present := h[k]
			if !present {
				return childPath(path, k), "missing", false
			}
			if at, diff, ok := firstDiff(hv, w[k], childPath(path, k), subset); !ok {
				return at, diff, false
			}
		}
		if !subset {
			var more []string
			for k := range h {
				if _, wanted := w[k]; !wanted {
					more = append(more, k)
				}
			}
			if len(more) > 0 {
				sort.Strings(more)
				return childPath(path, more[0]), fmt.Sprintf("got %s, not expected", compact(h[more[0]])), false
			}
		}
		return "", "", true
	case []any:
		h, isArr := have.([]any)
		if !isArr {
			return path, fmt.Sprintf("got %s, want an array", compact(have)), false
		}
		for i := range min(len(h), len(w)) {
			if at, diff, ok := firstDiff(h[i], w[i], fmt.Sprintf("%s[%d]", path, i), subset); !ok {
				return at, diff, false
			}
		}
		if len(h) != len(w) {
			return path, fmt.Sprintf("got %d elements, want %d", len(h), len(w)), false
		}
		return "", "", true
	}
	if sameScalar(have, want) {
		return "", "", true
	}
	return path, fmt.Sprintf("got %s, want %s", compact(have), compact(want)), false
}

// sameScalar compares JSON scalars; numbers by value (1200 is 1200.0).
func sameScalar(have, want any) bool {
	hn, hok := number(have)
	wn, wok := number(want)
	if hok || wok {
		return hok && wok && hn.Cmp(wn) == 0
	}
	return have == want
}

func number(v any) (*big.Float, bool) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = n.String()
	case int:
		s = strconv.Itoa(n)
	case int64:
		s = strconv.FormatInt(n, 10)
	case uint64:
		s = strconv.FormatUint(n, 10)
	case float64:
		s = strconv.FormatFloat(n, 'g', -1, 64)
	default:
		return nil, false
	}
	f, _, err := big.ParseFloat(s, 10, 256, big.ToNearestEven)
	return f, err == nil
}

// childPath is path's key k: $.a, or $["a b"] for a key that is not a
// plain name.
func childPath(path, k string) string {
	plain := k != ""
	for i, r := range k {
		if !(r == '_' || r == '-' && i > 0 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' && i > 0) {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + k
	}
	return path + "[" + strconv.Quote(k) + "]"
}
