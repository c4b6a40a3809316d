package iam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/config"
)

// parse loads a config from YAML text, failing the test if it is invalid.
func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

func policy(t *testing.T, cfg *config.Config) *Document {
	t.Helper()
	d, err := Policy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func statement(d *Document, sid string) *Statement {
	for i := range d.Statement {
		if d.Statement[i].Sid == sid {
			return &d.Statement[i]
		}
	}
	return nil
}

func TestPartition(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1": "aws", "eu-west-3": "aws", "cn-north-1": "aws-cn", "cn-northwest-1": "aws-cn",
		"us-gov-west-1": "aws-us-gov", "us-gov-east-1": "aws-us-gov", "us-iso-east-1": "aws-iso",
		"us-isob-east-1": "aws-iso-b", "eu-isoe-west-1": "aws-iso-e", "us-isof-south-1": "aws-iso-f",
		"*": "aws", "": "aws",
	} {
		if got := partition(region); got != want {
			t.Errorf("partition(%q) = %q, want %q", region, got, want)
		}
	}
}

// TestPolicy_ARNs derives each kind of resource from each form a config may
// name it in, with and without aws.region.
func TestPolicy_ARNs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		region string // aws.region
		source string // one entry of sources, or "" for an http source
		target string // one entry of targets, or "" for a log target
		sid    string
		want   []string // the statement's resources
		cond   string   // the statement's condition, as JSON
	}{
		{name: "queue URL", source: `{name: s, type: sqs, queue_url: "https://sqs.us-west-2.amazonaws.com/111122223333/q"}`,
			sid: sidReceive, want: []string{"arn:aws:sqs:us-west-2:111122223333:q"}},
		{name: "FIFO queue", source: `{name: s, type: sqs, queue_url: "https://sqs.us-west-2.amazonaws.com/111122223333/q.fifo"}`,
			sid: sidReceive, want: []string{"arn:aws:sqs:us-west-2:111122223333:q.fifo"}},
		{name: "custom endpoint takes aws.region", region: "ap-northeast-1", source: `{name: s, type: sqs, queue_url: "http://127.0.0.1:9324/000000000000/q"}`,
			sid: sidReceive, want: []string{"arn:aws:sqs:ap-northeast-1:000000000000:q"}},
		{name: "custom endpoint without region", source: `{name: s, type: sqs, queue_url: "http://localhost:4566/000000000000/q"}`,
			sid: sidReceive, want: []string{"arn:aws:sqs:*:000000000000:q"}},
		{name: "China queue", source: `{name: s, type: sqs, queue_url: "https://sqs.cn-northwest-1.amazonaws.com.cn/111122223333/q"}`,
			sid: sidReceive, want: []string{"arn:aws-cn:sqs:cn-northwest-1:111122223333:q"}},
		{name: "GovCloud partition from aws.region", region: "us-gov-east-1", source: `{name: s, type: sqs, queue_url: "http://10.0.0.1/111122223333/q"}`,
			sid: sidReceive, want: []string{"arn:aws-us-gov:sqs:us-gov-east-1:111122223333:q"}},
		{name: "target queue", target: `{name: t, type: sqs, queue_url: "https://eu-west-2.queue.amazonaws.com/111122223333/out"}`,
			sid: sidSend, want: []string{"arn:aws:sqs:eu-west-2:111122223333:out"}},

		{name: "bare function", region: "us-east-1", target: `{name: t, type: lambda, function: fn}`,
			sid: sidInvoke, want: []string{"arn:aws:lambda:us-east-1:*:function:fn"}},
		{name: "bare function without region", target: `{name: t, type: lambda, function: fn}`,
			sid: sidInvoke, want: []string{"arn:aws:lambda:*:*:function:fn"}},
		{name: "function alias", region: "us-east-1", target: `{name: t, type: lambda, function: "fn:live"}`,
			sid: sidInvokeQual, want: []string{"arn:aws:lambda:us-east-1:*:function:fn:live"}},
		{name: "qualifier key", region: "us-east-1", target: `{name: t, type: lambda, function: fn, qualifier: "12"}`,
			sid: sidInvokeQual, want: []string{"arn:aws:lambda:us-east-1:*:function:fn:12"}},
		{name: "partial ARN", region: "cn-north-1", target: `{name: t, type: lambda, function: "111122223333:function:fn"}`,
			sid: sidInvoke, want: []string{"arn:aws-cn:lambda:cn-north-1:111122223333:function:fn"}},
		{name: "full ARN keeps its own region", region: "eu-west-1", target: `{name: t, type: lambda, function: "arn:aws:lambda:us-east-2:111122223333:function:fn"}`,
			sid: sidInvoke, want: []string{"arn:aws:lambda:us-east-2:111122223333:function:fn"}},
		{name: "full ARN with qualifier key", target: `{name: t, type: lambda, function: "arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:fn", qualifier: prod}`,
			sid: sidInvokeQual, want: []string{"arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:fn:prod"}},

		{name: "family", region: "us-east-1", target: `{name: t, type: ecs_task, task_definition: job}`,
			sid: "RunTasksInDefault", want: []string{"arn:aws:ecs:us-east-1:*:task-definition/job:*"},
			cond: `{"ArnEquals":{"ecs:cluster":["arn:aws:ecs:us-east-1:*:cluster/default"]}}`},
		{name: "family and revision", region: "us-east-1", target: `{name: t, type: ecs_task, cluster: work, task_definition: "job:4"}`,
			sid: "RunTasksInWork", want: []string{"arn:aws:ecs:us-east-1:*:task-definition/job:4"},
			cond: `{"ArnEquals":{"ecs:cluster":["arn:aws:ecs:us-east-1:*:cluster/work"]}}`},
		{name: "task definition ARN lends the cluster its region and account", region: "eu-west-1",
			target: `{name: t, type: ecs_task, cluster: work, task_definition: "arn:aws:ecs:us-east-2:111122223333:task-definition/job:4"}`,
			sid:    "RunTasksInWork", want: []string{"arn:aws:ecs:us-east-2:111122223333:task-definition/job:4"},
			cond: `{"ArnEquals":{"ecs:cluster":["arn:aws:ecs:us-east-2:111122223333:cluster/work"]}}`},
		{name: "cluster ARN lends the family its region and account",
			target: `{name: t, type: ecs_task, cluster: "arn:aws-cn:ecs:cn-north-1:111122223333:cluster/work", task_definition: job}`,
			sid:    "RunTasksInWork", want: []string{"arn:aws-cn:ecs:cn-north-1:111122223333:task-definition/job:*"},
			cond: `{"ArnEquals":{"ecs:cluster":["arn:aws-cn:ecs:cn-north-1:111122223333:cluster/work"]}}`},
		{name: "tagging launched tasks", region: "us-east-1", target: `{name: t, type: ecs_task, cluster: work, task_definition: job}`,
			sid: sidTag, want: []string{"arn:aws:ecs:us-east-1:*:task/work/*"}, cond: `{"StringEquals":{"ecs:CreateAction":["RunTask"]}}`},
		{name: "named roles", region: "us-east-1",
			target: `{name: t, type: ecs_task, task_definition: job, task_role_arn: "arn:aws:iam::111122223333:role/a", execution_role_arn: "arn:aws:iam::111122223333:role/b"}`,
			sid:    sidPassRole, want: []string{"arn:aws:iam::111122223333:role/a", "arn:aws:iam::111122223333:role/b"},
			cond: `{"StringEquals":{"iam:PassedToService":["ecs-tasks.amazonaws.com"]}}`},
		{name: "one role unnamed", target: `{name: t, type: ecs_task, cluster: "arn:aws:ecs:us-east-1:111122223333:cluster/c", task_definition: job, task_role_arn: "arn:aws:iam::111122223333:role/a"}`,
			sid: sidPassRole, want: []string{"arn:aws:iam::111122223333:role/*", "arn:aws:iam::111122223333:role/a"},
			cond: `{"StringEquals":{"iam:PassedToService":["ecs-tasks.amazonaws.com"]}}`},

		{name: "topic", region: "us-east-2", target: `{name: t, type: sns, topic_arn: "arn:aws:sns:us-east-2:111122223333:orders"}`,
			sid: sidPublish, want: []string{"arn:aws:sns:us-east-2:111122223333:orders"}},
		{name: "FIFO topic in China", target: `{name: t, type: sns, topic_arn: "arn:aws-cn:sns:cn-north-1:111122223333:orders.fifo"}`,
			sid: sidPublish, want: []string{"arn:aws-cn:sns:cn-north-1:111122223333:orders.fifo"}},
		{name: "stream name", region: "eu-west-1", target: `{name: t, type: kinesis, stream: clicks}`,
			sid: sidPutRecords, want: []string{"arn:aws:kinesis:eu-west-1:*:stream/clicks"}},
		{name: "stream name without region", target: `{name: t, type: kinesis, stream: clicks}`,
			sid: sidPutRecords, want: []string{"arn:aws:kinesis:*:*:stream/clicks"}},
		{name: "stream name in GovCloud", region: "us-gov-west-1", target: `{name: t, type: kinesis, stream: clicks}`,
			sid: sidPutRecords, want: []string{"arn:aws-us-gov:kinesis:us-gov-west-1:*:stream/clicks"}},
		{name: "stream ARN keeps its own account", region: "us-east-1", target: `{name: t, type: kinesis, stream_arn: "arn:aws:kinesis:us-east-1:111122223333:stream/clicks"}`,
			sid: sidPutRecords, want: []string{"arn:aws:kinesis:us-east-1:111122223333:stream/clicks"}},
		{name: "stream ARN without region", target: `{name: t, type: kinesis, stream_arn: "arn:aws-cn:kinesis:cn-north-1:111122223333:stream/clicks"}`,
			sid: sidPutRecords, want: []string{"arn:aws-cn:kinesis:cn-north-1:111122223333:stream/clicks"}},
		{name: "state machine", region: "us-east-1", target: `{name: t, type: stepfunctions, state_machine: "arn:aws:states:us-east-1:111122223333:stateMachine:orders"}`,
			sid: sidStartExec, want: []string{"arn:aws:states:us-east-1:111122223333:stateMachine:orders"}},
		{name: "state machine's executions", target: `{name: t, type: stepfunctions, state_machine: "arn:aws-cn:states:cn-north-1:111122223333:stateMachine:orders"}`,
			sid: sidDescribeExec, want: []string{"arn:aws-cn:states:cn-north-1:111122223333:execution:orders:*"}},
		{name: "express workflow run synchronously", target: `{name: t, type: stepfunctions, state_machine: "arn:aws:states:us-east-1:111122223333:stateMachine:score", mode: express_sync}`,
			sid: sidStartSync, want: []string{"arn:aws:states:us-east-1:111122223333:stateMachine:score"}},
		{name: "bus by name", region: "eu-west-1", target: `{name: t, type: eventbridge, bus: orders}`,
			sid: sidPutEvents, want: []string{"arn:aws:events:eu-west-1:*:event-bus/orders"}},
		{name: "default bus without region", target: `{name: t, type: eventbridge}`,
			sid: sidPutEvents, want: []string{"arn:aws:events:*:*:event-bus/default"}},
		{name: "bus ARN of another account", region: "eu-west-1", target: `{name: t, type: eventbridge, bus: "arn:aws:events:eu-west-1:444455556666:event-bus/central"}`,
			sid: sidPutEvents, want: []string{"arn:aws:events:eu-west-1:444455556666:event-bus/central"}},
		{name: "China bus", region: "cn-north-1", target: `{name: t, type: eventbridge, bus: audit}`,
			sid: sidPutEvents, want: []string{"arn:aws-cn:events:cn-north-1:*:event-bus/audit"}},

		{name: "ECS source lists", region: "us-east-1", source: `{name: s, type: ecs, cluster: work}`,
			sid: sidListTasks, want: []string{"*"}, cond: `{"ArnEquals":{"ecs:cluster":["arn:aws:ecs:us-east-1:*:cluster/work"]}}`},
		{name: "ECS source describes", source: `{name: s, type: ecs, cluster: "arn:aws:ecs:eu-north-1:111122223333:cluster/work"}`,
			sid: sidDescribeTasks, want: []string{"arn:aws:ecs:eu-north-1:111122223333:task/work/*"},
			cond: `{"ArnEquals":{"ecs:cluster":["arn:aws:ecs:eu-north-1:111122223333:cluster/work"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := cmpOr(tc.source, `{name: s, type: http}`)
			tgt := cmpOr(tc.target, `{name: t, type: log}`)
			y := fmt.Sprintf("version: 1\naws: {region: %q}\nsources: [%s]\ntargets: [%s]\nrules: [{name: r, pattern: {source: [x]}, targets: [t]}]\n", tc.region, src, tgt)
			if tc.region == "" {
				y = strings.Replace(y, "aws: {region: \"\"}\n", "", 1)
			}
			d := policy(t, parse(t, y))
			s := statement(d, tc.sid)
			if s == nil {
				t.Fatalf("no statement %s in %+v", tc.sid, d.Statement)
			}
			if !slices.Equal(s.Resource, tc.want) {
				t.Errorf("resources %q, want %q", s.Resource, tc.want)
			}
			cond, _ := json.Marshal(s.Condition)
			if s.Condition == nil {
				cond = nil
			}
			if string(cond) != tc.cond {
				t.Errorf("condition %s, want %s", cond, tc.cond)
			}
		})
	}
}

// A task definition may be launched only in the cluster the config
// launches it in: one RunTask statement per cluster, even for clusters
// whose names make the same Sid.
func TestPolicy_RunTaskPerCluster(t *testing.T) {
	d := policy(t, parse(t, `version: 1
aws: {region: us-east-1}
sources: [{name: s, type: http}]
targets:
  - {name: a, type: ecs_task, cluster: jobs-2, task_definition: "a:1"}
  - {name: b, type: ecs_task, cluster: jobs_2, task_definition: "b:1"}
  - {name: c, type: ecs_task, cluster: other, task_definition: "a:1"}
  - {name: d, type: ecs_task, cluster: other, task_definition: "b:2"}
rules: [{name: r, pattern: {source: [x]}, targets: [a, b, c, d]}]
`))
	var got []string
	for _, s := range d.Statement {
		if strings.HasPrefix(s.Sid, sidRunTasks) {
			got = append(got, fmt.Sprintf("%s %v %v", s.Sid, s.Resource, s.Condition["ArnEquals"]["ecs:cluster"]))
		}
	}
	want := []string{
		"RunTasksInJobs21 [arn:aws:ecs:us-east-1:*:task-definition/a:1] [arn:aws:ecs:us-east-1:*:cluster/jobs-2]",
		"RunTasksInJobs22 [arn:aws:ecs:us-east-1:*:task-definition/b:1] [arn:aws:ecs:us-east-1:*:cluster/jobs_2]",
		"RunTasksInOther [arn:aws:ecs:us-east-1:*:task-definition/a:1 arn:aws:ecs:us-east-1:*:task-definition/b:2] [arn:aws:ecs:us-east-1:*:cluster/other]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("RunTask statements:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Only targets deliveries can reach get permissions: rules' targets, and
// dead letters of reachable targets and of sources.
func TestPolicy_OnlyReachableTargets(t *testing.T) {
	d := policy(t, parse(t, `version: 1
sources:
  - {name: s, type: sqs, queue_url: "https://sqs.us-east-1.amazonaws.com/111122223333/in", envelope: sns, malformed: dead_letter, dead_letter: bad}
targets:
  - {name: used, type: sqs, queue_url: "https://sqs.us-east-1.amazonaws.com/111122223333/used", policy: p}
  - {name: dl, type: sqs, queue_url: "https://sqs.us-east-1.amazonaws.com/111122223333/dl", policy: q}
  - {name: dl2, type: sqs, queue_url: "https://sqs.us-east-1.amazonaws.com/111122223333/dl2", policy: end}
  - {name: bad, type: sqs, queue_url: "https://sqs.us-east-1.amazonaws.com/111122223333/bad", policy: end}
  - {name: idle, type: sqs, queue_url: "https://sqs.us-east-1.amazonaws.com/111122223333/idle", policy: end}
  - {name: idle-fn, type: lambda, function: "arn:aws:lambda:us-east-1:111122223333:function:idle"}
policies:
  default: {dead_letter: dl}
  p: {dead_letter: dl}
  q: {dead_letter: dl2}
  end: {}
rules: [{name: r, pattern: {source: [x]}, targets: [used]}]
`))
	want := []string{
		"arn:aws:sqs:us-east-1:111122223333:bad", "arn:aws:sqs:us-east-1:111122223333:dl",
		"arn:aws:sqs:us-east-1:111122223333:dl2", "arn:aws:sqs:us-east-1:111122223333:used",
	}
	if s := statement(d, sidSend); s == nil || !slices.Equal(s.Resource, want) {
		t.Errorf("send statement %+v, want resources %q", s, want)
	}
	if s := statement(d, sidInvoke); s != nil {
		t.Errorf("an unreachable function is granted: %+v", s)
	}
}

func TestPolicy_NoAWS(t *testing.T) {
	d := policy(t, parse(t, `version: 1
sources: [{name: s, type: http}, {name: me, type: ecs, task: self}, {name: n, type: nats, subject: a}]
targets: [{name: t, type: log}, {name: h, type: http, url: "http://127.0.0.1:1/x"}, {name: n, type: nats, subject: b}]
rules: [{name: r, pattern: {source: [x]}, targets: [t, h, n]}]
`))
	b, _ := json.Marshal(d)
	if len(d.Statement) != 0 || string(b) != `{"Version":"2012-10-17","Statement":[]}` {
		t.Errorf("policy of a config that calls no AWS API: %s", b)
	}
}

// The same config in any order of sources and targets renders the same
// document, byte for byte.
func TestPolicy_Deterministic(t *testing.T) {
	data, err := os.ReadFile("testdata/forms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, string(data))
	want, _ := json.Marshal(policy(t, cfg))
	for range 5 {
		again := parse(t, string(data))
		slices.Reverse(again.Sources)
		slices.Reverse(again.Targets)
		got, _ := json.Marshal(policy(t, again))
		if !bytes.Equal(got, want) {
			t.Fatalf("reordered config renders differently:\n%s\nwant\n%s", got, want)
		}
	}
}

func TestPolicy_UnknownKinds(t *testing.T) {
	cfg := &config.Config{
		Sources: []config.Source{{Name: "k", Type: "kafka"}},
		Targets: []config.Target{{Name: "pigeon", Type: "carrier_pigeon", Policy: "default"}},
		Rules:   []config.Rule{{Name: "r", Targets: []string{"pigeon"}}},
	}
	_, err := Policy(cfg)
	if err == nil || !strings.Contains(err.Error(), `source type "kafka": its IAM permissions are unknown`) ||
		!strings.Contains(err.Error(), `target type "carrier_pigeon": its IAM permissions are unknown`) {
		t.Errorf("err = %v", err)
	}
}

func TestPolicy_BadClusterARN(t *testing.T) {
	cfg := parse(t, `version: 1
sources: [{name: s, type: ecs, cluster: "arn:aws:ecs:us-east-1:111122223333:service/a/b"}]
targets: [{name: t, type: log}]
rules: [{name: r, pattern: {source: [x]}, targets: [t]}]
`)
	if _, err := Policy(cfg); err == nil || !strings.Contains(err.Error(), "sources[0] s: cluster:") {
		t.Errorf("err = %v", err)
	}
}

// Every document the configs render is valid IAM: strictly the grammar,
// known actions on resources of their own service, conditions IAM knows,
// within the size of a managed policy.
func TestPolicy_ValidIAM(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	// The examples' rule tests (NAME.test.yaml) are not configs.
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".test.yaml") })
	more, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, more...)
	if len(files) < 3 {
		t.Fatalf("configs: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			d := policy(t, cfg)
			if len(d.Statement) == 0 {
				return // nothing to attach; TestPolicy_NoAWS checks the document
			}
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			checkIAM(t, b)
			if n := d.Size(); n > ManagedPolicyLimit || n != len(b) {
				t.Errorf("size %d (%d bytes), limit %d", n, len(b), ManagedPolicyLimit)
			}
		})
	}
}

// A config with many resources yields a valid policy too, over the managed
// policy limit, which Size reports.
func TestPolicy_Large(t *testing.T) {
	var y strings.Builder
	y.WriteString("version: 1\nsources:\n")
	for i := range 150 {
		fmt.Fprintf(&y, "  - {name: q%d, type: sqs, queue_url: \"https://sqs.us-east-1.amazonaws.com/111122223333/queue-number-%d\"}\n", i, i)
	}
	y.WriteString("targets: [{name: t, type: log}]\nrules: [{name: r, pattern: {source: [x]}, targets: [t]}]\n")
	d := policy(t, parse(t, y.String()))
	b, _ := json.Marshal(d)
	checkIAM(t, b)
	if len(d.Statement[0].Resource) != 150 || d.Size() <= ManagedPolicyLimit {
		t.Errorf("%d resources, size %d", len(d.Statement[0].Resource), d.Size())
	}
}

// The IAM policy grammar, as strict decoding sees it.
type grammar struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    []string
		Resource  []string
		Condition map[string]map[string][]string
	}
}

// actionKeys are the actions switchyard may be granted, each with the
// condition keys it may be scoped by (the Service Authorization Reference).
var actionKeys = map[string][]string{
	"sqs:ReceiveMessage":          nil,
	"sqs:DeleteMessage":           nil,
	"sqs:ChangeMessageVisibility": nil,
	"sqs:GetQueueAttributes":      nil,
	"sqs:SendMessage":             nil,
	"lambda:InvokeFunction":       nil,
	"ecs:RunTask":                 {"ecs:cluster"},
	"ecs:TagResource":             {"ecs:CreateAction"},
	"ecs:ListTasks":               {"ecs:cluster"},
	"ecs:DescribeTasks":           {"ecs:cluster"},
	"iam:PassRole":                {"iam:PassedToService"},
	"sns:Publish":                 nil,
	"kinesis:PutRecords":          nil,
	"states:StartExecution":       nil,
	"states:StartSyncExecution":   nil,
	"states:DescribeExecution":    nil,
	"events:PutEvents":            nil,
}

var (
	operatorRE = regexp.MustCompile(`^(ForAllValues:|ForAnyValue:)?(StringEquals|StringNotEquals|StringEqualsIgnoreCase|StringNotEqualsIgnoreCase|StringLike|StringNotLike|NumericEquals|NumericNotEquals|NumericLessThan|NumericLessThanEquals|NumericGreaterThan|NumericGreaterThanEquals|DateEquals|DateNotEquals|DateLessThan|DateLessThanEquals|DateGreaterThan|DateGreaterThanEquals|Bool|BinaryEquals|IpAddress|NotIpAddress|ArnEquals|ArnLike|ArnNotEquals|ArnNotLike)(IfExists)?$|^Null$`)
	sidRE      = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	arnRE      = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f):([a-z0-9-]+):([a-z0-9-]*|\*):(\d{12}|\*|):(.+)$`)
)

