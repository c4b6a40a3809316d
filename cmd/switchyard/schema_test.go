package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const schemaFile = "../../docs/switchyard.schema.json"

// TestSchemaCommitted keeps docs/switchyard.schema.json what `schema`
// prints (-update rewrites it).
func TestSchemaCommitted(t *testing.T) {
	code, stdout, stderr := cli(t, "", "schema")
	if code != exitOK || stderr != "" {
		t.Fatalf("schema: exit %d, stderr %q", code, stderr)
	}
	if *update {
		if err := os.WriteFile(schemaFile, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil || stdout != string(want) {
		t.Errorf("%s differs from `switchyard schema` (%v): run go test ./cmd/switchyard -update", schemaFile, err)
	}
	if code, _, _ := cli(t, "", "schema", "extra"); code != exitUsage {
		t.Errorf("schema extra: exit %d", code)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("switchyard.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("switchyard.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlToJSON turns a YAML file into the JSON value a YAML language server
// would check.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAcceptsValidConfigs: every config validate accepts, the schema
// accepts too.
func TestSchemaAcceptsValidConfigs(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("../../examples/*.yaml")
	// The examples' rule tests (NAME.test.yaml) are not configs.
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".test.yaml") })
	more, _ := filepath.Glob("../../internal/config/testdata/*.yaml")
	t.Setenv("VERSION", "1")
	t.Setenv("GRACE", "10s")
	t.Setenv("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs")
	t.Setenv("SECRET_WAIT", "5s")
	accepted := 0
	for _, f := range append(files, more...) {
		if code, _, _ := cli(t, "", "validate", "-c", f); code != exitOK {
			continue
		}
		accepted++
		data, _ := os.ReadFile(f)
		if err := s.Validate(yamlToJSON(t, data)); err != nil {
			t.Errorf("%s: validate accepts it, the schema does not: %v", f, err)
		}
	}
	if accepted < len(files) {
		t.Errorf("only %d configs accepted by validate; every example should be", accepted)
	}
}

// TestSchemaRejectsBadShapes: configs validate rejects for unknown keys or
// wrong types, the schema rejects too.
func TestSchemaRejectsBadShapes(t *testing.T) {
	s := compileSchema(t)
	base := "version: 1\nsources: [{name: q, type: sqs, queue_url: \"https://sqs.us-east-1.amazonaws.com/123456789012/q\"}]\ntargets: [{name: t, type: log}]\nrules: [{name: r, pattern: {source: [a]}, targets: [t]}]\n"
	dir := t.TempDir()
	check := func(desc, text string, wantValid bool) {
		t.Helper()
		f := filepath.Join(dir, "c.yaml")
		os.WriteFile(f, []byte(text), 0o644)
		code, _, stderr := cli(t, "", "validate", "-c", f)
		if (code == exitOK) != wantValid {
			t.Fatalf("%s: validate exit %d (%s)", desc, code, stderr)
		}
		err := s.Validate(yamlToJSON(t, []byte(text)))
		if (err == nil) != wantValid {
			t.Errorf("%s: schema says %v, validate says %q", desc, err, stderr)
		}
	}
	check("base", base, true)
	check("env in an int", base+"max_in_flight: ${MAX:-5}\n", true)
	check("null value", base+"shutdown_grace:\n", true)
	check("size as a number", strings.Replace(base, "type: log}]", "type: log}, {name: h, type: http, url: \"http://127.0.0.1:1/\"}]", 1)+"policies: {default: {rate: 100/s, timeout: 500ms}}\n", true)
	check("unknown top-level key", base+"max_inflight: 5\n", false)
	check("unknown source key", strings.Replace(base, "type: sqs,", "type: sqs, wait: 5s,", 1), false)
	check("key of another type", strings.Replace(base, "type: log}", "type: log, url: x}", 1), false)
	check("unknown type", strings.Replace(base, "type: log}", "type: logg}", 1), false)
	check("int as a string", base+"max_in_flight: many\n", false)
	check("duration without a unit", base+"shutdown_grace: 10\n", false)
	check("bad rate", base+"policies: {default: {rate: fast}}\n", false)
	check("list for a string", strings.Replace(base, "name: t,", "name: [t],", 1), false)
	check("unknown policy key", base+"policies: {default: {retries: 3}}\n", false)
}
