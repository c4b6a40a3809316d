package ruletest

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.test.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad test files are refused with every problem, each with its line.
func TestRead_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"unknown key", "tests:\n  - name: a\n    evnt: {}\n    expect: []\n", "line 3: field evnt not found"},
		{"no tests", "tests: []\n", "no tests"},
		{"not a list", "tests: {a: 1}\n", "cannot unmarshal"},
		{"no name", "tests:\n  - event: {}\n    expect: []\n", ":2: tests[0]: no name"},
		{"name twice", "tests:\n  - {name: a, event: {}, expect: []}\n  - {name: a, event: {}, expect: []}\n", `:3: test "a": the name is taken by the test at line 2`},
		{"no event", "tests:\n  - {name: a, expect: []}\n", `:2: test "a": give the event in one of event, body and file (0 given)`},
		{"two events", "tests:\n  - {name: a, event: {}, body: '{}', expect: []}\n", "(2 given)"},
		{"missing file", "tests:\n  - {name: a, file: nothere.json, expect: []}\n", `test "a": file: open`},
		{"bad time", "tests:\n  - {name: a, event: {}, time: yesterday, expect: []}\n", "time: want RFC 3339"},
		{"no rule", "tests:\n  - name: a\n    event: {}\n    expect:\n      - payload: {}\n", `:5: test "a": expect[0]: no rule`},
		{"rule twice", "tests:\n  - name: a\n    event: {}\n    expect: [{rule: r}, {rule: r}]\n", "rule r is expected twice"},
		{"payload and subset", "tests:\n  - name: a\n    event: {}\n    expect:\n      - {rule: r, payload: {}, payload_subset: {}}\n", "give one of payload, payload_subset and whole_event"},
		{"key not a string", "tests:\n  - name: a\n    event: {1: x}\n    expect: []\n", "event: a key that is not a string"},
		{"dead letter and rules", "tests:\n  - {name: a, body: x, dead_letter: dlq, expect: [{rule: r}]}\n", "dead_letter and expected rules do not go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(write(t, tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRead_Events(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ev.json"), []byte(`{"from":"file"}`), 0o644)
	p := filepath.Join(dir, "x.test.yaml")
	os.WriteFile(p, []byte(`tests:
  - {name: yaml, event: {a: 1, when: 2026-01-02T03:04:05Z}, expect: []}
  - {name: body, body: 'not json', time: "2026-05-01T00:00:00Z", message_id: m-7, expect: []}
  - {name: file, file: ev.json, expect: []}
`), 0o644)
	f, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		body, id string
		at       time.Time
	}{
		{`{"a":1,"when":"2026-01-02T03:04:05Z"}`, "test-1", DefaultTime},
		{`not json`, "m-7", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		{`{"from":"file"}`, "test-3", DefaultTime},
	}
	for i, w := range want {
		got := f.Tests[i]
		if string(got.Body) != w.body || got.MessageID != w.id || !got.Time.Equal(w.at) {
			t.Errorf("test %d: body %s, id %s, time %v; want %s, %s, %v", i, got.Body, got.MessageID, got.Time, w.body, w.id, w.at)
		}
	}
}

func match(rule, payload string, targets ...string) Match {
	return Match{Rule: rule, Targets: targets, Payload: []byte(payload)}
}