func checkIAM(t *testing.T, doc []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	var g grammar
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("not the IAM grammar: %v\n%s", err, doc)
	}
	if g.Version != "2012-10-17" || len(g.Statement) == 0 {
		t.Errorf("version %q, %d statements", g.Version, len(g.Statement))
	}
	sids := map[string]bool{}
	for _, s := range g.Statement {
		if !sidRE.MatchString(s.Sid) || sids[s.Sid] {
			t.Errorf("Sid %q: not alphanumeric, or repeated", s.Sid)
		}
		sids[s.Sid] = true
		if s.Effect != "Allow" || len(s.Action) == 0 || len(s.Resource) == 0 {
			t.Errorf("%s: effect %q, %d actions, %d resources", s.Sid, s.Effect, len(s.Action), len(s.Resource))
		}
		for _, a := range s.Action {
			keys, ok := actionKeys[a]
			if !ok {
				t.Errorf("%s: unknown action %q", s.Sid, a)
				continue
			}
			service, _, _ := strings.Cut(a, ":")
			for _, r := range s.Resource {
				if r == "*" {
					continue
				}
				m := arnRE.FindStringSubmatch(r)
				switch {
				case m == nil:
					t.Errorf("%s: resource %q is not an ARN", s.Sid, r)
				case m[2] != service:
					t.Errorf("%s: resource %q is not of service %s", s.Sid, r, service)
				case (service == "iam") != (m[3] == ""):
					t.Errorf("%s: resource %q: IAM ARNs, and only they, have no region", s.Sid, r)
				}
			}
			for op, kv := range s.Condition {
				if !operatorRE.MatchString(op) {
					t.Errorf("%s: unknown condition operator %q", s.Sid, op)
				}
				for k, vs := range kv {
					if !slices.Contains(keys, k) {
						t.Errorf("%s: action %s takes no condition key %q", s.Sid, a, k)
					}
					if len(vs) == 0 {
						t.Errorf("%s: condition %s %s has no values", s.Sid, op, k)
					}
					if strings.HasPrefix(op, "Arn") {
						for _, v := range vs {
							if !arnRE.MatchString(v) {
								t.Errorf("%s: %s %s: %q is not an ARN", s.Sid, op, k, v)
							}
						}
					}
				}
			}
		}
	}
}

// A target's SQS backlog is granted what the backlog does with it (send,
// receive, delete, change visibility, read attributes), on that queue
// alone; a JetStream backlog needs nothing from IAM.
func TestPolicy_BacklogQueues(t *testing.T) {
	d := policy(t, parse(t, `version: 1
aws: {region: eu-west-1}
sources: [{name: in, type: http}]
targets:
  - {name: app, type: http, url: "http://127.0.0.1:3000/", backlog: {type: sqs, queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/app-backlog"}}
  - {name: audit, type: log, backlog: {type: jetstream}}
rules: [{name: r, pattern: {source: [x]}, targets: [app, audit]}]
`))
	s := statement(d, "UseTargetBacklogQueues")
	if s == nil {
		t.Fatalf("no backlog statement in %+v", d.Statement)
	}
	wantActions := []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"}
	if !slices.Equal(s.Action, wantActions) || !slices.Equal(s.Resource, []string{"arn:aws:sqs:eu-west-1:123456789012:app-backlog"}) {
		t.Errorf("backlog statement %+v, want %v on the backlog queue", s, wantActions)
	}
	if len(d.Statement) != 1 {
		t.Errorf("%d statements, want the backlog's only (the http and log targets need none)", len(d.Statement))
	}
}
