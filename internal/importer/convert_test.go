package importer

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/config"
)

var home = Options{Region: "us-east-1", Account: "111122223333"}

// rule is a template with one rule of pattern {source: [x]} and the given
// targets (YAML, indented as a list under Targets).
func rule(targets string) string {
	return `
Resources:
  R:
    Type: AWS::Events::Rule
    Properties:
      Name: r
      EventPattern: {source: [x]}
      Targets:
` + targets
}

func importTemplate(t *testing.T, tpl string, opt Options) (*Result, error) {
	t.Helper()
	res, err := FromCloudFormation("t.yaml", []byte(tpl), opt)
	if err == nil {
		// Whatever it wrote validates, with every variable unset.
		if _, perr := config.Parse("out.yaml", res.Config, func(string) (string, bool) { return "", false }); perr != nil {
			t.Fatalf("the config does not validate: %v\n%s", perr, res.Config)
		}
	}
	return res, err
}

// check runs an import and checks that the config has each of want (or,
// with a prefix "!", has it not) and the warnings each of warn.
func check(t *testing.T, tpl string, opt Options, want []string, warn []string) *Result {
	t.Helper()
	res, err := importTemplate(t, tpl, opt)
	if err != nil && !errors.Is(err, ErrNothing) {
		t.Fatalf("import: %v", err)
	}
	out := string(res.Config)
	for _, w := range want {
		if neg, ok := strings.CutPrefix(w, "!"); ok {
			if strings.Contains(out, neg) {
				t.Errorf("the config has %q:\n%s", neg, out)
			}
		} else if !strings.Contains(out, w) {
			t.Errorf("the config has no %q:\n%s", w, out)
		}
	}
	all := strings.Join(append(res.Warnings, res.Notes...), "\n")
	for _, w := range warn {
		if !strings.Contains(all, w) {
			t.Errorf("no warning says %q; warnings:\n%s", w, all)
		}
	}
	return res
}