// Differences are named by rule, target and the first differing JSON
// path; numbers compare by value, keys in any order.
func TestCheck(t *testing.T) {
	f, err := Read(write(t, `tests:
  - name: a
    event: {}
    expect:
      - rule: exact
        targets: [t1]
        payload: {order: {id: A-1, total: 1200.0, lines: [{sku: x}, {sku: y}]}, "a b": 1}
      - rule: subset
        payload_subset: {order: {id: A-1}}
      - rule: text
        payload: "hello A-1"
      - rule: whole
        whole_event: true
`))
	if err != nil {
		t.Fatal(err)
	}
	test := f.Tests[0]
	good := []Match{
		match("exact", `{"a b":1,"order":{"lines":[{"sku":"x"},{"sku":"y"}],"total":1200,"id":"A-1"}}`, "t1"),
		match("subset", `{"order":{"id":"A-1","more":true},"other":1}`, "t2"),
		{Rule: "text", Targets: []string{"t3"}, Payload: []byte("hello A-1"), Text: true},
		{Rule: "whole", Targets: []string{"t4"}, Payload: []byte(`{"id":"e"}`), Whole: true},
	}
	if fails := test.Check(Outcome{Matches: good}); fails != nil {
		t.Fatalf("the expected outcome fails: %v", fails)
	}
	for _, tc := range []struct {
		name   string
		change func([]Match) []Match
		want   string
	}{
		{"a number", func(m []Match) []Match {
			m[0].Payload = []byte(`{"a b":1,"order":{"lines":[{"sku":"x"},{"sku":"y"}],"total":1300,"id":"A-1"}}`)
			return m
		}, "rule exact → t1: payload differs at $.order.total: got 1300, want 1200"},
		{"an array element", func(m []Match) []Match {
			m[0].Payload = []byte(`{"a b":1,"order":{"lines":[{"sku":"x"},{"sku":"z"}],"total":1200,"id":"A-1"}}`)
			return m
		}, `at $.order.lines[1].sku: got "z", want "y"`},
		{"an array's length", func(m []Match) []Match {
			m[0].Payload = []byte(`{"a b":1,"order":{"lines":[{"sku":"x"}],"total":1200,"id":"A-1"}}`)
			return m
		}, "at $.order.lines: got 1 elements, want 2"},
		{"a key missing", func(m []Match) []Match {
			m[0].Payload = []byte(`{"order":{"lines":[{"sku":"x"},{"sku":"y"}],"total":1200,"id":"A-1"}}`)
			return m
		}, `at $["a b"]: missing`},
		{"a key too many", func(m []Match) []Match {
			m[0].Payload = []byte(`{"a b":1,"x":2,"order":{"lines":[{"sku":"x"},{"sku":"y"}],"total":1200,"id":"A-1"}}`)
			return m
		}, "at $.x: got 2, not expected"},
		{"targets", func(m []Match) []Match { m[0].Targets = []string{"t1", "t9"}; return m }, "rule exact: targets [t1, t9], want [t1]"},
		{"subset", func(m []Match) []Match { m[1].Payload = []byte(`{"order":{"id":"A-2"}}`); return m }, `rule subset → t2: payload_subset differs at $.order.id: got "A-2", want "A-1"`},
		{"text", func(m []Match) []Match { m[2].Payload = []byte("hello A-2"); return m }, `rule text → t3: payload differs at $: got "hello A-2", want "hello A-1"`},
		{"not whole", func(m []Match) []Match { m[3].Whole = false; return m }, "rule whole → t4: delivers a rendered payload, want the whole event"},
		{"a rule missing", func(m []Match) []Match { return m[1:] }, "rule exact: expected to match, did not"},
		{"a rule too many", func(m []Match) []Match { return append(m, match("extra", `{}`, "t5")) }, "rule extra → t5 matched, but the test does not expect it"},
		{"not JSON", func(m []Match) []Match { m[1].Payload = []byte(`{`); return m }, "rule subset → t2: the payload is not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := tc.change(append([]Match(nil), good...))
			fails := test.Check(Outcome{Matches: ms})
			if len(fails) != 1 || !strings.Contains(fails[0], tc.want) {
				t.Errorf("Check = %q, want one difference: %q", fails, tc.want)
			}
		})
	}
	if fails := test.Check(Outcome{Error: "source \"x\" is not a source"}); len(fails) != 1 || !strings.Contains(fails[0], "could not be routed") {
		t.Errorf("an unroutable event: %q", fails)
	}
	if fails := test.Check(Outcome{DeadLetter: "dlq"}); len(fails) != 1 || !strings.Contains(fails[0], "dead-lettered to dlq") {
		t.Errorf("a dead-lettered message: %q", fails)
	}
}

// The JUnit report is well-formed XML with the counts and each failure.
func TestJUnit(t *testing.T) {
	a, b := &Test{Name: "passes"}, &Test{Name: "fails <&>"}
	var buf bytes.Buffer
	err := JUnit(&buf, []Result{{File: "x.test.yaml", Test: a}, {File: "x.test.yaml", Test: b, Failures: []string{"rule r: expected to match, did not\n  more", "second"}}})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	c := doc.Suites[0].Cases
	if doc.Tests != 2 || doc.Failures != 1 || len(c) != 2 || c[0].Failure != nil || c[1].Name != "fails <&>" ||
		c[1].Failure.Message != "rule r: expected to match, did not" || !strings.Contains(c[1].Failure.Text, "second") {
		t.Errorf("report: %+v\n%s", doc, buf.String())
	}
}

// Update writes what the rules do now, keeps comments and subset
// expectations that hold, and the file reads back passing.
func TestUpdate(t *testing.T) {
	p := write(t, `# my tests
tests:
  # the first
  - name: a
    event: {}
    expect:
      - rule: kept
        payload_subset: {id: 1}
      - rule: gone
  - name: b
    event: {}
`)
	f, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	o := Outcome{Matches: []Match{match("kept", `{"id":1,"x":2}`, "t1"), match("new", `{"b":[1,2],"a":"z"}`, "t2", "t3"),
		{Rule: "whole", Targets: []string{"t4"}, Payload: []byte(`{}`), Whole: true}, {Rule: "text", Targets: []string{"t5"}, Payload: []byte("hi"), Text: true}}}
	for _, tt := range f.Tests {
		if err := f.Update(tt, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(p)
	for _, want := range []string{"# my tests", "# the first", "payload_subset: {id: 1}", `payload: {"b": [1, 2], "a": "z"}`, "targets: [t2, t3]", "whole_event: true", "payload: hi"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("updated file lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(string(text), "gone") {
		t.Errorf("the rule that no longer matches is still expected:\n%s", text)
	}
	g, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range g.Tests {
		if fails := tt.Check(o); fails != nil {
			t.Errorf("test %s after the update: %v", tt.Name, fails)
		}
	}
}
