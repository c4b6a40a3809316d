package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/backlog"
	"github.com/switchyard-dev/switchyard/internal/bus"
	"github.com/switchyard-dev/switchyard/internal/fleet"
	"github.com/switchyard-dev/switchyard/internal/ledger"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/policy"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testEnv is the environment the testdata files see.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"INGEST_KEY":      "k-123",
		"APP_SIGNING_KEY": "s-456",
		"VERSION":         "1",
		"GRACE":           "45s",
		"QUEUE_URL":       "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
		"SECRET_WAIT":     "hunter2",
		"EMPTY":           "",
	}[name]
	return v, ok
}

// TestParse_Golden loads each testdata/*.yaml and compares what the user
// would see (ok, or every error line) with testdata/*.golden.
func TestParse_Golden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(file, data, testEnv)
			got := "ok\n"
			if err != nil {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Fatalf("Parse error is %T, want Errors", err)
				}
				got = err.Error() + "\n"
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Parse(%s):\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}

func TestParse_Defaults(t *testing.T) {
	c, err := Parse("min.yaml", []byte(`
version: 1
sources: [{name: q, type: sqs, queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/q"}]
targets: [{name: t, type: log}]
rules: [{name: r, pattern: {source: [x]}, targets: [t]}]
`), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxInFlight != 1000 || c.MaxInFlightBytes != 64*size.MiB || c.ShutdownGrace != 25*time.Second || c.Admin.Listen != "127.0.0.1:9090" || c.NATS.StoreDir != "./data/nats" {
		t.Errorf("file defaults = %d %v %v %q %q", c.MaxInFlight, c.MaxInFlightBytes, c.ShutdownGrace, c.Admin.Listen, c.NATS.StoreDir)
	}
	q := c.Sources[0].Config.(*sqssource.Config)
	if q.MaxMessages != 10 || q.WaitTime != 20*time.Second || q.VisibilityTimeout != time.Minute || q.Pollers != 1 || q.Envelope != "auto" {
		t.Errorf("sqs defaults = %+v", q)
	}
	if c.Targets[0].Policy != "default" || c.Policies["default"] == nil || c.Policies["default"].Concurrency != 64 {
		t.Errorf("a target without a policy gets the built-in default: %q %+v", c.Targets[0].Policy, c.Policies["default"])
	}
	rules := c.RouterRules()
	if len(rules) != 1 || rules[0].Pattern == nil || rules[0].Input != nil {
		t.Errorf("RouterRules = %+v", rules)
	}
}

func TestParse_EnvExpansion(t *testing.T) {
	c, err := Parse("env.yaml", []byte(`
version: ${VERSION}
max_in_flight: ${MAX:-250}
shutdown_grace: ${GRACE}
sources: [{name: q, type: http, auth: {type: api_key, keys: ["${INGEST_KEY}", "lit$${x}"]}}]
targets: [{name: t, type: log}]
rules:
  - name: r
    targets: [t]
    pattern:
      source: ["${INGEST_KEY}"]
      n: ["${VERSION}"]
      m:
        - ${VERSION}
`), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 1 || c.MaxInFlight != 250 || c.ShutdownGrace != 45*time.Second {
		t.Errorf("expanded scalars: version %d, max_in_flight %d, shutdown_grace %v", c.Version, c.MaxInFlight, c.ShutdownGrace)
	}
	// A quoted ${VAR} stays a string; a plain one is typed by its value.
	if got := string(c.Rules[0].Pattern.JSON); got != `{"source":["k-123"],"n":["1"],"m":[1]}` {
		t.Errorf("pattern JSON = %s", got)
	}
}

// An expanded secret must never appear in an error message.
func TestParse_ErrorsNeverShowSecrets(t *testing.T) {
	secret := "s3cr3t-value-do-not-log"
	env := func(name string) (string, bool) { return secret, true }
	_, err := Parse("s.yaml", []byte(`
version: 1
shutdown_grace: ${A}
max_in_flight: ${B}
admin: {listen: "${C}"}
sources:
  - {name: q, type: sqs, queue_url: "${D}", envelope: "${F}"}
  - {name: h, type: http, listen: "${G}:8080"}
targets: [{name: t, type: http, url: "${E}"}]
policies: {p: {rate: "${H}", dead_letter: "${I}"}}
rules: [{name: r, pattern: {source: [x]}, targets: [t, "${J}"]}]
`), env)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the secret:\n%v", err)
	}
	if got := len(err.(Errors)); got != 10 {
		t.Errorf("got %d errors, want 10:\n%v", got, err)
	}
}

// A small file whose aliases expand to millions of values is refused
// quickly, not decoded.
func TestParse_AliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nx0: &a0 [v, v, v, v, v, v, v, v, v, v]\n")
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("rules: [{name: r, targets: [t], pattern: {source: *a7}}]\n")
	_, err := Parse("bomb.yaml", []byte(b.String()), testEnv)
	if err == nil || !strings.Contains(err.Error(), "aliases expand the file to more than") {
		t.Errorf("err = %v, want the alias budget", err)
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load("testdata/does-not-exist.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
	t.Setenv("INGEST_KEY", "k")
	t.Setenv("APP_SIGNING_KEY", "s")
	if _, err := Load("testdata/valid-design.yaml"); err != nil {
		t.Errorf("Load(valid-design.yaml): %v", err)
	}
}

func TestExamplesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	// The examples' rule tests (NAME.test.yaml) are not configs.
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".test.yaml") })
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s:\n%v", f, err)
		}
	}
}

