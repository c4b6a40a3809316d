package router

import (
	"fmt"
	"slices"
)

// Rule routes the events its pattern matches to its targets.
type Rule struct {
	// Name identifies the rule in logs, metrics and templates.
	Name string
	// Sources restricts the rule to events from these sources; empty means
	// every source.
	Sources []string
	// Pattern is the event pattern. Required.
	Pattern *Pattern
	// Input renders each target's payload; nil means the whole event.
	Input *Transformer
	// Targets name where matching events go.
	Targets []string
}

// Table is a compiled set of rules: one Matcher over all their patterns.
// It is immutable and safe for concurrent use.
type Table struct {
	rules []Rule
	m     *Matcher
}

// NewTable compiles rules. Every rule needs a name and a pattern.
func NewTable(rules []Rule) (*Table, error) {
	patterns := make([]*Pattern, len(rules))
	for i, r := range rules {
		if r.Name == "" {
			return nil, fmt.Errorf("rule %d: no name", i)
		}
		if r.Pattern == nil {
			return nil, fmt.Errorf("rule %s: no pattern", r.Name)
		}
		patterns[i] = r.Pattern
	}
	return &Table{rules: slices.Clone(rules), m: NewMatcher(patterns)}, nil
}

// Rules returns the rules, indexed as Match reports them. The slice must
// not be modified.
func (t *Table) Rules() []Rule { return t.rules }

// Match appends to dst the indexes of the rules ev matches, in rule order,
// leaving out rules restricted to other sources than source. An empty
// source ignores the restrictions (for dry runs). It fails only for an
// event that is not a JSON object, or ErrTooComplex.
func (t *Table) Match(ev *Event, source string, dst []int) ([]int, error) {
	start := len(dst)
	dst, err := t.m.Match(ev.JSON, dst)
	if err != nil {
		return dst, err
	}
	if source == "" {
		return dst, nil
	}
	kept := dst[:start]
	for _, i := range dst[start:] {
		if r := &t.rules[i]; len(r.Sources) == 0 || slices.Contains(r.Sources, source) {
			kept = append(kept, i)
		}
	}
	return kept, nil
}

// Render appends the payload rule i sends for ev: its input transformer's
// output, or the whole event when it has none. With no transformer and a
// nil dst it returns the event's own bytes, not a copy (capped, so that an
// append copies): payloads are never written to.
func (t *Table) Render(dst []byte, i int, ev *Event) []byte {
	r := &t.rules[i]
	if r.Input == nil {
		if dst == nil {
			return ev.JSON[:len(ev.JSON):len(ev.JSON)]
		}
		return append(dst, ev.JSON...)
	}
	return r.Input.Render(dst, ev, r.Name)
}
