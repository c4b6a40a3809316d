package importer

import (
	"strings"
	"testing"
)

// cfnHeader is a template's sections before its rules: parameters of each
// kind, a condition, a mapping, and resources named and unnamed.
const cfnHeader = `
Parameters:
  Env: {Type: String, Default: prod, AllowedValues: [prod, staging]}
  TopicName: {Type: String}
  Tier: {Type: String, AllowedValues: [gold, silver]}
  Subnets: {Type: "List<AWS::EC2::Subnet::Id>", Default: "subnet-1,subnet-2"}
  NoSubnets: {Type: CommaDelimitedList}
  Secret: {Type: "AWS::SSM::Parameter::Value<String>", Default: /orders/topic}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsStaging: !Not [{Condition: IsProd}]
  Unknown: !Equals [!Ref TopicName, x]
  Both: !And [!Condition IsProd, !Equals [a, a]]
  Either: !Or [!Condition IsStaging, !Equals [a, b]]
Mappings:
  Sizes: {prod: {Count: 3}, staging: {Count: 1}}
Resources:
  NamedFn: {Type: "AWS::Lambda::Function", Properties: {FunctionName: orders}}
  UnnamedFn: {Type: "AWS::Lambda::Function", Properties: {Runtime: x}}
  Queue: {Type: "AWS::SQS::Queue", Properties: {QueueName: jobs}}
  FifoQueue: {Type: "AWS::SQS::Queue", Properties: {FifoQueue: true}}
  Topic: {Type: "AWS::SNS::Topic", Properties: {TopicName: alerts}}
  Machine: {Type: "AWS::StepFunctions::StateMachine", Properties: {StateMachineName: flow}}
  TaskDef: {Type: "AWS::ECS::TaskDefinition", Properties: {Family: invoice}}
  Alias: {Type: "AWS::Lambda::Alias", Properties: {FunctionName: !Ref NamedFn, Name: live}}
  Role: {Type: "AWS::IAM::Role", Properties: {RoleName: events, Path: /service/}}
  Thing: {Type: "AWS::Custom::Thing"}
`

// evalArn imports a template whose one rule's target has Arn expr, and
// returns the target's ARN as the config writes it, or its problem.
func evalArn(t *testing.T, expr string, opt Options) (string, string) {
	t.Helper()
	tpl := cfnHeader + `
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [x]}
      Targets:
        - Id: T
          Arn: ` + expr + "\n"
	tm, err := parseTemplate("t.yaml", []byte(tpl), opt)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	rules := tm.eventRules()
	if len(rules) != 1 {
		t.Fatalf("%d rules", len(rules))
	}
	r := rules[0]
	if r.Problem != "" {
		return "", r.Problem
	}
	if len(r.Targets) != 1 {
		t.Fatalf("%s: %d targets", expr, len(r.Targets))
	}
	return r.Targets[0].ARN.config(), r.Targets[0].Problem
}