func TestImport_TargetsByService(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, targets string
		opt           Options
		want, warn    []string
	}{
		{"lambda, asynchronously", `        - {Id: Fn, Arn: "arn:aws:lambda:us-east-1:111122223333:function:orders"}`, home,
			[]string{"type: lambda", "function: arn:aws:lambda:us-east-1:111122223333:function:orders", "invocation: event"}, nil},
		{"lambda alias", `        - {Id: Fn, Arn: "arn:aws:lambda:us-east-1:111122223333:function:orders:live"}`, home,
			[]string{"function: arn:aws:lambda:us-east-1:111122223333:function:orders:live"}, nil},
		{"sqs", `        - {Id: Q, Arn: "arn:aws:sqs:us-east-1:111122223333:jobs"}`, home,
			[]string{"type: sqs", "queue_url: https://sqs.us-east-1.amazonaws.com/111122223333/jobs"}, nil},
		{"sqs in China", `        - {Id: Q, Arn: "arn:aws-cn:sqs:cn-north-1:111122223333:jobs"}`, Options{Region: "cn-north-1", Account: "111122223333"},
			[]string{"queue_url: https://sqs.cn-north-1.amazonaws.com.cn/111122223333/jobs"}, nil},
		{"sqs FIFO with a message group", `        - {Id: Q, Arn: "arn:aws:sqs:us-east-1:111122223333:jobs.fifo", SqsParameters: {MessageGroupId: g1}}`, home,
			[]string{"queue_url: https://sqs.us-east-1.amazonaws.com/111122223333/jobs.fifo", "message_group_id: g1"}, nil},
		{"sqs FIFO with a message group path", `        - {Id: Q, Arn: "arn:aws:sqs:us-east-1:111122223333:jobs.fifo", SqsParameters: {MessageGroupId: $.detail.customer}}`, home,
			[]string{`message_group_id: "<$.detail.customer>"`}, nil},
		{"sns", `        - {Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:alerts"}`, home,
			[]string{"type: sns", "topic_arn: arn:aws:sns:us-east-1:111122223333:alerts"}, nil},
		{"kinesis, keyed by the event id", `        - {Id: K, Arn: "arn:aws:kinesis:us-east-1:111122223333:stream/clicks"}`, home,
			[]string{"type: kinesis", "stream_arn: arn:aws:kinesis:us-east-1:111122223333:stream/clicks", `partition_key: "<$.id>"`}, nil},
		{"kinesis with a key path", `        - {Id: K, Arn: "arn:aws:kinesis:us-east-1:111122223333:stream/clicks", KinesisParameters: {PartitionKeyPath: $.detail.user}}`, home,
			[]string{`partition_key: "<$.detail.user>"`}, nil},
		{"kinesis with a key that is no path", `        - {Id: K, Arn: "arn:aws:kinesis:us-east-1:111122223333:stream/clicks", KinesisParameters: {PartitionKeyPath: user}}`, home,
			[]string{"!type: kinesis"}, []string{`its PartitionKeyPath "user" is not a JSON path`}},
		{"step functions", `        - {Id: S, Arn: "arn:aws:states:us-east-1:111122223333:stateMachine:flow"}`, home,
			[]string{"type: stepfunctions", "state_machine: arn:aws:states:us-east-1:111122223333:stateMachine:flow"}, nil},
		{"a bus of the account, by name", `        - {Id: B, Arn: "arn:aws:events:us-east-1:111122223333:event-bus/orders"}`, home,
			[]string{"type: eventbridge", "bus: orders"}, nil},
		{"a bus of another account, by ARN", `        - {Id: B, Arn: "arn:aws:events:us-east-1:444455556666:event-bus/partner"}`, home,
			[]string{"bus: arn:aws:events:us-east-1:444455556666:event-bus/partner", "its resource policy must let switchyard's role put events"}, nil},
		{"another account's queue with no role", `        - {Id: Q, Arn: "arn:aws:sqs:us-east-1:444455556666:jobs"}`, home,
			[]string{"queue_url: https://sqs.us-east-1.amazonaws.com/444455556666/jobs", "its resource policy must let switchyard's role"}, nil},
		{"another account's queue through a role", `        - {Id: Q, Arn: "arn:aws:sqs:us-east-1:444455556666:jobs", RoleArn: "arn:aws:iam::111122223333:role/x"}`, home,
			[]string{"!444455556666/jobs"}, []string{"which EventBridge reaches with the role arn:aws:iam::111122223333:role/x: switchyard calls AWS with its own credentials and assumes no role"}},
		{"another region", `        - {Id: T, Arn: "arn:aws:sns:eu-west-1:111122223333:alerts"}`, home,
			[]string{"!arn:aws:sns:eu-west-1"}, []string{"it is in eu-west-1, and switchyard calls AWS in one region, us-east-1"}},
		{"an API destination", `        - {Id: A, Arn: "arn:aws:events:us-east-1:111122223333:api-destination/crm/0a1b", HttpParameters: {HeaderParameters: {a: b}}}`, home,
			nil, []string{"it is an API destination"}},
		{"CloudWatch Logs", `        - {Id: L, Arn: "arn:aws:logs:us-east-1:111122223333:log-group:/events"}`, home,
			nil, []string{"switchyard has no CloudWatch Logs target (a log target writes deliveries to standard output"}},
		{"a service with no target", `        - {Id: B, Arn: "arn:aws:codebuild:us-east-1:111122223333:project/build"}`, home,
			nil, []string{"switchyard has no CodeBuild target"}},
		{"ECS without EcsParameters", `        - {Id: E, Arn: "arn:aws:ecs:us-east-1:111122223333:cluster/jobs"}`, home,
			nil, []string{"an ECS target needs EcsParameters"}},
		{"not an ARN", `        - {Id: X, Arn: "orders"}`, home,
			nil, []string{`its Arn "orders" is not an ARN`}},
		{"an ARN another stack exports", `        - {Id: X, Arn: !ImportValue shared-topic-arn}`, home,
			nil, []string{"target X: its Arn is the value another stack exports as shared-topic-arn, which the template does not tell, and nor the service it is of (import again with --param shared-topic-arn=VALUE)"}},
		{"an ARN another stack exports, given", `        - {Id: X, Arn: !ImportValue shared-topic-arn}`,
			Options{Region: "us-east-1", Account: "111122223333", Params: map[string]string{"shared-topic-arn": "arn:aws:sns:us-east-1:111122223333:shared"}},
			[]string{"topic_arn: arn:aws:sns:us-east-1:111122223333:shared"}, nil},
		{"a function name switchyard refuses", `        - {Id: Fn, Arn: "arn:aws:lambda:us-east-1:111122223333:function:bad name"}`, home,
			nil, []string{"target Fn: switchyard refuses it: targets[0].function:"}},
		{"no Id", `        - {Arn: "arn:aws:sns:us-east-1:111122223333:alerts"}`, home,
			nil, []string{"target at t.yaml:9: the target has no Id"}},
		{"a role of the account is not needed", `        - {Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:alerts", RoleArn: "arn:aws:iam::111122223333:role/x"}`, home,
			[]string{"type: sns", "EventBridge used the role arn:aws:iam::111122223333:role/x; switchyard uses its own credentials"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A second, plain target keeps the rule imported when the
			// first is not.
			targets := tt.targets + "\n        - {Id: Keep, Arn: \"arn:aws:sns:us-east-1:111122223333:keep\"}\n"
			check(t, rule(targets), tt.opt, tt.want, tt.warn)
		})
	}
}

