package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/importer"
	"github.com/switchyard-dev/switchyard/router"
	"github.com/switchyard-dev/switchyard/sinks/ecstask"
)

// The fixture's environment variables, unset: the configs use their
// defaults, whatever the machine running the tests has.
func unsetImportEnv(t *testing.T) {
	for _, v := range []string{"EVENTS_QUEUE_URL", "ORDERSFN_ARN", "ALERTSTOPICNAME", "INVOICETASK_ARN", "SHARED_AUDITQUEUENAME", "AWS_REGION", "AWS_ACCOUNT_ID"} {
		t.Setenv(v, "")
	}
}

// importTo runs switchyard import with args and -o a file in a temporary
// directory, and returns the file, its content and stderr; the import
// must succeed and write nothing on stdout.
func importTo(t *testing.T, name string, args ...string) (path, config, stderr string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), name)
	code, stdout, stderr := cli(t, "", append(append([]string{"import"}, args...), "-o", path)...)
	if code != exitOK || stdout != "" {
		t.Fatalf("import: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, string(data), stderr
}

// ruleTests runs switchyard validate and the fixture's rule tests on an
// imported config; rename maps the tests' rule names to the config's.
func ruleTests(t *testing.T, cfg string, rename map[string]string) {
	t.Helper()
	if code, stdout, stderr := cli(t, "", "validate", "-c", cfg); code != exitOK || stdout != "ok\n" {
		t.Fatalf("validate: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	tests, err := os.ReadFile("testdata/import/eventbridge.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(tests)
	for from, to := range rename {
		text = strings.ReplaceAll(text, "rule: "+from+"\n", "rule: "+to+"\n")
	}
	file := filepath.Join(t.TempDir(), "eventbridge.test.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "", "test", "-c", cfg, file)
	if code != exitOK || !strings.HasSuffix(stdout, "20 passed, 0 failed\n") {
		t.Errorf("switchyard test: exit %d, stderr %q:\n%s", code, stderr, stdout)
	}
}

// The template's ten rules on the default bus become a config that
// validates, reads as the golden file, and routes each test event as
// EventBridge does: to the rules it matches, with the payloads
// EventBridge's targets receive.
func TestImport_CloudFormation(t *testing.T) {
	unsetImportEnv(t)
	path, got, stderr := importTo(t, "eventbridge.yaml", "--cloudformation", "testdata/import/eventbridge.yaml",
		"--region", "us-east-1", "--account", "111122223333")
	golden(t, "import/eventbridge.golden.yaml", got)
	golden(t, "import/eventbridge.stderr", stderr)
	ruleTests(t, path, nil)
}

// The same rules as the AWS CLI lists them import the same way; the rule
// whose name CloudFormation generated has it.
func TestImport_AWSCLI(t *testing.T) {
	unsetImportEnv(t)
	path, got, stderr := importTo(t, "cli.yaml", "--rules", "testdata/import/rules.json", "--targets", "testdata/import/targets")
	golden(t, "import/cli.golden.yaml", got)
	golden(t, "import/cli.stderr", stderr)
	ruleTests(t, path, map[string]string{"AuditRule": "orders-stack-AuditRule-1X2Y3Z4W5V6U"})

	// The targets as one file, by rule name, make the same config.
	all := map[string]json.RawMessage{}
	entries, err := os.ReadDir("testdata/import/targets")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata/import/targets", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all[strings.TrimSuffix(e.Name(), ".json")] = data
	}
	one, _ := json.Marshal(all)
	file := filepath.Join(t.TempDir(), "targets.json")
	if err := os.WriteFile(file, one, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, got2, _ := importTo(t, "cli.yaml", "--rules", "testdata/import/rules.json", "--targets", file); got2 != got {
		t.Errorf("with the targets in one file, the config differs:\n%s", got2)
	}
}

// Once the variables the template's import reads are set to what the
// deployed stack has (as the AWS CLI lists it), both imports are the same
// config: the same targets, policies and rules, in another order.
func TestImport_CloudFormationAndAWSCLIAgree(t *testing.T) {
	unsetImportEnv(t)
	cfnPath, _, _ := importTo(t, "eventbridge.yaml", "--cloudformation", "testdata/import/eventbridge.yaml",
		"--region", "us-east-1", "--account", "111122223333")
	cliPath, _, _ := importTo(t, "cli.yaml", "--rules", "testdata/import/rules.json", "--targets", "testdata/import/targets")
	stack := map[string]string{
		"ORDERSFN_ARN":          "arn:aws:lambda:us-east-1:111122223333:function:orders-stack-OrdersFn-8HsK2mQ1pL0z",
		"ALERTSTOPICNAME":       "refund-alerts",
		"INVOICETASK_ARN":       "arn:aws:ecs:us-east-1:111122223333:task-definition/invoice:3",
		"SHARED_AUDITQUEUENAME": "shared-audit",
	}
	load := func(path string, env map[string]string) *config.Config {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse(path, data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := load(cfnPath, stack), load(cliPath, nil)
	if !reflect.DeepEqual(a.Sources, b.Sources) || !reflect.DeepEqual(a.AWS, b.AWS) {
		t.Errorf("sources or aws differ: %+v %+v / %+v %+v", a.Sources, a.AWS, b.Sources, b.AWS)
	}
	if !reflect.DeepEqual(a.Policies, b.Policies) {
		t.Errorf("policies differ: %v / %v", a.Policies, b.Policies)
	}
	targets := func(c *config.Config) map[string]config.Target {
		m := map[string]config.Target{}
		for _, tg := range c.Targets {
			m[tg.Name] = tg
		}
		return m
	}
	ta, tb := targets(a), targets(b)
	if len(ta) != len(tb) || len(ta) < 9 {
		t.Errorf("%d targets from the template, %d from the AWS CLI", len(ta), len(tb))
	}
	for name, x := range ta {
		if y, ok := tb[name]; !ok || !reflect.DeepEqual(x, y) {
			t.Errorf("target %s: %+v / %+v", name, x.Config, y.Config)
		}
	}
	rules := map[string]config.Rule{}
	for _, r := range b.Rules {
		rules[r.Name] = r
	}
	if len(a.Rules) != len(b.Rules) || len(a.Rules) < 8 {
		t.Errorf("%d rules from the template, %d from the AWS CLI", len(a.Rules), len(b.Rules))
	}
	for _, r := range a.Rules {
		name := r.Name
		if name == "AuditRule" {
			name = "orders-stack-AuditRule-1X2Y3Z4W5V6U"
		}
		o, ok := rules[name]
		switch {
		case !ok:
			t.Errorf("rule %s: not imported from the AWS CLI's", r.Name)
		case string(r.Pattern.JSON) != string(o.Pattern.JSON):
			t.Errorf("rule %s: patterns %s / %s", r.Name, r.Pattern.JSON, o.Pattern.JSON)
		case !slices.Equal(r.Targets, o.Targets):
			t.Errorf("rule %s: targets %v / %v", r.Name, r.Targets, o.Targets)
		case (r.Input == nil) != (o.Input == nil) || r.Input != nil && (!reflect.DeepEqual(r.Input.Paths, o.Input.Paths) || r.Input.Template != o.Input.Template):
			t.Errorf("rule %s: inputs %+v / %+v", r.Name, r.Input, o.Input)
		}
	}
}

// Without --region and --account, the config reads them from the
// environment, and still routes every event as EventBridge does.
func TestImport_RegionAndAccountFromTheEnvironment(t *testing.T) {
	unsetImportEnv(t)
	path, got, stderr := importTo(t, "eventbridge.yaml", "--cloudformation", "testdata/import/eventbridge.yaml")
	for _, want := range []string{`region: "${AWS_REGION:-us-east-1}"`,
		`state_machine: "arn:aws:states:${AWS_REGION:-us-east-1}:${AWS_ACCOUNT_ID:-123456789012}:stateMachine:fulfilment"`} {
		if !strings.Contains(got, want) {
			t.Errorf("the config has no %q", want)
		}
	}
	if !strings.Contains(stderr, "the stack's region and account are not known: the config reads AWS_REGION and AWS_ACCOUNT_ID (pass --region and --account to write them)") {
		t.Errorf("stderr:\n%s", stderr)
	}
	ruleTests(t, path, nil)
}

func TestImport_Errors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("Resources:\n  A: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing to read", nil, exitUsage, "give --cloudformation FILE, or --rules FILE and --targets DIR_OR_FILE"},
		{"both inputs", []string{"--cloudformation", "x", "--rules", "y"}, exitUsage, "not both"},
		{"rules without targets", []string{"--rules", "testdata/import/rules.json"}, exitUsage, "--rules and --targets go together"},
		{"a file not there", []string{"--cloudformation", filepath.Join(dir, "nope.yaml")}, exitUsage, "no such file"},
		{"a targets directory not there", []string{"--rules", "testdata/import/rules.json", "--targets", filepath.Join(dir, "nope")}, exitUsage, "no such file"},
		{"a template that is not YAML", []string{"--cloudformation", bad}, exitUsage, "bad.yaml: not YAML or JSON"},
		{"rules that are not list-rules'", []string{"--rules", "testdata/import/eventbridge.yaml", "--targets", "testdata/import/targets"}, exitUsage,
			"eventbridge.yaml: not JSON"},
		{"a bus without rules", []string{"--cloudformation", "testdata/import/eventbridge.yaml", "--bus", "nobody"}, exitFail,
			`nothing to import: no rule of the event bus "nobody" could be imported`},
		{"a bad --param", []string{"--cloudformation", "testdata/import/eventbridge.yaml", "--param", "novalue"}, exitUsage, `want NAME=VALUE, got "novalue"`},
		{"an empty --bus", []string{"--cloudformation", "testdata/import/eventbridge.yaml", "--bus", ""}, exitUsage, "--bus is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", append([]string{"import"}, tt.args...)...)
			if code != tt.code || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d (want %d), stdout %q, stderr:\n%s\nwant it to say %q", code, tt.code, stdout, stderr, tt.want)
			}
		})
	}
	// Another bus is imported with --bus; --param fills a parameter.
	unsetImportEnv(t)
	_, got, _ := importTo(t, "legacy.yaml", "--cloudformation", "testdata/import/eventbridge.yaml", "--bus", "legacy",
		"--region", "us-east-1", "--account", "111122223333", "--param", "AlertsTopicName=refund-alerts")
	if !strings.Contains(got, "- name: legacy-orders") || !strings.Contains(got, "switchyard-legacy") {
		t.Errorf("--bus legacy:\n%s", got)
	}
	_, got, _ = importTo(t, "p.yaml", "--cloudformation", "testdata/import/eventbridge.yaml",
		"--region", "us-east-1", "--account", "111122223333", "--param", "AlertsTopicName=refund-alerts")
	if !strings.Contains(got, "topic_arn: arn:aws:sns:us-east-1:111122223333:refund-alerts") {
		t.Errorf("--param AlertsTopicName=refund-alerts: no such topic_arn")
	}
	// Without -o, the config goes to stdout.
	code, stdout, _ := cli(t, "", "import", "--cloudformation", "testdata/import/eventbridge.yaml", "--region", "us-east-1", "--account", "111122223333")
	if code != exitOK || !strings.Contains(stdout, "version: 1\n") {
		t.Errorf("to stdout: exit %d, stdout %q", code, stdout)
	}
	if code, stdout, _ := cli(t, "", "help", "import"); code != exitOK || !strings.Contains(stdout, "-cloudformation") || !strings.Contains(stdout, "-param") {
		t.Errorf("help import: exit %d, stdout %q", code, stdout)
	}
}

// For an ECS task, EventBridge's input is the task's overrides. The import
// renders the values the overrides need as the rule's payload, and the
// ecs_task target fills its container overrides with them: RunTask gets
// the overrides EventBridge's input transformer made.
func TestImport_ECSOverridesAsEventBridge(t *testing.T) {
	unsetImportEnv(t)
	path, _, _ := importTo(t, "eventbridge.yaml", "--cloudformation", "testdata/import/eventbridge.yaml",
		"--region", "us-east-1", "--account", "111122223333")
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(c.Rules, func(r config.Rule) bool { return r.Name == "invoice-requested" })
	j := slices.IndexFunc(c.Targets, func(tg config.Target) bool { return tg.Name == "InvoiceTask" })
	if i < 0 || j < 0 {
		t.Fatal("no invoice-requested rule or InvoiceTask target")
	}
	ev, err := router.ParseEvent([]byte(`{"id": "e-1", "source": "com.example.billing", "detail-type": "Invoice Requested",
		"detail": {"invoiceId": "inv-7", "amount": 120}}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	payload := c.Rules[i].Input.Transformer.Render(nil, ev, "invoice-requested")

	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.ECS().CreateCluster("jobs")
	if _, err := srv.ECS().RegisterTaskDefinition(awstest.TaskDefinition{Family: "invoice", RequiresCompatibilities: []string{"FARGATE"},
		Containers: []awstest.ContainerDefinition{{Name: "app"}}}); err != nil {
		t.Fatal(err)
	}
	sink := ecstask.New("InvoiceTask", *c.Targets[j].Config.(*ecstask.Config), srv.ECSClient())
	d := &router.Delivery{ID: "0123456789abcdef0123456789abcdef", Rule: "invoice-requested", Target: "InvoiceTask",
		Payload: payload, Message: &router.Message{ID: "m-1", Source: "events", Event: ev}}
	if err := sink.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}

	// What EventBridge's InputTemplate renders for this event.
	var want awstest.TaskOverride
	if err := json.Unmarshal([]byte(`{"containerOverrides": [{"name": "app", "command": ["invoice", "inv-7"],
		"environment": [{"name": "INVOICE_ID", "value": "inv-7"}]}]}`), &want); err != nil {
		t.Fatal(err)
	}
	tasks := srv.ECS().Tasks("jobs")
	if len(tasks) != 2 {
		t.Fatalf("%d tasks, want TaskCount 2", len(tasks))
	}
	for _, task := range tasks {
		if !reflect.DeepEqual(task.Overrides.ContainerOverrides, want.ContainerOverrides) {
			t.Errorf("overrides %+v, want EventBridge's %+v", task.Overrides.ContainerOverrides, want.ContainerOverrides)
		}
		if task.LaunchType != "FARGATE" || task.Group != "invoices" || task.PlatformVersion != "1.4.0" ||
			!slices.Contains(task.Tags, awstest.Tag{Key: "team", Value: "billing"}) {
			t.Errorf("task %+v: want FARGATE, group invoices, platform 1.4.0, tag team=billing", task)
		}
	}
}

// A config that does not validate is never written: its problems are, and
// the exit is 1. (The import checks what it writes; this is its last line
// of defence, so the import is replaced by one that fails it.)
func TestImport_InvalidConfigIsNotWritten(t *testing.T) {
	defer func(f func(string, []byte, importer.Options) (*importer.Result, error)) { fromCloudFormation = f }(fromCloudFormation)
	fromCloudFormation = func(string, []byte, importer.Options) (*importer.Result, error) {
		return &importer.Result{Warnings: []string{"a warning"}}, &importer.InvalidError{Config: []byte("version: 2\n"),
			Problems: []string{":1:10: version: unsupported version 2 (this switchyard reads version 1)"}}
	}
	out := filepath.Join(t.TempDir(), "out.yaml")
	code, stdout, stderr := cli(t, "", "import", "--cloudformation", "testdata/import/eventbridge.yaml", "-o", out)
	if code != exitFail || stdout != "" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{"switchyard import: warning: a warning\n", "switchyard import: :1:10: version: unsupported version 2",
		"the config written does not validate: this is a bug in switchyard import"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr has no %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s was written", out)
	}
}