func TestCloudFormation_Intrinsics(t *testing.T) {
	t.Parallel()
	known := Options{Region: "eu-west-1", Account: "111122223333"}
	tests := []struct {
		name, expr string
		opt        Options
		want       string // the ARN as the config writes it
		problem    string // or a part of the target's problem
	}{
		{"literal", "arn:aws:sns:eu-west-1:111122223333:t", known, "arn:aws:sns:eu-west-1:111122223333:t", ""},
		{"GetAtt of a named function", "!GetAtt NamedFn.Arn", known, "arn:aws:lambda:eu-west-1:111122223333:function:orders", ""},
		{"GetAtt long form", `{"Fn::GetAtt": [NamedFn, Arn]}`, known, "arn:aws:lambda:eu-west-1:111122223333:function:orders", ""},
		{"GetAtt of a generated name", "!GetAtt UnnamedFn.Arn", known, "${UNNAMEDFN_ARN:-arn:aws:lambda:eu-west-1:111122223333:function:UnnamedFn}", ""},
		{"GetAtt without region and account", "!GetAtt NamedFn.Arn", Options{},
			"arn:aws:lambda:${AWS_REGION:-us-east-1}:${AWS_ACCOUNT_ID:-123456789012}:function:orders", ""},
		{"partition of a China region", "!GetAtt NamedFn.Arn", Options{Region: "cn-north-1", Account: "111122223333"},
			"arn:aws-cn:lambda:cn-north-1:111122223333:function:orders", ""},
		{"GetAtt of a queue", "!GetAtt Queue.Arn", known, "arn:aws:sqs:eu-west-1:111122223333:jobs", ""},
		{"GetAtt of an unnamed FIFO queue", "!GetAtt FifoQueue.Arn", known, "${FIFOQUEUE_ARN:-arn:aws:sqs:eu-west-1:111122223333:FifoQueue.fifo}", ""},
		{"Ref of a queue is its URL", "!Ref Queue", known, "https://sqs.eu-west-1.amazonaws.com/111122223333/jobs", ""},
		{"Ref of a topic is its ARN", "!Ref Topic", known, "arn:aws:sns:eu-west-1:111122223333:alerts", ""},
		{"Ref of a state machine", "!Ref Machine", known, "arn:aws:states:eu-west-1:111122223333:stateMachine:flow", ""},
		{"Ref of a task definition", "!Ref TaskDef", known, "${TASKDEF_ARN:-invoice}", ""},
		{"Ref of a Lambda alias", "!Ref Alias", known, "arn:aws:lambda:eu-west-1:111122223333:function:orders:live", ""},
		{"GetAtt of a role with a path", "!GetAtt Role.Arn", known, "arn:aws:iam::111122223333:role/service/events", ""},
		{"Ref of a resource the import does not know", "!Ref Thing", known, "${THING:-Thing}", ""},
		{"Ref of a parameter with a default", "!Ref Env", known, "prod", ""},
		{"Ref of a parameter given by --param", "!Ref TopicName", Options{Params: map[string]string{"TopicName": "given"}}, "given", ""},
		{"Ref of a parameter without default", "!Ref TopicName", known, "${TOPICNAME:-TopicName}", ""},
		{"a parameter without default takes its first allowed value as placeholder", "!Ref Tier", known, "${TIER:-gold}", ""},
		{"an SSM parameter is known only at deployment", "!Ref Secret", known, "${SECRET:-Secret}", ""},
		{"Sub with pseudo parameters", `!Sub "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${TopicName}"`, known,
			"arn:aws:sns:eu-west-1:111122223333:${TOPICNAME:-TopicName}", ""},
		{"Sub with GetAtt and a literal", `!Sub "${NamedFn.Arn}:${!Literal}"`, known, "arn:aws:lambda:eu-west-1:111122223333:function:orders:$${Literal}", ""},
		{"Sub with variables", `!Sub ["arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:${Q}", {Q: !ImportValue shared-queue}]`, known,
			"arn:aws:sqs:eu-west-1:111122223333:${SHARED_QUEUE:-shared-queue}", ""},
		{"ImportValue given by --param", "!ImportValue shared-arn", Options{Params: map[string]string{"shared-arn": "arn:aws:sns:us-east-1:1:x"}}, "arn:aws:sns:us-east-1:1:x", ""},
		{"Sub of the stack name", `!Sub "${AWS::StackName}-x"`, known, "${STACK_NAME:-stack}-x", ""},
		{"Join", `!Join [":", [arn, aws, sns, !Ref AWS::Region, "111122223333", t]]`, known, "arn:aws:sns:eu-west-1:111122223333:t", ""},
		{"Select from a list parameter", "!Select [1, !Ref Subnets]", known, "subnet-2", ""},
		{"Select from Split", `!Select [2, !Split ["/", "a/b/c"]]`, known, "c", ""},
		{"If, true", "!If [IsProd, a, b]", known, "a", ""},
		{"If, false", "!If [IsStaging, a, b]", known, "b", ""},
		{"If of And", "!If [Both, a, b]", known, "a", ""},
		{"If of Or", "!If [Either, a, b]", known, "b", ""},
		{"If of an unknown condition", "!If [Unknown, a, b]", known, "", "the condition depends on the value of parameter TopicName"},
		{"FindInMap", "!Join [\"\", [n, !FindInMap [Sizes, !Ref Env, Count]]]", known, "n3", ""},
		{"FindInMap of a missing key", "!FindInMap [Sizes, dev, Count]", known, "", "Mappings has no Sizes.dev.Count"},
		{"Base64", "!Base64 abc", known, "YWJj", ""},
		{"ToJsonString", "!ToJsonString {a: [1, !Ref Env]}", known, `{"a":[1,"prod"]}`, ""},
		{"GetAZs cannot be resolved", "!Select [0, !GetAZs '']", known, "", "Fn::GetAZs depends on the account and region"},
		{"an unknown short tag", "!Frobnicate x", known, "", "unknown intrinsic function !Frobnicate"},
		{"an unknown long form", `{"Fn::Frobnicate": x}`, known, "", "unknown intrinsic function !Frobnicate"},
		{"a condition function out of place", "!Equals [a, b]", known, "", "Fn::Equals is a condition function"},
		{"Ref of nothing", "!Ref Nothing", known, "", "Ref Nothing: no such parameter or resource"},
		{"GetAtt of nothing", "!GetAtt Nothing.Arn", known, "", "Fn::GetAtt Nothing.Arn: no such resource"},
		{"GetAtt without an attribute", "!GetAtt NamedFn", known, "", "want Resource.Attribute"},
		{"a list parameter without default", "!Select [0, !Ref NoSubnets]", known, "", "parameter NoSubnets (a list) has no default"},
		{"Select out of range", "!Select [5, !Ref Subnets]", known, "", "index 5 is outside the list of 2"},
		{"StackId is not known", "!Ref AWS::StackId", known, "", "AWS::StackId is known only to a deployed stack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, problem := evalArn(t, tt.expr, tt.opt)
			if tt.problem != "" {
				if !strings.Contains(problem, tt.problem) {
					t.Errorf("%s: problem %q, want one saying %q (ARN %q)", tt.expr, problem, tt.problem, got)
				}
				return
			}
			if problem != "" || got != tt.want {
				t.Errorf("%s:\n got %q (problem %q)\nwant %q", tt.expr, got, problem, tt.want)
			}
		})
	}
}

