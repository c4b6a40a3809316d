package ruletest

import (
	"bytes"

	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// Update rewrites the test's expectations to the outcome: the rules that
// matched, their targets and payloads (whole_event for a rule without
// input). An expectation of the rule with payload_subset, or with no
// payload at all, that still holds is kept as written. Save writes the
// file.
func (f *File) Update(t *Test, o Outcome) error {
	if o.Error != "" {
		return fmt.Errorf("test %q: the event could not be routed: %s", t.Name, o.Error)
	}
	if o.DeadLetter != "" {
		setKey(t.node, "dead_letter", scalar(o.DeadLetter))
		removeKey(t.node, "expect")
		return nil
	}
	removeKey(t.node, "dead_letter")
	kept := map[string]*yaml.Node{}
	for i, e := range t.Expect {
		if e.hasPayload || e.WholeEvent {
			continue
		}
		one := *t
		one.Expect = []Expectation{e}
		var sub Outcome
		for _, m := range o.Matches {
			if m.Rule == e.Rule {
				sub.Matches = []Match{m}
			}
		}
		if len(sub.Matches) == 1 && len(one.Check(sub)) == 0 {
			kept[e.Rule] = t.expectNode.Content[i]
		}
	}
	list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, m := range o.Matches {
		if n := kept[m.Rule]; n != nil {
			list.Content = append(list.Content, n)
			continue
		}
		e := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setKey(e, "rule", scalar(m.Rule))
		targets := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, tg := range m.Targets {
			targets.Content = append(targets.Content, scalar(tg))
		}
		setKey(e, "targets", targets)
		switch {
		case m.Whole:
			setKey(e, "whole_event", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		case m.Text:
			setKey(e, "payload", scalar(string(m.Payload)))
		default:
			var doc yaml.Node
			if err := yaml.Unmarshal(m.Payload, &doc); err != nil || len(doc.Content) != 1 {
				return fmt.Errorf("test %q: rule %s: the payload is not JSON: %s", t.Name, m.Rule, m.Payload)
			}
			p := doc.Content[0]
			p.Style |= yaml.FlowStyle
			setKey(e, "payload", p)
		}
		list.Content = append(list.Content, e)
	}
	if len(list.Content) == 0 {
		list.Style = yaml.FlowStyle // expect: []
	}
	setKey(t.node, "expect", list)
	return nil
}

// Save writes the file back, comments and all.
func (f *File) Save() error {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&f.doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	info, err := os.Stat(f.Path)
	if err != nil {
		return err
	}
	return os.WriteFile(f.Path, b.Bytes(), info.Mode().Perm())
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// setKey sets key in mapping m to v, in place when it is there, else at
// the end.
func setKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, scalar(key), v)
}

func removeKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
