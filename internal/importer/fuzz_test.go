package importer

import (
	"errors"
	"os"
	"testing"
)

// Whatever a template holds, the import either says why it cannot read
// it, or imports nothing, or writes a config that validates: never one
// that does not (an InvalidError), never a panic.
func FuzzCloudFormation(f *testing.F) {
	if data, err := os.ReadFile("../../cmd/switchyard/testdata/import/eventbridge.yaml"); err == nil {
		f.Add(string(data))
	}
	for _, s := range []string{
		rule(`        - {Id: T, Arn: "arn:aws:sns:us-east-1:111122223333:t", InputTransformer: {InputPathsMap: {a: $.a}, InputTemplate: '{"a": <a>}'}}` + "\n"),
		rule(`        - {Id: T, Arn: !Sub "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:q", RetryPolicy: {MaximumRetryAttempts: 3}}` + "\n"),
		ecsRule(`{TaskDefinitionArn: job, NetworkConfiguration: {AwsVpcConfiguration: {Subnets: [s]}}}`,
			`          Input: '{"containerOverrides": [{"name": "app", "command": ["x"]}]}'`+"\n"),
		cfnHeader + "  R: {Type: AWS::Events::Rule, Properties: {EventPattern: '{\"a\": [1]}', Targets: [{Id: T, Arn: !GetAtt UnnamedFn.Arn}]}}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tpl string) {
		for _, opt := range []Options{{}, home} {
			_, err := FromCloudFormation("f.yaml", []byte(tpl), opt)
			var inv *InvalidError
			if errors.As(err, &inv) {
				t.Fatalf("%v\n%s", err, inv.Config)
			}
		}
	})
}

// The same of the AWS CLI's JSON.
func FuzzAWSCLI(f *testing.F) {
	f.Add(cliRules, cliTargets)
	f.Add(`{"Rules": [{"Name": "orders", "EventPattern": "{\"detail\": {\"n\": [{\"numeric\": [\">\", 5]}]}}"}]}`,
		`{"Targets": [{"Id": "E", "Arn": "arn:aws:ecs:eu-west-1:111122223333:cluster/c", "EcsParameters": {"TaskDefinitionArn": "t"},
		  "InputTransformer": {"InputPathsMap": {"k": "$.k"}, "InputTemplate": "{\"containerOverrides\": [{\"name\": \"a\", \"command\": [<k>]}]}"}}]}`)
	f.Fuzz(func(t *testing.T, rules, targets string) {
		ts := &Targets{From: "targets", byRule: map[string][]byte{"orders": []byte(targets)}, files: map[string]string{"orders": "targets/orders.json"}}
		_, err := FromCLI("rules.json", []byte(rules), ts, Options{})
		var inv *InvalidError
		if errors.As(err, &inv) {
			t.Fatalf("%v\n%s", err, inv.Config)
		}
	})
}