func TestImport_Inputs(t *testing.T) {
	t.Parallel()
	const sns = `Arn: "arn:aws:sns:us-east-1:111122223333:t"`
	tests := []struct {
		name, target string
		want, warn   []string
	}{
		{"constant JSON is a template without placeholders", `{Id: T, ` + sns + `, Input: '{"kind": "nightly"}'}`,
			[]string{`template: '{"kind": "nightly"}'`}, nil},
		{"a constant with <x> in it is written with the Input key", `{Id: T, ` + sns + `, Input: '{"html": "<b>"}'}`,
			[]string{`Input: '{"html": "<b>"}'`, "!template:"}, nil},
		{"a constant that is not JSON", `{Id: T, ` + sns + `, Input: 'nightly'}`,
			nil, []string{`its Input is not JSON: "nightly"`}},
		{"InputPath", `{Id: T, ` + sns + `, InputPath: $.detail.order}`,
			[]string{"value: $.detail.order", `template: "<value>"`}, nil},
		{"InputPath $ is the whole event", `{Id: T, ` + sns + `, InputPath: $}`,
			[]string{"!input:"}, nil},
		{"InputTransformer", `{Id: T, ` + sns + `, InputTransformer: {InputPathsMap: {a: $.detail.a}, InputTemplate: '{"a": <a>}'}}`,
			[]string{"a: $.detail.a", `template: '{"a": <a>}'`}, nil},
		{"a multi-line template", `{Id: T, ` + sns + `, InputTransformer: {InputPathsMap: {a: $.detail.a}, InputTemplate: "{\n  \"a\": <a>\n}\n"}}`,
			[]string{"template: |\n        {\n          \"a\": <a>\n        }\n"}, nil},
		{"two inputs", `{Id: T, ` + sns + `, Input: '{}', InputPath: $.detail}`,
			nil, []string{"more than one of Input, InputPath and InputTransformer"}},
		{"a transformer without template", `{Id: T, ` + sns + `, InputTransformer: {InputPathsMap: {a: $.a}}}`,
			nil, []string{"InputTransformer has no InputTemplate"}},
		{"a template switchyard refuses", `{Id: T, ` + sns + `, InputTransformer: {InputPathsMap: {a: $.a}, InputTemplate: '{"a": <b>}'}}`,
			nil, []string{"switchyard refuses it: rules[0].input.template: undefined placeholder <b>"}},
		{"${ in a template is kept", `{Id: T, ` + sns + `, InputTransformer: {InputPathsMap: {a: $.a}, InputTemplate: '{"a": "${<a>}"}'}}`,
			[]string{`template: '{"a": "$${<a>}"}'`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check(t, rule("        - "+tt.target+"\n        - {Id: Keep, Arn: \"arn:aws:sqs:us-east-1:111122223333:keep\"}\n"), home, tt.want, tt.warn)
		})
	}
}

