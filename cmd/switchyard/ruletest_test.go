package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every example config has rule tests beside it, and they pass: CI runs
// them here.
func TestTest_Examples(t *testing.T) {
	configs, _ := filepath.Glob("../../examples/*.yaml")
	n := 0
	for _, c := range configs {
		if strings.HasSuffix(c, ".test.yaml") {
			continue
		}
		n++
		t.Run(filepath.Base(c), func(t *testing.T) {
			code, out, errOut := cli(t, "", "test", "-c", c)
			if code != exitOK || !strings.Contains(out, " passed, 0 failed") {
				t.Errorf("switchyard test -c %s: exit %d\n%s%s", c, code, out, errOut)
			}
			t.Logf("%s: %s", filepath.Base(c), strings.TrimSpace(out))
		})
	}
	if n < 5 {
		t.Fatalf("%d example configs", n)
	}
}

// A changed expectation fails the run with a diff that names the rule,
// the target and the first differing JSON path, and a JUnit report that
// is valid XML says the same.
func TestTest_FailsWithADiff(t *testing.T) {
	dir := t.TempDir()
	text, err := os.ReadFile("../../examples/quickstart.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(text), "total: 1200, customer: ana@example.com}", "total: 1300, customer: ana@example.com}", 1)
	if changed == string(text) {
		t.Fatal("the quickstart's test no longer has the payload this test changes")
	}
	tests, report := filepath.Join(dir, "q.test.yaml"), filepath.Join(dir, "junit.xml")
	os.WriteFile(tests, []byte(changed), 0o644)
	code, out, errOut := cli(t, "", "test", "-c", "../../examples/quickstart.yaml", "--junit", report, tests)
	// The output is logged only when the test fails: its own "--- FAIL:"
	// lines would read as the suite's in a log of a passing run.
	defer func() {
		if t.Failed() {
			t.Logf("output:\n%s%s", out, errOut)
		}
	}()
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	for _, want := range []string{
		"--- FAIL: a big order alerts and is audited (" + tests + ":5)",
		"rule big-orders → stdout: payload differs at $.total: got 1200, want 1300",
		"5 passed, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil || doc.Tests != 6 || doc.Failures != 1 {
		t.Errorf("JUnit report: %+v, %v\n%s", doc, err, data)
	}

	// --update writes what the rules do now; the file then passes.
	if code, out, errOut := cli(t, "", "test", "-c", "../../examples/quickstart.yaml", "--update", tests); code != exitOK {
		t.Fatalf("--update: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := cli(t, "", "test", "-c", "../../examples/quickstart.yaml", tests); code != exitOK || !strings.Contains(out, "6 passed, 0 failed") {
		t.Errorf("after --update: exit %d\n%s%s", code, out, errOut)
	}
}

func TestTest_Errors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("version: 1\nsources: [{name: in, type: http, listen: 127.0.0.1:0, path: /e}]\ntargets: [{name: out, type: log}]\nrules: [{name: all, pattern: {source: [a]}, targets: [out]}]\n"), 0o644)
	code, _, errOut := cli(t, "", "test", "-c", cfg)
	if code != exitUsage || !strings.Contains(errOut, "no test files named, and no "+filepath.Join(dir, "c.test.yaml")+" beside the config") {
		t.Errorf("no tests: exit %d: %s", code, errOut)
	}
	os.WriteFile(filepath.Join(dir, "c.test.yaml"), []byte(`tests:
  - {name: unknown source, source: nowhere, event: {source: a, detail-type: x, detail: {}}, expect: [{rule: all}]}
  - {name: an array posted, source: in, body: '[{"a":1},{"a":2}]', expect: []}
  - {name: fine, source: in, event: {source: a, detail-type: x, detail: {}}, expect: [{rule: all, whole_event: true}]}
`), 0o644)
	code, out, _ := cli(t, "", "test", "-c", cfg)
	for _, want := range []string{`source "nowhere" is not a source of`, "the body holds 2 events", "1 passed, 2 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != exitFail {
		t.Errorf("exit %d", code)
	}
	os.WriteFile(filepath.Join(dir, "bad.test.yaml"), []byte("tests:\n  - {name: x, evnt: {}}\n"), 0o644)
	code, out, errOut = cli(t, "", "test", "-c", cfg, filepath.Join(dir, "bad.test.yaml"))
	if code != exitFail || !strings.Contains(errOut, "field evnt not found") || !strings.Contains(out, "1 test file(s) unreadable") {
		t.Errorf("a bad test file: exit %d\n%s%s", code, out, errOut)
	}
}