// An environment variable made for one value is the same wherever the
// value is used, and its description says what to set it to.
func TestCloudFormation_OneVariablePerValue(t *testing.T) {
	t.Parallel()
	tm, err := parseTemplate("t.yaml", []byte(cfnHeader+`
  A:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [x]}
      Targets:
        - {Id: T1, Arn: !GetAtt UnnamedFn.Arn}
        - {Id: T2, Arn: !GetAtt UnnamedFn.Arn}
`), Options{Region: "eu-west-1", Account: "111122223333"})
	if err != nil {
		t.Fatal(err)
	}
	r := tm.eventRules()[0]
	a, b := r.Targets[0].ARN.refs(), r.Targets[1].ARN.refs()
	if len(a) != 1 || len(b) != 1 || a[0] != b[0] {
		t.Fatalf("refs %v and %v, want one shared", a, b)
	}
	if !strings.Contains(a[0].What, "UnnamedFn") || !strings.Contains(a[0].What, "generates") {
		t.Errorf("What = %q", a[0].What)
	}
}

// A rule's condition decides whether CloudFormation makes it.
func TestCloudFormation_RuleConditions(t *testing.T) {
	t.Parallel()
	tm, err := parseTemplate("t.yaml", []byte(cfnHeader+`
  InProd:
    Type: AWS::Events::Rule
    Condition: IsProd
    Properties: {EventPattern: {source: [x]}, Targets: [{Id: T, Arn: "arn:aws:sns:eu-west-1:111122223333:t"}]}
  InStaging:
    Type: AWS::Events::Rule
    Condition: IsStaging
    Properties: {EventPattern: {source: [x]}, Targets: [{Id: T, Arn: "arn:aws:sns:eu-west-1:111122223333:t"}]}
  Unsure:
    Type: AWS::Events::Rule
    Condition: Unknown
    Properties: {EventPattern: {source: [x]}, Targets: [{Id: T, Arn: "arn:aws:sns:eu-west-1:111122223333:t"}]}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rules := tm.eventRules()
	if rules[0].Problem != "" {
		t.Errorf("InProd: %s", rules[0].Problem)
	}
	if !strings.Contains(rules[1].Problem, "condition IsStaging is false") {
		t.Errorf("InStaging: problem %q", rules[1].Problem)
	}
	if rules[2].Problem != "" || len(tm.notes) != 1 || !strings.Contains(tm.notes[0], "condition Unknown") {
		t.Errorf("Unsure: problem %q, notes %q", rules[2].Problem, tm.notes)
	}
}

// A template that cannot be read is an error naming where and why; it
// makes the input unreadable (exit 2).
func TestCloudFormation_Unreadable(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, tpl, want string }{
		{"empty", "", "the file is empty"},
		{"not YAML", "Resources: [a, b\n", "not YAML or JSON"},
		{"not JSON", `{"Resources": {"A": }`, "not YAML or JSON"},
		{"two documents", "Resources: {}\n---\nResources: {}\n", "one YAML document"},
		{"a list", "- a\n", "not a CloudFormation template"},
		{"no Resources", "Parameters: {}\n", "it has no Resources"},
		{"an alias", "Resources:\n  A: &x {Type: AWS::SNS::Topic}\n  B: *x\n", "YAML alias"},
		{"a key twice", "Resources:\n  A: {Type: AWS::SNS::Topic}\n  A: {Type: AWS::SNS::Topic}\n", `line 3: key "A" given twice`},
		{"a resource without Type", "Resources:\n  A: {Properties: {}}\n", "resource A has no Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := FromCloudFormation("t.yaml", []byte(tt.tpl), Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !IsInputError(err) {
				t.Errorf("error %v, want an input error saying %q", err, tt.want)
			}
		})
	}
}

// JSON templates are read as YAML templates are, long-form intrinsics
// included.
func TestCloudFormation_JSON(t *testing.T) {
	t.Parallel()
	tpl := `{
  "Parameters": {"Topic": {"Type": "String", "Default": "alerts"}},
  "Resources": {
    "R": {
      "Type": "AWS::Events::Rule",
      "Properties": {
        "Name": "r",
        "EventPattern": {"source": ["x"], "detail": {"n": [{"numeric": [">", 1e3]}]}},
        "Targets": [{"Id": "T", "Arn": {"Fn::Sub": "arn:aws:sns:us-east-1:111122223333:${Topic}"}}]
      }
    }
  }
}`
	res, err := FromCloudFormation("t.json", []byte(tpl), Options{Region: "us-east-1", Account: "111122223333"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"topic_arn: arn:aws:sns:us-east-1:111122223333:alerts", `n: [{numeric: [">", 1e3]}]`} {
		if !strings.Contains(string(res.Config), want) {
			t.Errorf("the config has no %q:\n%s", want, res.Config)
		}
	}
}