// EventBridge's <aws.events.rule-name> and <aws.events.rule-arn> are its
// rule's: switchyard's would differ (a split rule's name, switchyard:rule/),
// so the import writes EventBridge's, as each position needs.
func TestImport_PredefinedPlaceholders(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, template, want string }{
		{"outside quotes", `{"rule": <aws.events.rule-name>}`, `template: '{"rule": "r"}'`},
		{"inside quotes", `{"rule": "rule <aws.events.rule-name>!"}`, `template: '{"rule": "rule r!"}'`},
		{"a text template", `rule <aws.events.rule-name> fired`, `template: rule r fired`},
		{"the ARN", `{"arn": <aws.events.rule-arn>}`, `template: '{"arn": "arn:aws:events:us-east-1:111122223333:rule/r"}'`},
		{"others stay", `{"t": <aws.events.event.ingestion-time>, "e": <aws.events.event>}`, `template: '{"t": <aws.events.event.ingestion-time>, "e": <aws.events.event>}'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tpl := rule(`        - Id: T
          Arn: "arn:aws:sns:us-east-1:111122223333:t"
          InputTransformer: {InputTemplate: '` + tt.template + `'}
`)
			check(t, tpl, home, []string{tt.want}, nil)
		})
	}
	// A name CloudFormation generates is not known: the placeholder stays,
	// and a comment says what it renders.
	tpl := `
Resources:
  Gen:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [x]}
      Targets:
        - {Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:t", InputTransformer: {InputTemplate: '{"r": <aws.events.rule-name>}'}}
`
	check(t, tpl, home, []string{`template: '{"r": <aws.events.rule-name>}'`, "<aws.events.rule-name> renders switchyard's rule (Gen)"},
		[]string{"CloudFormation generates its name; it is named Gen in switchyard"})
	// So is a name made of what the template does not tell.
	check(t, strings.Replace(tpl, "    Properties:\n", "    Properties:\n      Name: !Sub \"${AWS::StackName}-gen\"\n", 1), home,
		[]string{"- name: Gen\n", `template: '{"r": <aws.events.rule-name>}'`}, nil)
}

func TestImport_Policies(t *testing.T) {
	t.Parallel()
	tpl := rule(`        - {Id: A, Arn: "arn:aws:sns:us-east-1:111122223333:a"}
        - {Id: B, Arn: "arn:aws:sns:us-east-1:111122223333:b", RetryPolicy: {MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 5400},
           DeadLetterConfig: {Arn: "arn:aws:sqs:us-east-1:111122223333:dlq"}}
        - {Id: C, Arn: "arn:aws:sns:us-east-1:111122223333:c", RetryPolicy: {MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 5400},
           DeadLetterConfig: {Arn: "arn:aws:sqs:us-east-1:111122223333:dlq"}}
        - {Id: D, Arn: "arn:aws:sns:us-east-1:111122223333:d", RetryPolicy: {MaximumRetryAttempts: 500, MaximumEventAgeInSeconds: 10}}
        - {Id: E, Arn: "arn:aws:sns:us-east-1:111122223333:e", DeadLetterConfig: {Arn: "arn:aws:sns:us-east-1:111122223333:not-a-queue"}}
        - {Id: F, Arn: "arn:aws:sns:us-east-1:111122223333:f", DeadLetterConfig: {Arn: "arn:aws:sqs:eu-west-1:111122223333:far"}}
`)
	res := check(t, tpl, home, []string{
		"  default:\n    retry: {attempts: 186, max_age: 24h}",
		"  retry-4x-1h30m-dlq-dlq:\n    retry: {attempts: 4, max_age: 1h30m}\n    dead_letter: dlq",
		"  retry-186x-1m:\n    retry: {attempts: 186, max_age: 1m}",
		"  - name: dlq\n    type: sqs\n    queue_url: https://sqs.us-east-1.amazonaws.com/111122223333/dlq",
		"Clamped: MaximumRetryAttempts 500 is outside EventBridge's range of 0 to 185: 185",
	}, []string{
		"target D: MaximumRetryAttempts 500 is outside EventBridge's range of 0 to 185: 185",
		"target D: MaximumEventAgeInSeconds 10 is outside EventBridge's range of 60 to 86400: 60",
		"target E: Not imported: its dead-letter queue arn:aws:sns:us-east-1:111122223333:not-a-queue, which is not an SQS queue's ARN",
		"target F: Not imported: its dead-letter queue arn:aws:sqs:eu-west-1:111122223333:far, in eu-west-1",
	})
	out := string(res.Config)
	if n := strings.Count(out, "retry-4x-1h30m-dlq-dlq:"); n != 1 {
		t.Errorf("B and C share one policy: %d written", n)
	}
	if n := strings.Count(out, "- name: dlq\n"); n != 1 {
		t.Errorf("one dead-letter target: %d written", n)
	}
	if strings.Index(out, "- name: dlq\n") > strings.Index(out, "- name: B\n") {
		t.Errorf("the dead-letter target comes before the first target that uses it:\n%s", out)
	}
}

func TestImport_Rules(t *testing.T) {
	t.Parallel()
	target := `Targets: [{Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:t"}]`
	tests := []struct {
		name, props string
		want, warn  []string
	}{
		{"disabled", `{Name: off, State: DISABLED, EventPattern: {source: [x]}, ` + target + `}`,
			[]string{"Not imported: EventBridge rule off"}, []string{"not imported: rule off (R, t.yaml:3): it is disabled"}},
		{"a schedule", `{Name: cron, ScheduleExpression: "rate(5 minutes)", ` + target + `}`,
			[]string{"it runs on a schedule, rate(5 minutes)"}, []string{"switchyard has no schedules"}},
		{"a schedule and a pattern", `{Name: both, ScheduleExpression: "rate(5 minutes)", EventPattern: {source: [y]}, ` + target + `}`,
			[]string{"- name: both"}, []string{"its schedule, rate(5 minutes), is not imported"}},
		{"no pattern", `{Name: none, ` + target + `}`,
			nil, []string{"it has no EventPattern"}},
		{"no targets", `{Name: idle, EventPattern: {source: [y]}}`,
			[]string{"Not imported: EventBridge rule idle"}, []string{"it has no targets"}},
		{"a pattern string that is not JSON", `{Name: bad, EventPattern: '{"source": ["y"]', ` + target + `}`,
			nil, []string{"EventPattern is not JSON: line 1: unexpected end of JSON"}},
		{"a pattern that is a list", `{Name: bad, EventPattern: '["y"]', ` + target + `}`,
			nil, []string{"EventPattern is an array, not a JSON object"}},
		{"a pattern with a key twice", `{Name: bad, EventPattern: '{"source": ["a"], "source": ["b"]}', ` + target + `}`,
			nil, []string{`key "source" given twice`}},
		{"a pattern switchyard refuses", `{Name: bad, EventPattern: {detail: {n: [{numeric: [">"]}]}}, ` + target + `}`,
			[]string{"Not imported: EventBridge rule bad"}, []string{`switchyard refuses it: rules[0].pattern.detail.n[0]: numeric: ">" must be followed by a number`}},
		{"a number for an account, which never matches", `{Name: bad, EventPattern: {account: [111122223333]}, ` + target + `}`,
			nil, []string{"switchyard refuses it: rules[0].pattern.account[0]"}},
		{"a rule made by a service", `{Name: managed, ManagedBy: "sfn.amazonaws.com", EventPattern: {source: [y]}, ` + target + `}`,
			nil, []string{"it is managed by sfn.amazonaws.com"}},
		{"${ in a pattern is kept", `{Name: dollars, EventPattern: {detail: {v: ["a${b}"]}}, ` + target + `}`,
			[]string{`v: ["a$${b}"]`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tpl := "\nResources:\n  R:\n    Type: AWS::Events::Rule\n    Properties: " + tt.props + "\n" +
				"  Keep:\n    Type: AWS::Events::Rule\n    Properties: {Name: keep, EventPattern: {source: [k]}, " + target + "}\n"
			check(t, tpl, home, tt.want, tt.warn)
		})
	}
}

// A config needs a rule: an import of nothing is an error of its own, not
// a config that does not validate.
func TestImport_NothingToImport(t *testing.T) {
	t.Parallel()
	tpl := `
Resources:
  Sched: {Type: "AWS::Events::Rule", Properties: {ScheduleExpression: "rate(1 hour)", Targets: [{Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:t"}]}}
  Other: {Type: "AWS::Events::Rule", Properties: {EventBusName: orders, EventPattern: {source: [x]}, Targets: [{Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:t"}]}}
`
	res, err := FromCloudFormation("t.yaml", []byte(tpl), home)
	if !errors.Is(err, ErrNothing) || IsInputError(err) {
		t.Fatalf("error %v, want ErrNothing", err)
	}
	all := strings.Join(res.Warnings, "\n")
	for _, w := range []string{"runs on a schedule", `is on the event bus "orders", not "default" (import it with --bus orders)`} {
		if !strings.Contains(all, w) {
			t.Errorf("no warning says %q:\n%s", w, all)
		}
	}
	// The other bus's rule is imported with --bus, by name or ARN.
	for _, bus := range []string{"orders", "arn:aws:events:us-east-1:111122223333:event-bus/orders"} {
		opt := home
		opt.Bus = bus
		check(t, tpl, opt, []string{"- name: Other", "switchyard-orders"}, []string{`rule Sched (t.yaml:3): it is on the event bus "default", not "orders"`})
	}
}

// Targets with different inputs make a rule each; names stay unique and
// within switchyard's alphabet and length.
func TestImport_NamesAndSplits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 64)
	tpl := `
Resources:
  One:
    Type: AWS::Events::Rule
    Properties:
      Name: one
      EventPattern: {source: [x]}
      Targets:
        - {Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:a"}
        - {Id: U, Arn: "arn:aws:sns:us-east-1:111122223333:b", Input: '{"n": 1}'}
        - {Id: V, Arn: "arn:aws:sns:us-east-1:111122223333:c", Input: '{"n": 1}'}
  Two:
    Type: AWS::Events::Rule
    Properties:
      Name: two
      EventPattern: {source: [y]}
      Targets:
        - {Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:a"}
        - {Id: ` + long + `, Arn: "arn:aws:sns:us-east-1:111122223333:a"}
  Three:
    Type: AWS::Events::Rule
    Properties:
      Name: two.T
      EventPattern: {source: [z]}
      Targets:
        - {Id: ` + long + `, Arn: "arn:aws:sns:us-east-1:111122223333:a"}
`
	res := check(t, tpl, home, []string{
		"- name: one\n", "targets: [T]", "- name: one.U\n", "targets: [U, V]",
		"split in 2, one, one.U.",
		"- name: two.T\n", "- name: " + long + "\n",
	}, nil)
	c, err := config.Parse("out.yaml", res.Config, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range c.Targets {
		names = append(names, tg.Name)
		if len(tg.Name) > 64 {
			t.Errorf("target name %q is over 64", tg.Name)
		}
	}
	if !slices.Contains(names, "two.T") || !slices.Contains(names, long) || !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "two.T."+long[:40]) }) {
		t.Errorf("targets %q: want two.T, the long Id, and two.T.xxx... (the rule's name before a taken Id)", names)
	}
	var rules []string
	for _, r := range c.Rules {
		rules = append(rules, r.Name)
	}
	if want := []string{"one", "one.U", "two", "two.T"}; !slices.Equal(rules, want) {
		t.Errorf("rules %q, want %q", rules, want)
	}
}

