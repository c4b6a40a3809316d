package importer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cliRules = `{"Rules": [
  {"Name": "orders", "Arn": "arn:aws:events:eu-west-1:111122223333:rule/orders", "EventPattern": "{\"source\": [\"shop\"]}", "State": "ENABLED", "EventBusName": "default"},
  {"Name": "legacy", "Arn": "arn:aws:events:eu-west-1:111122223333:rule/legacy/old", "EventPattern": "{\"source\": [\"old\"]}", "EventBusName": "legacy"}
], "NextToken": "x"}`

const cliTargets = `{"Targets": [{"Id": "Q", "Arn": "arn:aws:sqs:eu-west-1:111122223333:jobs", "InputPath": "$.detail"}]}`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The region and account come from the rules' ARNs; rules of other buses
// are listed, and need no targets.
func TestCLI_Import(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"orders.json": cliTargets, "notes.txt": "ignored"})
	ts, err := LoadTargets(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := FromCLI("rules.json", []byte(cliRules), ts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Config)
	for _, want := range []string{"region: eu-west-1", "queue_url: https://sqs.eu-west-1.amazonaws.com/111122223333/jobs",
		"${EVENTS_QUEUE_URL:-https://sqs.eu-west-1.amazonaws.com/111122223333/switchyard-default}", "value: $.detail"} {
		if !strings.Contains(out, want) {
			t.Errorf("the config has no %q:\n%s", want, out)
		}
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, `rule legacy (rules.json: Rules[1]): it is on the event bus "legacy"`) {
		t.Errorf("warnings:\n%s", w)
	}

	// The same targets in one file, by rule name, make the same config.
	file := filepath.Join(writeFiles(t, map[string]string{"targets.json": `{"orders": ` + cliTargets + `}`}), "targets.json")
	ts2, err := LoadTargets(file)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := FromCLI("rules.json", []byte(cliRules), ts2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(res2.Config) != out {
		t.Errorf("from one file:\n%s\nfrom a directory:\n%s", res2.Config, out)
	}

	// --region and --account win over the ARNs'.
	res3, err := FromCLI("rules.json", []byte(cliRules), ts, Options{Region: "eu-west-1", Account: "999988887777"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res3.Config), "its resource policy must let switchyard's role") {
		t.Errorf("with --account 999988887777, the queue is another account's:\n%s", res3.Config)
	}
}

func TestCLI_Problems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, rules string
		targets     map[string]string
		input       bool   // an input error (exit 2), else warnings
		want        string // in the error, or in the warnings
	}{
		{"rules not JSON", `{"Rules": [`, nil, true, "rules.json: not JSON: line 1: unexpected end of JSON"},
		{"rules without Rules", `{"rules": []}`, nil, true, "not the output of aws events list-rules: want an object with Rules"},
		{"rules with another key", `{"Rules": [], "Extra": 1}`, nil, true, `unknown key "Extra"`},
		{"a rule that is not an object", `{"Rules": [1]}`, nil, true, "Rules[0] is a number, not an object"},
		{"a rule without a name", `{"Rules": [{"EventPattern": "{}"}]}`, nil, true, "Rules[0] has no Name"},
		{"targets not JSON", cliRules, map[string]string{"orders.json": `{"Targets": [}`}, true, "orders.json: not JSON"},
		{"targets without Targets", cliRules, map[string]string{"orders.json": `[]`}, true, "not the output of aws events list-targets-by-rule"},
		{"a rule whose targets are missing", cliRules + "", map[string]string{"other.json": cliTargets}, false,
			"its targets are not in"},
		{"targets of a rule not listed", cliRules, map[string]string{"orders.json": cliTargets, "gone.json": cliTargets}, false,
			"gone.json: not read: rules.json lists no rule gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts, err := LoadTargets(writeFiles(t, tt.targets))
			if err != nil {
				t.Fatal(err)
			}
			res, err := FromCLI("rules.json", []byte(tt.rules), ts, Options{})
			if tt.input {
				if !IsInputError(err) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %v, want an input error saying %q", err, tt.want)
				}
				return
			}
			if err != nil && !errors.Is(err, ErrNothing) {
				t.Fatal(err)
			}
			if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, tt.want) {
				t.Errorf("no warning says %q:\n%s", tt.want, w)
			}
		})
	}
	if _, err := LoadTargets(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("LoadTargets of a missing path: no error")
	}
	f := filepath.Join(writeFiles(t, map[string]string{"t.json": `["orders"]`}), "t.json")
	if _, err := LoadTargets(f); err == nil || !strings.Contains(err.Error(), "want an object mapping rule names") {
		t.Errorf("LoadTargets of a list: %v", err)
	}
}