// TestDocsCoverEveryKey checks that docs/config.md documents every key the
// file format accepts, each in its section, so the reference cannot fall
// behind the structs.
func TestDocsCoverEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{} // heading → its text
	var heading string
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
			continue
		}
		sections[heading] += line + "\n"
	}
	for heading, keys := range documentedKeys() {
		text, ok := sections[heading]
		if !ok {
			t.Errorf("docs/config.md has no section %q", heading)
			continue
		}
		for _, k := range keys {
			if !strings.Contains(text, "`"+k+"`") {
				t.Errorf("docs/config.md, section %q, does not document `%s`", heading, k)
			}
		}
	}
}

// documentedKeys lists every YAML key by the docs section that must
// document it, as dotted paths relative to the section.
func documentedKeys() map[string][]string {
	out := map[string][]string{}
	var walk func(section, prefix string, t reflect.Type)
	walk = func(section, prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Duration]() {
			return
		}
		for _, f := range fieldsOf(t) {
			key := joinPath(prefix, f.key)
			out[section] = append(out[section], key)
			walk(section, key, t.FieldByIndex(f.index).Type)
		}
	}
	for _, f := range fieldsOf(reflect.TypeFor[Config]()) {
		out["File"] = append(out["File"], f.key)
	}
	walk("File", "aws", reflect.TypeFor[AWS]())
	walk("File", "nats", reflect.TypeFor[bus.Config]())
	walk("File", "ledger", reflect.TypeFor[ledger.Config]())
	walk("File", "fleet", reflect.TypeFor[fleet.Config]())
	walk("File", "admin", reflect.TypeFor[Admin]())
	walk("File", "tracing", reflect.TypeFor[telemetry.TracingConfig]())
	walk("File", "log", reflect.TypeFor[telemetry.LogConfig]())
	for typ, mk := range sourceKinds {
		section := "Source `" + typ + "`"
		out[section] = []string{"name", "type"}
		walk(section, "", reflect.TypeOf(mk()).Elem())
	}
	for typ, mk := range targetKinds {
		section := "Target `" + typ + "`"
		out[section] = []string{"name", "type", "policy"}
		walk(section, "", reflect.TypeOf(mk()).Elem())
	}
	out["Backlogs"] = []string{"backlog"}
	walk("Backlogs", "backlog", reflect.TypeFor[backlog.Config]())
	walk("Policies", "", reflect.TypeFor[policy.Config]())
	walk("Rules", "", reflect.TypeFor[Rule]())
	walk("Rules", "input", reflect.TypeFor[Input]())
	return out
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, testEnv)
		if err == nil {
			if c == nil || c.Version != 1 || len(c.Rules) == 0 {
				t.Fatalf("accepted config is incomplete: %+v", c)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %v is not a non-empty Errors", err)
		}
		for _, e := range errs {
			if e.Msg == "" {
				t.Fatalf("empty message in %v", errs)
			}
		}
	})
}
