package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// iamConfigs are the configs whose iam-policy output has a golden file,
// testdata/iam/NAME.golden: every example, so a new example needs one, and
// the config that has every form of resource name.
func iamConfigs(t *testing.T) map[string]string {
	t.Helper()
	files, _ := filepath.Glob("../../examples/*.yaml")
	// The examples' rule tests (NAME.test.yaml) are not configs.
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".test.yaml") })
	files = append(files, "../../deploy/iam/testdata/forms.yaml")
	configs := map[string]string{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if configs[name] != "" {
			t.Fatalf("two configs named %s", name)
		}
		configs[name] = f
	}
	return configs
}

// TestIAMPolicy_Golden compares the whole output (the policy on stdout,
// then what stderr says) with testdata/iam/NAME.golden; go test -update
// writes it.
func TestIAMPolicy_Golden(t *testing.T) {
	for name, file := range iamConfigs(t) {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", "iam-policy", "-c", file)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if stdout != "" {
				var doc struct{ Version string }
				if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc.Version != "2012-10-17" {
					t.Errorf("stdout is not a policy document (%v):\n%s", err, stdout)
				}
			} else if !strings.Contains(stderr, "the config calls no AWS API") {
				t.Errorf("no policy, and no reason given: %q", stderr)
			}
			got := stdout
			if stderr != "" {
				got += "--- stderr\n" + stderr
			}
			golden(t, filepath.Join("iam", name+".golden"), got)
		})
	}
}

// A golden file whose config is gone is stale.
func TestIAMPolicy_NoStaleGoldens(t *testing.T) {
	configs := iamConfigs(t)
	goldens, _ := filepath.Glob("testdata/iam/*.golden")
	for _, g := range goldens {
		if name := strings.TrimSuffix(filepath.Base(g), ".golden"); configs[name] == "" {
			t.Errorf("%s has no config in examples/ (remove it)", g)
		}
	}
}

func TestIAMPolicy_Errors(t *testing.T) {
	code, stdout, stderr := cli(t, "", "iam-policy", "-c", "../../internal/config/testdata/many-mistakes.yaml")
	want, _ := os.ReadFile("../../internal/config/testdata/many-mistakes.golden")
	if code != exitFail || stdout != "" || stderr != strings.ReplaceAll(string(want), "testdata/", "../../internal/config/testdata/") {
		t.Errorf("invalid config: exit %d, stdout %q, stderr:\n%s\nwant what validate prints:\n%s", code, stdout, stderr, want)
	}
	code, _, stderr = cli(t, "", "iam-policy", "-c", "../../examples/switchyard.yaml", "extra")
	if code != exitUsage || !strings.Contains(stderr, `unexpected argument "extra"`) || !strings.Contains(stderr, "usage: switchyard iam-policy -c FILE") {
		t.Errorf("extra argument: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cli(t, "", "iam-policy", "--json")
	if code != exitUsage || !strings.Contains(stderr, "flag provided but not defined: -json") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, stderr)
	}
	t.Setenv("SWITCHYARD_CONFIG", "../../examples/switchyard.yaml")
	if code, stdout, _ := cli(t, "", "iam-policy"); code != exitOK || !strings.Contains(stdout, "RunTasksInMedia") {
		t.Errorf("$SWITCHYARD_CONFIG: exit %d, stdout %q", code, stdout)
	}
}

// A policy over the managed-policy limit is printed, with a warning.
func TestIAMPolicy_WarnsWhenLarge(t *testing.T) {
	var y strings.Builder
	y.WriteString("version: 1\nsources:\n")
	for i := range 150 {
		fmt.Fprintf(&y, "  - {name: q%d, type: sqs, queue_url: \"https://sqs.us-east-1.amazonaws.com/111122223333/queue-number-%d\"}\n", i, i)
	}
	y.WriteString("targets: [{name: t, type: log}]\nrules: [{name: r, pattern: {source: [x]}, targets: [t]}]\n")
	file := filepath.Join(t.TempDir(), "large.yaml")
	if err := os.WriteFile(file, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "", "iam-policy", "-c", file)
	if code != exitOK || !strings.Contains(stdout, "queue-number-149") || !strings.Contains(stderr, "more than the 6144 a managed policy may have") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
