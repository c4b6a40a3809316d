package importer

import (
	"strings"
	"testing"
)

func ecsRule(params, extra string) string {
	return rule(`        - Id: Task
          Arn: "arn:aws:ecs:us-east-1:111122223333:cluster/jobs"
          RoleArn: "arn:aws:iam::111122223333:role/events"
          EcsParameters: ` + params + `
` + extra)
}

func TestImport_ECS(t *testing.T) {
	t.Parallel()
	const td = `TaskDefinitionArn: "arn:aws:ecs:us-east-1:111122223333:task-definition/job:3"`
	tests := []struct {
		name, params, extra string
		want, warn          []string
	}{
		{"every setting", `{` + td + `, TaskCount: 3, LaunchType: FARGATE, PlatformVersion: "1.4.0", Group: g, PropagateTags: TASK_DEFINITION,
            EnableExecuteCommand: true, TagList: [{Key: team, Value: jobs}],
            NetworkConfiguration: {AwsVpcConfiguration: {Subnets: [subnet-1], SecurityGroups: [sg-1], AssignPublicIp: ENABLED}}}`, "",
			[]string{"type: ecs_task", "cluster: jobs", "task_definition: arn:aws:ecs:us-east-1:111122223333:task-definition/job:3",
				"launch_type: FARGATE", "network:\n      subnets: [subnet-1]\n      security_groups: [sg-1]\n      assign_public_ip: true",
				"platform_version: 1.4.0", "count: 3", "group: g", "propagate_tags: TASK_DEFINITION", "enable_execute_command: true",
				"tags:\n      team: jobs"}, nil},
		{"the API's spelling", `{` + td + `, Tags: [{Key: team, Value: jobs}],
            CapacityProviderStrategy: [{capacityProvider: spot, weight: 3, base: 1}],
            NetworkConfiguration: {awsvpcConfiguration: {Subnets: [subnet-1], AssignPublicIp: DISABLED}}}`, "",
			[]string{"capacity_provider_strategy:\n      - {capacity_provider: spot, weight: 3, base: 1}", "network:\n      subnets: [subnet-1]\n",
				"tags:\n      team: jobs", "!assign_public_ip", "!count:"}, nil},
		{"settings the target does not set", `{` + td + `, EnableECSManagedTags: true, ReferenceId: ref,
            PlacementConstraints: [{Type: distinctInstance}]}`, "",
			[]string{"Not imported: EnableECSManagedTags, PlacementConstraints, ReferenceId"},
			[]string{"target Task: EcsParameters EnableECSManagedTags, PlacementConstraints, ReferenceId not imported"}},
		{"settings at what the target does anyway", `{` + td + `, EnableECSManagedTags: false, PlacementConstraints: []}`, "",
			[]string{"!Not imported: Enable"}, nil},
		{"a constant input is the overrides", `{` + td + `}`,
			`          Input: '{"containerOverrides": [{"name": "app", "command": ["run", "--all"], "environment": [{"name": "MODE", "value": "full"}], "cpu": 256}], "taskRoleArn": "arn:aws:iam::111122223333:role/job"}'` + "\n",
			[]string{"task_role_arn: arn:aws:iam::111122223333:role/job", "container_overrides:\n      - name: app\n        command: [run, \"--all\"]\n        environment:\n          MODE: full\n        cpu: 256",
				"!input:"}, nil},
		{"an input transformer's placeholders are the payload's fields", `{` + td + `}`,
			`          InputTransformer:
            InputPathsMap: {key: $.detail.key, n: $.detail.n}
            InputTemplate: '{"containerOverrides": [{"name": "app", "command": ["get", "<key>", "-n", <n>], "environment": [{"name": "RULE", "value": "<aws.events.rule-name>"}]}]}'
`,
			[]string{`command: [get, "<key>", "-n", "<n>"]`, `RULE: "<aws.events.rule-name>"`,
				"key: $.detail.key", `template: '{"key": <key>, "n": <n>, "aws.events.rule-name": "r"}'`}, nil},
		{"InputPath", `{` + td + `}`, "          InputPath: $.detail\n",
			nil, []string{"its InputPath would take the task's overrides from the event"}},
		{"an override switchyard has no key for", `{` + td + `}`, `          Input: '{"containerOverrides": [{"name": "app", "memoryReservation": 5}]}'` + "\n",
			nil, []string{"containerOverrides[0].memoryReservation has no equivalent in the ecs_task target"}},
		{"a task-level override", `{` + td + `}`, `          Input: '{"cpu": "1024"}'` + "\n",
			nil, []string{"cpu has no equivalent in the ecs_task target"}},
		{"a container's name from the event", `{` + td + `}`,
			`          InputTransformer: {InputPathsMap: {c: $.detail.c}, InputTemplate: '{"containerOverrides": [{"name": <c>}]}'}` + "\n",
			nil, []string{"containerOverrides[0].name must be constant, not a placeholder"}},
		{"overrides that are not JSON", `{` + td + `}`, `          InputTransformer: {InputTemplate: 'run <aws.events.rule-name>'}` + "\n",
			nil, []string{"its input, the task's overrides: not JSON"}},
		{"a bad AssignPublicIp", `{` + td + `, NetworkConfiguration: {AwsVpcConfiguration: {Subnets: [s], AssignPublicIp: MAYBE}}}`, "",
			nil, []string{`AssignPublicIp "MAYBE" is neither ENABLED nor DISABLED`}},
		{"no task definition", `{TaskCount: 1}`, "",
			nil, []string{"EcsParameters: no TaskDefinitionArn"}},
		{"FARGATE without subnets, which switchyard refuses", `{` + td + `, LaunchType: FARGATE}`, "",
			nil, []string{"switchyard refuses it: targets[0].network.subnets: FARGATE tasks need at least one subnet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tpl := ecsRule(tt.params, tt.extra) + "        - {Id: Keep, Arn: \"arn:aws:sns:us-east-1:111122223333:keep\"}\n"
			check(t, tpl, home, tt.want, tt.warn)
		})
	}
}

// A task that takes nothing from the event joins its rule's other targets
// whatever their input; one with placeholders gets a rule of its own.
func TestImport_ECSJoinsAnyRule(t *testing.T) {
	t.Parallel()
	tpl := ecsRule(`{TaskDefinitionArn: job}`, "") +
		"        - {Id: Keep, Arn: \"arn:aws:sns:us-east-1:111122223333:keep\", Input: '{\"k\": 1}'}\n"
	res := check(t, tpl, home, []string{"targets: [Keep, Task]"}, nil)
	if strings.Count(string(res.Config), "- name: r") != 1 {
		t.Errorf("want one rule:\n%s", res.Config)
	}
}
