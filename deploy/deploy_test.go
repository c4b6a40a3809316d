package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/config"
)

// The paths are relative to the repository's root; tests run in deploy/.
const (
	sidecarTaskDef    = "deploy/ecs/sidecar-task-definition.json"
	standaloneTaskDef = "deploy/ecs/standalone-task-definition.json"
	cfnTemplate       = "deploy/cloudformation/switchyard.yaml"
	systemdUnit       = "deploy/systemd/switchyard.service"
	sidecarConfig     = "examples/sidecar.yaml"
	ec2Config         = "examples/ec2.yaml"
	fanoutConfig      = "examples/fanout.yaml"
)

// checkedFiles names, for every non-Go file under deploy/ and examples/,
// the test that checks it. TestDeployFiles_EveryFileIsChecked fails when a
// file lands there without an entry (and when an entry has no file).
var checkedFiles = map[string]string{
	sidecarTaskDef:             "TestTaskDefinitions",
	standaloneTaskDef:          "TestTaskDefinitions",
	cfnTemplate:                "TestCloudFormation",
	systemdUnit:                "TestSystemdUnit",
	sidecarConfig:              "TestExamples_Validate",
	ec2Config:                  "TestExamples_Validate",
	fanoutConfig:               "TestExamples_Validate",
	"examples/switchyard.yaml": "TestExamples_Validate",
	"examples/quickstart.yaml": "TestExamples_Validate",
	// Rule tests of the examples, which `switchyard test` runs.
	"examples/ec2.test.yaml":        "TestTest_Examples (cmd/switchyard)",
	"examples/fanout.test.yaml":     "TestTest_Examples (cmd/switchyard)",
	"examples/quickstart.test.yaml": "TestTest_Examples (cmd/switchyard)",
	"examples/sidecar.test.yaml":    "TestTest_Examples (cmd/switchyard)",
	"examples/switchyard.test.yaml": "TestTest_Examples (cmd/switchyard)",
	"examples/events.jsonl":         "TestExamples_EventsParse",
	natsServerConf:                  "TestNATSServerConf",
	// A config of every form of resource name, for the IAM generator.
	"deploy/iam/testdata/forms.yaml": "TestPolicy_ARNs (deploy/iam), TestIAMPolicy_Golden (cmd/switchyard)",
}

// shutdownMargin is the least time an orchestrator must allow after
// shutdown_grace before it kills switchyard: after the grace period the
// daemon still nacks what is left (a ChangeMessageVisibility per batch of
// SQS messages), closes its sinks, drains NATS and shuts the embedded
// server down, which flushes JetStream to disk.
const shutdownMargin = 10 * time.Second

// repoRoot is the repository's root, relative to this package.
const repoRoot = ".."

func repoPath(p string) string { return filepath.Join(repoRoot, filepath.FromSlash(p)) }

func readRepoFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath(p))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// noEnv resolves no ${VAR}: the examples must validate with their
// defaults, whatever the test's environment holds.
func noEnv(string) (string, bool) { return "", false }

func loadConfig(t *testing.T, p string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(p, readRepoFile(t, p), noEnv)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return cfg
}