func TestConfigName(t *testing.T) {
	t.Parallel()
	if got := configName("a b/c"); got != "a-b-c" {
		t.Errorf("configName = %q", got)
	}
	long := strings.Repeat("y", 70)
	a, b := configName(long+"1"), configName(long+"2")
	if len(a) != 64 || a == b {
		t.Errorf("long names %q and %q: want 64 characters, apart", a, b)
	}
	n := namer{}
	if got := []string{n.name("a"), n.name("a"), n.name("a", "b"), n.name("b")}; !slices.Equal(got, []string{"a", "a-2", "b", "b-2"}) {
		t.Errorf("names %q", got)
	}
}

// The import validates the whole config it wrote: one that does not
// validate is an InvalidError with the problems (here made by hand, as
// every rule and target is checked before it is written).
func TestImport_InvalidConfigIsAnError(t *testing.T) {
	t.Parallel()
	c := newConverter("t.yaml", home, lit("us-east-1"), lit("111122223333"))
	c.targets.add(yMapNode().set("name", yStr("t")).set("type", yStr("log")))
	c.rules.add(yMapNode().set("name", yStr("r")).set("pattern", yMapNode().set("source", yStrs([]string{"x"}))).set("targets", yStrs([]string{"nope"})))
	c.imported = 1
	_, err := c.convert(nil)
	var inv *InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 || !strings.Contains(inv.Problems[0], `rules[0].targets[0]: unknown target "nope"`) || IsInputError(err) {
		t.Fatalf("error %v, want an InvalidError naming the unknown target", err)
	}
}
