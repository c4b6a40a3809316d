// Package ruletest is the test files of `switchyard test`: events, the
// source they arrive on, and the deliveries the rules must make of them.
// It reads and writes the files, compares what the rules did with what a
// test expects, and writes JUnit reports; the command routes the events.
package ruletest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is one test file.
type File struct {
	Path  string
	Tests []*Test
	doc   yaml.Node // as read, for Update
}

// Test is one event and what the rules must do with it.
type Test struct {
	Name string
	// Source is the source the event arrives on: it is decoded as that
	// source decodes what it receives, and rules' source lists apply.
	// Empty: the event is taken as it is, and every rule is tried.
	Source string
	// Body is what the source receives (the event's JSON, a raw body, or a
	// file's contents).
	Body []byte
	// Time is the time a wrapped event gets (when it is received).
	Time time.Time
	// MessageID is the id of the message the source receives, which a
	// wrapped event takes as its id. Default test-N, N the test's place
	// in its file.
	MessageID string
	// DeadLetter, when set, says the message does not fit its source's
	// envelope and goes to this dead-letter target instead.
	DeadLetter string
	// Expect are the rules that must match, in any order; no other may.
	Expect []Expectation
	// Line is the test's line in its file.
	Line int

	node       *yaml.Node // the test's mapping
	hasExpect  bool
	expectNode *yaml.Node
}

// Expectation is one rule a test expects to match, and what it delivers.
type Expectation struct {
	Rule string
	// Targets, when set, are the rule's targets, in order.
	Targets []string
	// Payload, when set, is the payload exactly (as JSON values: numbers
	// compare by value, objects whatever their key order); a text
	// payload is a string.
	Payload any
	// Subset, when set, is part of the payload: every key it has, with
	// equal values (arrays element by element, of equal length).
	Subset any
	// WholeEvent says the rule delivers the whole event (it has no input).
	WholeEvent bool
	Line       int

	hasPayload, hasSubset bool
}

// DefaultTime is the time wrapped events get when a test sets none, so
// that payloads are the same from run to run.
var DefaultTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// raw is a test file as written.
type raw struct {
	Tests []rawTest `yaml:"tests"`
}

type rawTest struct {
	Name       string      `yaml:"name"`
	Source     string      `yaml:"source"`
	Event      yaml.Node   `yaml:"event"`
	Body       *string     `yaml:"body"`
	File       string      `yaml:"file"`
	Time       string      `yaml:"time"`
	MessageID  string      `yaml:"message_id"`
	DeadLetter string      `yaml:"dead_letter"`
	Expect     []rawExpect `yaml:"expect"`
}

type rawExpect struct {
	Rule       string    `yaml:"rule"`
	Targets    []string  `yaml:"targets"`
	Payload    yaml.Node `yaml:"payload"`
	Subset     yaml.Node `yaml:"payload_subset"`
	WholeEvent bool      `yaml:"whole_event"`
}

// Read reads and checks a test file. Every problem is reported, as
// FILE:LINE: message.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &File{Path: path}
	// Strictly first, for unknown keys; then as nodes, for positions.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var r raw
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, yamlErr(err))
	}
	if err := yaml.Unmarshal(data, &f.doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, yamlErr(err))
	}
	tests := lookup(root(&f.doc), "tests")
	if tests == nil || tests.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s: no tests: want a list under tests:", path)
	}
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}
	names := map[string]int{}
	for i, rt := range r.Tests {
		n := tests.Content[i]
		t := &Test{Name: rt.Name, Source: rt.Source, DeadLetter: rt.DeadLetter, Line: n.Line, node: n, Time: DefaultTime,
			MessageID: cmp.Or(rt.MessageID, fmt.Sprintf("test-%d", i+1))}
		t.expectNode = lookup(n, "expect")
		t.hasExpect = t.expectNode != nil
		switch {
		case t.Name == "":
			bad(n.Line, "tests[%d]: no name", i)
		case names[t.Name] != 0:
			bad(n.Line, "test %q: the name is taken by the test at line %d", t.Name, names[t.Name])
		default:
			names[t.Name] = n.Line
		}
		given := 0
		if rt.Event.Kind != 0 {
			given++
			v, err := value(&rt.Event)
			if err != nil {
				bad(rt.Event.Line, "test %q: event: %v", t.Name, err)
			} else if t.Body, err = json.Marshal(v); err != nil {
				bad(rt.Event.Line, "test %q: event: %v", t.Name, err)
			}
		}
		if rt.Body != nil {
			given++
			t.Body = []byte(*rt.Body)
		}
		if rt.File != "" {
			given++
			p := rt.File
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			if t.Body, err = os.ReadFile(p); err != nil {
				bad(n.Line, "test %q: file: %v", t.Name, err)
			}
		}
		if given != 1 {
			bad(n.Line, "test %q: give the event in one of event, body and file (%d given)", t.Name, given)
		}
		if rt.Time != "" {
			if t.Time, err = time.Parse(time.RFC3339, rt.Time); err != nil {
				bad(n.Line, "test %q: time: want RFC 3339, such as 2026-01-02T15:04:05Z: %v", t.Name, err)
			}
		}
		if t.DeadLetter != "" && len(rt.Expect) > 0 {
			bad(n.Line, "test %q: a dead-lettered message is not routed: dead_letter and expected rules do not go together", t.Name)
		}
		rules := map[string]bool{}
		for j, re := range rt.Expect {
			en := t.expectNode.Content[j]
			e := Expectation{Rule: re.Rule, Targets: re.Targets, WholeEvent: re.WholeEvent, Line: en.Line}
			if e.Rule == "" {
				bad(en.Line, "test %q: expect[%d]: no rule", t.Name, j)
			} else if rules[e.Rule] {
				bad(en.Line, "test %q: rule %s is expected twice", t.Name, e.Rule)
			}
			rules[e.Rule] = true
			for _, p := range []struct {
				node *yaml.Node
				to   *any
				has  *bool
				key  string
			}{{&re.Payload, &e.Payload, &e.hasPayload, "payload"}, {&re.Subset, &e.Subset, &e.hasSubset, "payload_subset"}} {
				if p.node.Kind == 0 {
					continue
				}
				*p.has = true
				if *p.to, err = value(p.node); err != nil {
					bad(p.node.Line, "test %q: rule %s: %s: %v", t.Name, e.Rule, p.key, err)
				}
			}
			if btoi(e.hasPayload)+btoi(e.hasSubset)+btoi(e.WholeEvent) > 1 {
				bad(en.Line, "test %q: rule %s: give one of payload, payload_subset and whole_event", t.Name, e.Rule)
			}
			t.Expect = append(t.Expect, e)
		}
		f.Tests = append(f.Tests, t)
	}
	if len(f.Tests) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no tests: want a list under tests:", path))
	}
	return f, errors.Join(errs...)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// value is a YAML value as JSON values: maps with string keys.
func value(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return jsonValue(v)
}

func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			var err error
			if v[k], err = jsonValue(e); err != nil {
				return nil, err
			}
		}
		return v, nil
	case map[any]any:
		return nil, errors.New("a key that is not a string: JSON keys are strings")
	case []any:
		for i, e := range v {
			var err error
			if v[i], err = jsonValue(e); err != nil {
				return nil, err
			}
		}
		return v, nil
	case time.Time:
		// YAML reads an unquoted timestamp as one; JSON has the text.
		return v.Format(time.RFC3339Nano), nil
	}
	return v, nil
}

// yamlErr shortens yaml.v3's errors ("yaml: line 3: ...").
func yamlErr(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

func root(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0]
	}
	return doc
}

// lookup is the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