func TestDeployFiles_EveryFileIsChecked(t *testing.T) {
	t.Parallel()
	var found []string
	for _, dir := range []string{"deploy", "examples"} {
		err := filepath.WalkDir(repoPath(dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.HasSuffix(path, ".go") {
				return nil // Go code has its own tests
			}
			rel, err := filepath.Rel(repoRoot, path)
			if err != nil {
				return err
			}
			found = append(found, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range found {
		if _, ok := checkedFiles[f]; !ok {
			t.Errorf("%s is not checked by any test: check it, and add it to checkedFiles in deploy/deploy_test.go", f)
		}
	}
	for f, test := range checkedFiles {
		if !slices.Contains(found, f) {
			t.Errorf("checkedFiles lists %s (%s), which does not exist", f, test)
		}
	}
}

func TestExamples_Validate(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(repoPath("examples/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("examples/*.yaml: %d files, want at least 5", len(files))
	}
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".test.yaml") })
	for _, f := range files {
		rel := "examples/" + filepath.Base(f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			if checkedFiles[rel] != "TestExamples_Validate" {
				t.Errorf("%s is not listed in checkedFiles", rel)
			}
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			// Without the environment, the ${VAR:-default}s apply.
			if _, err := config.Parse(rel, readRepoFile(t, rel), noEnv); err != nil {
				t.Fatalf("without the environment: %v", err)
			}
			if len(cfg.Rules) == 0 || len(cfg.Targets) == 0 || len(cfg.Sources) == 0 {
				t.Errorf("sources %d, targets %d, rules %d: an example should show all three", len(cfg.Sources), len(cfg.Targets), len(cfg.Rules))
			}
		})
	}
}

func TestExamples_EventsParse(t *testing.T) {
	t.Parallel()
	data := readRepoFile(t, "examples/events.jsonl")
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var ev map[string]any
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Errorf("examples/events.jsonl:%d: %v", i+1, err)
			continue
		}
		for _, k := range []string{"id", "source", "detail-type", "detail"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("examples/events.jsonl:%d: no %q: not an EventBridge event", i+1, k)
			}
		}
	}
}

// decodeJSONStrict decodes data into v, failing on unknown fields, on
// duplicate keys and on trailing data.
func decodeJSONStrict(data []byte, v any) error {
	if err := checkDuplicateKeys(json.NewDecoder(bytes.NewReader(data))); err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return err
	}
	if err := checkKeyCase(generic, jsonNames(reflect.TypeOf(v), map[string]bool{})); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the top-level value")
	}
	return nil
}

// jsonNames collects the JSON field names of t and the types it holds.
func jsonNames(t reflect.Type, names map[string]bool) map[string]bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return jsonNames(t.Elem(), names)
	case reflect.Struct:
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			if !names[name] {
				names[name] = true
				jsonNames(f.Type, names)
			}
		}
	}
	return names
}

// checkKeyCase fails on a key that matches a field name only when case is
// ignored: encoding/json accepts "readOnlyRootFilesystem" for
// "readonlyRootFilesystem", and ECS does not.
func checkKeyCase(v any, names map[string]bool) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !names[k] {
				for n := range names {
					if strings.EqualFold(n, k) {
						return fmt.Errorf("key %q: the field is spelt %q", k, n)
					}
				}
			}
			if err := checkKeyCase(e, names); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := checkKeyCase(e, names); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDuplicateKeys walks one JSON value and fails on an object that
// has a key twice (encoding/json silently keeps the last one).
func checkDuplicateKeys(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q twice in one object", key)
			}
			seen[key] = true
			if err := checkDuplicateKeys(dec); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := checkDuplicateKeys(dec); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// envRefs returns the names of the ${VAR}s a config file refers to,
// outside comment lines.
func envRefs(data []byte) []string {
	var names []string
	for line := range bytes.Lines(data) {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			continue
		}
		for _, m := range envRefRE.FindAllSubmatch(line, -1) {
			if n := string(m[1]); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// The sidecar's fleet variant, the commented nats line put in place of the
// embedded server's, is a valid config that joins a cluster, and RunTask's
// rate is then the fleet's.
func TestExamples_SidecarFleet(t *testing.T) {
	t.Parallel()
	text := string(readRepoFile(t, sidecarConfig))
	var embedded, fleetLine string
	for line := range strings.SplitSeq(text, "\n") {
		switch {
		case strings.HasPrefix(line, "nats: "):
			embedded = line
		case strings.HasPrefix(line, "# nats: "):
			fleetLine = strings.TrimPrefix(line, "# ")
		}
	}
	if embedded == "" || fleetLine == "" {
		t.Fatalf("%s: want a nats line and, commented, the fleet's", sidecarConfig)
	}
	env := map[string]string{"NATS_URL": "tls://nats-0.switchyard.internal:4222,tls://nats-1.switchyard.internal:4222", "NATS_PASSWORD": "secret"}
	cfg, err := config.Parse(sidecarConfig, []byte(strings.Replace(text, embedded, fleetLine, 1)), func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		t.Fatalf("the fleet variant of %s: %v", sidecarConfig, err)
	}
	if cfg.NATS.Embedded() || cfg.NATS.User != "switchyard" || cfg.NATS.Password != "secret" {
		t.Errorf("the fleet variant: nats %+v, want the cluster with the switchyard user", cfg.NATS)
	}
	for _, tg := range cfg.Targets {
		if tg.Type == "ecs_task" {
			if p := cfg.Policies[tg.Policy]; p.Scope != "fleet" || p.Rate.PerSecond() != 20 {
				t.Errorf("target %s's policy %s: scope %s, rate %v; want a fleet-wide 20/s", tg.Name, tg.Policy, p.Scope, p.Rate)
			}
		}
	}
}
