package deploy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/switchyard-dev/switchyard/deploy/iam"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/sources/sqs"
	"go.yaml.in/yaml/v3"
)

// template is a CloudFormation template decoded to plain Go values, with
// short-form intrinsics (!Ref X) in their long form ({"Ref": "X"}).
type template struct {
	Parameters map[string]map[string]any
	Conditions map[string]any
	Resources  map[string]resource
	Outputs    map[string]map[string]any
	raw        map[string]any
}

type resource struct {
	Type       string
	Condition  string
	Properties map[string]any
}

// knownResourceTypes are the resource types the template may use: a typo
// in one is only found when a stack is created.
var knownResourceTypes = []string{
	"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule", "AWS::Logs::LogGroup",
	"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::ECS::TaskDefinition", "AWS::ECS::Service",
	"AWS::ECS::Cluster", "AWS::SSM::Parameter",
}

var pseudoParameters = []string{
	"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}

// intrinsicTags maps the short forms to the long ones.
var intrinsicTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!If": "Fn::If", "!Equals": "Fn::Equals",
	"!Not": "Fn::Not", "!And": "Fn::And", "!Or": "Fn::Or", "!Select": "Fn::Select",
	"!Join": "Fn::Join", "!Split": "Fn::Split", "!FindInMap": "Fn::FindInMap",
	"!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr", "!GetAZs": "Fn::GetAZs",
	"!ImportValue": "Fn::ImportValue",
}

// fromNode turns a YAML node into plain values, resolving short-form
// intrinsic tags, and fails on duplicate keys and unknown tags.
func fromNode(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return fromNode(n.Content[0])
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: YAML alias: CloudFormation does not support them", n.Line)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: key %q twice", n.Content[i].Line, k)
			}
			val, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		var s []any
		for _, c := range n.Content {
			val, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if strings.HasPrefix(n.Tag, "!!") {
			if err := n.Decode(&v); err != nil {
				return nil, err
			}
		} else {
			v = n.Value
		}
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	long, ok := intrinsicTags[n.Tag]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	if s, ok := v.(string); ok && long == "Fn::GetAtt" {
		res, attr, ok := strings.Cut(s, ".")
		if !ok {
			return nil, fmt.Errorf("line %d: !GetAtt %s: want Resource.Attribute", n.Line, s)
		}
		v = []any{res, attr}
	}
	return map[string]any{long: v}, nil
}

func loadTemplate(t *testing.T) *template { t.Helper(); return loadTemplateWith(t, nil) }

// loadTemplateWith loads the template with the parameters' defaults
// changed by params, and resolves the resources' Fn::Ifs under them: a
// test reads the stack's resources as they would be made. tpl.raw keeps
// them as written.
func loadTemplateWith(t *testing.T, params map[string]string) *template {
	t.Helper()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, cfnTemplate)))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", cfnTemplate, err)
	}
	v, err := fromNode(&doc)
	if err != nil {
		t.Fatalf("%s: %v", cfnTemplate, err)
	}
	raw, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not a mapping", cfnTemplate)
	}
	for k := range raw {
		if !slices.Contains([]string{"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Mappings", "Conditions", "Rules", "Transform", "Resources", "Outputs"}, k) {
			t.Errorf("%s: unknown top-level section %q", cfnTemplate, k)
		}
	}
	// Round-trip the sections through JSON into their shapes.
	var tpl template
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatalf("%s: %v", cfnTemplate, err)
	}
	tpl.raw = raw
	for name, v := range params {
		if tpl.Parameters[name] == nil {
			t.Fatalf("%s: no parameter %s", cfnTemplate, name)
		}
		tpl.Parameters[name]["Default"] = v
	}
	for name, r := range tpl.Resources {
		r.Properties, _ = tpl.resolveIfs(t, r.Properties).(map[string]any)
		tpl.Resources[name] = r
	}
	return &tpl
}

// noValue is an Fn::If's AWS::NoValue branch: the entry is left out.
type noValue struct{}

// resolveIfs resolves the Fn::Ifs in v under the template's conditions,
// leaving out the entries and keys whose branch is AWS::NoValue.
func (tpl *template) resolveIfs(t *testing.T, v any) any {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if arg, ok := v["Fn::If"]; ok && len(v) == 1 {
			l, _ := arg.([]any)
			if len(l) != 3 {
				t.Fatalf("Fn::If %v", arg)
			}
			cond, err := tpl.evalName(tpl.Conditions[fmt.Sprint(l[0])], stackPseudo["AWS::StackName"])
			if err != nil {
				t.Fatalf("condition %v: %v", l[0], err)
			}
			branch := l[2]
			if cond == true {
				branch = l[1]
			}
			if equal(branch, ref("AWS::NoValue")) {
				return noValue{}
			}
			return tpl.resolveIfs(t, branch)
		}
		out := map[string]any{}
		for k, e := range v {
			if r := tpl.resolveIfs(t, e); !isNoValue(r) {
				out[k] = r
			}
		}
		return out
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			if r := tpl.resolveIfs(t, e); !isNoValue(r) {
				out = append(out, r)
			}
		}
		return out
	}
	return v
}

func isNoValue(v any) bool { _, ok := v.(noValue); return ok }

func (tpl *template) parameterDefault(t *testing.T, name string) string {
	t.Helper()
	p, ok := tpl.Parameters[name]
	if !ok {
		t.Fatalf("%s: no parameter %s", cfnTemplate, name)
	}
	return fmt.Sprint(p["Default"])
}

// evalName evaluates v as CloudFormation would for a stack named stack made
// with every parameter's default: Ref, Fn::Sub (of parameters and pseudo
// parameters), Fn::If, Fn::Equals and Fn::Not, which is what names in the
// template use. Anything else is an error.
func (tpl *template) evalName(v any, stack string) (any, error) {
	pseudo := map[string]string{"AWS::StackName": stack, "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
	lookup := func(name string) (string, error) {
		if v, ok := pseudo[name]; ok {
			return v, nil
		}
		p, ok := tpl.Parameters[name]
		if !ok {
			return "", fmt.Errorf("%s: not a parameter", name)
		}
		d, ok := p["Default"]
		if !ok {
			return "", fmt.Errorf("parameter %s has no default", name)
		}
		return fmt.Sprint(d), nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v, nil
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Ref":
			return lookup(fmt.Sprint(arg))
		case "Fn::Sub":
			str, ok := arg.(string)
			if !ok {
				return nil, fmt.Errorf("Fn::Sub with variables is not evaluated")
			}
			var err error
			out := subVarRE.ReplaceAllStringFunc(str, func(m string) string {
				v, e := lookup(m[2 : len(m)-1])
				err = cmp.Or(err, e)
				return v
			})
			return out, err
		case "Fn::If":
			if len(args) != 3 {
				return nil, fmt.Errorf("Fn::If %v", arg)
			}
			cond, err := tpl.evalName(tpl.Conditions[fmt.Sprint(args[0])], stack)
			if err != nil {
				return nil, err
			}
			if cond == true {
				return tpl.evalName(args[1], stack)
			}
			return tpl.evalName(args[2], stack)
		case "Fn::Equals":
			if len(args) != 2 {
				return nil, fmt.Errorf("Fn::Equals %v", arg)
			}
			a, err := tpl.evalName(args[0], stack)
			if err != nil {
				return nil, err
			}
			b, err := tpl.evalName(args[1], stack)
			return fmt.Sprint(a) == fmt.Sprint(b), err
		case "Fn::Not":
			if len(args) != 1 {
				return nil, fmt.Errorf("Fn::Not %v", arg)
			}
			c, err := tpl.evalName(args[0], stack)
			return c != true, err
		}
		return nil, fmt.Errorf("%s is not evaluated", fn)
	}
	return nil, nil
}

// defaultLogGroup is the log group's name in a stack named stack.
func (tpl *template) defaultLogGroup(t *testing.T, stack string) string {
	t.Helper()
	name, err := tpl.evalName(tpl.Resources["LogGroup"].Properties["LogGroupName"], stack)
	if err != nil {
		t.Fatalf("LogGroup's LogGroupName: %v", err)
	}
	return fmt.Sprint(name)
}

// physicalNames are the properties that name a resource in its account and
// region: two stacks that give one the same value collide.
var physicalNames = []string{"QueueName", "LogGroupName", "RoleName", "Family", "ServiceName", "Name", "FunctionName", "TopicName", "ClusterName"}

// ref, getAtt and sub build intrinsics to compare with.
func ref(name string) any         { return map[string]any{"Ref": name} }
func getAtt(res, attr string) any { return map[string]any{"Fn::GetAtt": []any{res, attr}} }
func equal(a, b any) bool         { return fmt.Sprint(a) == fmt.Sprint(b) }
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

var subVarRE = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func TestCloudFormation(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)

	t.Run("references", func(t *testing.T) {
		t.Parallel()
		defined := func(name string) bool {
			_, p := tpl.Parameters[name]
			_, r := tpl.Resources[name]
			return p || r || slices.Contains(pseudoParameters, name)
		}
		attrTarget := func(res string) bool { _, ok := tpl.Resources[res]; return ok }
		condDefined := func(name string) bool { _, ok := tpl.Conditions[name]; return ok }
		var walk func(v any, where string)
		walk = func(v any, where string) {
			switch v := v.(type) {
			case []any:
				for i, e := range v {
					walk(e, fmt.Sprintf("%s[%d]", where, i))
				}
			case map[string]any:
				if len(v) == 1 {
					for k, arg := range v {
						switch k {
						case "Ref":
							if s, _ := arg.(string); !defined(s) {
								t.Errorf("%s: Ref %v: no such parameter or resource", where, arg)
							}
						case "Fn::GetAtt":
							parts, _ := arg.([]any)
							if len(parts) != 2 || !attrTarget(fmt.Sprint(parts[0])) {
								t.Errorf("%s: GetAtt %v: no such resource", where, arg)
							}
						case "Fn::Sub":
							str, vars := arg, map[string]any{}
							if l, ok := arg.([]any); ok && len(l) == 2 {
								str = l[0]
								vars, _ = l[1].(map[string]any)
								walk(l[1], where+".Sub")
							}
							s, ok := str.(string)
							if !ok {
								t.Errorf("%s: Sub of %T", where, str)
								return
							}
							for _, m := range subVarRE.FindAllStringSubmatch(s, -1) {
								name, _, isAttr := strings.Cut(m[1], ".")
								if _, local := vars[m[1]]; local {
									continue
								}
								if isAttr && !slices.Contains(pseudoParameters, m[1]) {
									if !attrTarget(name) {
										t.Errorf("%s: Sub ${%s}: no such resource", where, m[1])
									}
								} else if !defined(m[1]) {
									t.Errorf("%s: Sub ${%s}: no such parameter or resource", where, m[1])
								}
							}
							return
						case "Fn::If":
							l, _ := arg.([]any)
							if len(l) != 3 || !condDefined(fmt.Sprint(l[0])) {
								t.Errorf("%s: If %v: want [defined condition, then, else]", where, arg)
							} else {
								walk(l[1:], where+".If")
							}
							return
						case "Condition":
							if s, ok := arg.(string); ok && !condDefined(s) {
								t.Errorf("%s: Condition %s: not defined", where, s)
							}
						}
					}
				}
				for k, e := range v {
					if k == "Ref" || k == "Fn::GetAtt" {
						continue
					}
					walk(e, where+"."+k)
				}
			}
		}
		for name, sec := range map[string]any{"Conditions": tpl.raw["Conditions"], "Resources": tpl.raw["Resources"], "Outputs": tpl.raw["Outputs"]} {
			walk(sec, name)
		}
		for name, r := range tpl.Resources {
			if !slices.Contains(knownResourceTypes, r.Type) {
				t.Errorf("resource %s: type %q is not one of %v", name, r.Type, knownResourceTypes)
			}
			if r.Condition != "" && !condDefined(r.Condition) {
				t.Errorf("resource %s: condition %s not defined", name, r.Condition)
			}
		}
		for name, o := range tpl.Outputs {
			if c, ok := o["Condition"].(string); ok && !condDefined(c) {
				t.Errorf("output %s: condition %s not defined", name, c)
			}
		}
		for name, p := range tpl.Parameters {
			if _, ok := p["Type"]; !ok {
				t.Errorf("parameter %s has no Type", name)
			}
			used := false
			for _, m := range []string{`"Ref":"` + name + `"`, "${" + name + "}"} {
				b, _ := json.Marshal(tpl.raw["Resources"])
				c, _ := json.Marshal(tpl.raw["Conditions"])
				used = used || bytes.Contains(b, []byte(m)) || bytes.Contains(c, []byte(m))
			}
			if !used {
				t.Errorf("parameter %s is never used", name)
			}
		}
	})

	// A second stack from the template, with its defaults, creates its own
	// resources rather than failing on names the first one took.
	t.Run("names are the stack's", func(t *testing.T) {
		t.Parallel()
		for name, r := range tpl.Resources {
			for _, prop := range physicalNames {
				v, ok := r.Properties[prop]
				if !ok {
					continue
				}
				a, err := tpl.evalName(v, "shop-switchyard")
				if err != nil {
					t.Errorf("%s %s: %v", name, prop, err)
					continue
				}
				b, _ := tpl.evalName(v, "billing-switchyard")
				if fmt.Sprint(a) == "" || fmt.Sprint(a) == fmt.Sprint(b) {
					t.Errorf("%s %s is %q in two stacks: want a name of the stack's own (unset, or with ${AWS::StackName})", name, prop, a)
				}
			}
		}
	})

	t.Run("queues", func(t *testing.T) {
		t.Parallel()
		cfg := loadConfig(t, sidecarConfig)
		q, dlq := tpl.Resources["EventsQueue"], tpl.Resources["DeadLetterQueue"]
		if q.Type != "AWS::SQS::Queue" || dlq.Type != "AWS::SQS::Queue" {
			t.Fatalf("EventsQueue %q, DeadLetterQueue %q: want two AWS::SQS::Queue", q.Type, dlq.Type)
		}
		rp := q.Properties["RedrivePolicy"]
		if !equal(get(rp, "deadLetterTargetArn"), getAtt("DeadLetterQueue", "Arn")) {
			t.Errorf("RedrivePolicy.deadLetterTargetArn %v: want the DLQ's ARN", get(rp, "deadLetterTargetArn"))
		}
		if n, ok := get(rp, "maxReceiveCount").(float64); !ok || n < 3 {
			t.Errorf("RedrivePolicy.maxReceiveCount %v: want a number, at least 3 (a redelivery after a crash is normal)", get(rp, "maxReceiveCount"))
		}
		// The queue's own visibility timeout is the sqs source's.
		for _, s := range cfg.Sources {
			if s.Type != "sqs" {
				continue
			}
			sc, ok := s.Config.(*sqs.Config)
			if !ok {
				t.Fatalf("source %s: config %T", s.Name, s.Config)
			}
			if got, want := fmt.Sprint(q.Properties["VisibilityTimeout"]), fmt.Sprint(int(sc.VisibilityTimeout.Seconds())); got != want {
				t.Errorf("EventsQueue VisibilityTimeout %s, want the %s source's visibility_timeout, %ss", got, s.Name, want)
			}
		}
	})

	t.Run("eventbridge", func(t *testing.T) {
		t.Parallel()
		rule := tpl.Resources["TaskStateRule"]
		if rule.Type != "AWS::Events::Rule" {
			t.Fatalf("TaskStateRule is %q", rule.Type)
		}
		p := rule.Properties["EventPattern"]
		if !equal(get(p, "source"), []any{"aws.ecs"}) || !equal(get(p, "detail-type"), []any{"ECS Task State Change"}) {
			t.Errorf("EventPattern %v: want source aws.ecs, detail-type ECS Task State Change", p)
		}
		targets, _ := rule.Properties["Targets"].([]any)
		if len(targets) != 1 || !equal(get(targets[0], "Arn"), getAtt("EventsQueue", "Arn")) || get(targets[0], "Id") == nil {
			t.Errorf("Targets %v: want the queue, with an Id", targets)
		}
		pol := tpl.Resources["EventsQueuePolicy"]
		if pol.Type != "AWS::SQS::QueuePolicy" || !equal(pol.Properties["Queues"], []any{ref("EventsQueue")}) {
			t.Fatalf("EventsQueuePolicy: %v", pol)
		}
		stmts, _ := get(pol.Properties, "PolicyDocument", "Statement").([]any)
		ok := slices.ContainsFunc(stmts, func(s any) bool {
			return get(s, "Effect") == "Allow" &&
				equal(get(s, "Principal", "Service"), "events.amazonaws.com") &&
				equal(get(s, "Action"), "sqs:SendMessage") &&
				equal(get(s, "Resource"), getAtt("EventsQueue", "Arn")) &&
				equal(get(s, "Condition", "ArnEquals", "aws:SourceArn"), getAtt("TaskStateRule", "Arn"))
		})
		if !ok {
			t.Errorf("the queue policy does not let events.amazonaws.com send for TaskStateRule only: %v", stmts)
		}
		// The sidecar config consumes what the rule forwards.
		b, _ := json.Marshal(tpl.Resources["TaskDefinition"].Properties)
		if !bytes.Contains(b, []byte(`{"Name":"EVENTS_QUEUE_URL","Value":{"Ref":"EventsQueue"}}`)) {
			t.Error("the task definition does not give switchyard EVENTS_QUEUE_URL = the queue")
		}
		if !bytes.Contains(readRepoFile(t, sidecarConfig), []byte("${EVENTS_QUEUE_URL")) {
			t.Errorf("%s does not read EVENTS_QUEUE_URL", sidecarConfig)
		}
	})

	t.Run("roles", func(t *testing.T) {
		t.Parallel()
		got := map[string]bool{}
		for _, s := range roleStatements(t, tpl, "TaskRole") {
			for _, a := range strList(get(s, "Action")) {
				got[a] = true
			}
			if slices.Contains(strList(get(s, "Action")), "ecs:RunTask") && get(s, "Condition", "ArnEquals", "ecs:cluster") == nil {
				t.Error("ecs:RunTask without an ecs:cluster condition")
			}
			if slices.Contains(strList(get(s, "Action")), "iam:PassRole") && !equal(get(s, "Condition", "StringEquals", "iam:PassedToService"), "ecs-tasks.amazonaws.com") {
				t.Error("iam:PassRole without an iam:PassedToService condition")
			}
			if equal(get(s, "Resource"), "*") {
				t.Errorf("task role statement %v on every resource", get(s, "Sid"))
			}
		}
		// The statements are those `switchyard iam-policy` prints for the
		// config as the stack fills it in, narrowed to what the stack knows.
		checkIAMPolicyAgrees(t, tpl)
		if g := sortedKeys(got); len(g) == 0 {
			t.Error("the task role grants nothing")
		}

		// The execution role reads exactly the config parameter the
		// container gets.
		var secretFrom any
		for _, c := range tpl.Resources["TaskDefinition"].Properties["ContainerDefinitions"].([]any) {
			for _, s := range asList(get(c, "Secrets")) {
				if get(s, "Name") == "SWITCHYARD_CONFIG_YAML" {
					secretFrom = get(s, "ValueFrom")
				}
			}
		}
		if !slices.ContainsFunc(roleStatements(t, tpl, "ExecutionRole"), func(s any) bool {
			return equal(get(s, "Action"), "ssm:GetParameters") && equal(get(s, "Resource"), secretFrom)
		}) {
			t.Errorf("the execution role may not ssm:GetParameters %v", secretFrom)
		}
		for _, role := range []string{"TaskRole", "ExecutionRole"} {
			trust := get(tpl.Resources[role].Properties, "AssumeRolePolicyDocument", "Statement")
			if !equal(get(asList(trust)[0], "Principal", "Service"), "ecs-tasks.amazonaws.com") {
				t.Errorf("%s: not assumable by ecs-tasks.amazonaws.com alone", role)
			}
		}
	})

	t.Run("task definition matches the JSON", func(t *testing.T) {
		t.Parallel()
		td := tpl.Resources["TaskDefinition"]
		if td.Type != "AWS::ECS::TaskDefinition" {
			t.Fatalf("TaskDefinition is %q", td.Type)
		}
		if !equal(td.Properties["TaskRoleArn"], getAtt("TaskRole", "Arn")) || !equal(td.Properties["ExecutionRoleArn"], getAtt("ExecutionRole", "Arn")) {
			t.Error("the task definition does not use the template's roles")
		}
		jsonTD := loadTaskDefinition(t, sidecarTaskDef)
		for i, c := range asList(td.Properties["ContainerDefinitions"]) {
			// Intrinsics become placeholders; keys become camelCase.
			b, err := json.Marshal(camelKeys(placeholders(c)))
			if err != nil {
				t.Fatal(err)
			}
			var got containerDefinition
			if err := decodeJSONStrict(b, &got); err != nil {
				t.Fatalf("ContainerDefinitions[%d]: %v", i, err)
			}
			want := jsonTD.container(got.Name)
			if want == nil {
				t.Errorf("container %s is not in %s", got.Name, sidecarTaskDef)
				continue
			}
			// Values the stack fills in differ; the rest must not.
			want2 := *want
			got.Image, want2.Image = "", ""
			for _, l := range []*containerDefinition{&got, &want2} {
				for j := range l.Environment {
					l.Environment[j].Value = ""
				}
				for j := range l.Secrets {
					l.Secrets[j].ValueFrom = ""
				}
				l.LogConfiguration = &logConfiguration{LogDriver: l.LogConfiguration.LogDriver, Options: map[string]string{"awslogs-stream-prefix": l.LogConfiguration.Options["awslogs-stream-prefix"]}}
			}
			if g, w := fmt.Sprintf("%+v", jsonish(got)), fmt.Sprintf("%+v", jsonish(want2)); g != w {
				t.Errorf("container %s differs from %s:\n template: %s\n json:     %s", got.Name, sidecarTaskDef, g, w)
			}
		}
		for _, k := range []string{"NetworkMode", "Cpu", "Memory"} {
			if w := map[string]string{"NetworkMode": jsonTD.NetworkMode, "Cpu": jsonTD.CPU, "Memory": jsonTD.Memory}[k]; fmt.Sprint(td.Properties[k]) != w {
				t.Errorf("%s %v, the JSON has %s", k, td.Properties[k], w)
			}
		}
		lg := tpl.Resources["LogGroup"]
		if got := tpl.defaultLogGroup(t, "shop"); got != "/ecs/shop" || lg.Properties["RetentionInDays"] == nil {
			t.Errorf("LogGroup %v: want /ecs/STACK_NAME by default (got %q), and a retention", lg.Properties, got)
		}
		svc := tpl.Resources["Service"]
		if svc.Type != "AWS::ECS::Service" || !equal(svc.Properties["TaskDefinition"], ref("TaskDefinition")) ||
			!equal(get(svc.Properties, "DeploymentConfiguration", "DeploymentCircuitBreaker", "Rollback"), true) {
			t.Errorf("Service %v: want the task definition, with a rolling-back circuit breaker", svc.Properties)
		}
	})
}

// neededActions lists the IAM actions a config's sources and targets need,
// the same list README's "Against AWS" gives.
func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func roleStatements(t *testing.T, tpl *template, role string) []any {
	t.Helper()
	r, ok := tpl.Resources[role]
	if !ok || r.Type != "AWS::IAM::Role" {
		t.Fatalf("no IAM role %s", role)
	}
	var out []any
	for _, p := range asList(r.Properties["Policies"]) {
		out = append(out, asList(get(p, "PolicyDocument", "Statement"))...)
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func strList(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	for _, e := range asList(v) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// placeholders replaces intrinsic functions by strings, so a container
// definition decodes into containerDefinition.
func placeholders(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					b, _ := json.Marshal(v)
					return string(b)
				}
			}
		}
		m := map[string]any{}
		for k, e := range v {
			m[k] = placeholders(e)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = placeholders(e)
		}
		return l
	}
	return v
}

// camelKeys turns CloudFormation's PascalCase keys into the ECS API's
// camelCase ones, leaving log driver options (already lower case) alone.
func camelKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range v {
			r := []rune(k)
			r[0] = unicode.ToLower(r[0])
			m[string(r)] = camelKeys(e)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = camelKeys(e)
		}
		return l
	}
	return v
}

func jsonish(c containerDefinition) string {
	b, _ := json.Marshal(c)
	return string(b)
}

// stackParameters are the parameter values the template is evaluated with:
// its defaults, and these for the parameters without one.
var stackParameters = map[string]any{
	"NotifyFunctionArn":      "arn:aws:lambda:us-east-1:111122223333:function:shop-notify",
	"ReportTaskRoleArn":      "arn:aws:iam::111122223333:role/report-task",
	"ReportExecutionRoleArn": "arn:aws:iam::111122223333:role/report-execution",
	"Subnets":                []any{"subnet-1"},
	"SecurityGroups":         []any{"sg-1"},
	"AppImage":               "app:1",
	"SwitchyardImage":        "switchyard:1",
}

// stackPseudo are the pseudo parameters of the stack the template is
// evaluated as.
var stackPseudo = map[string]string{
	"AWS::AccountId": "111122223333", "AWS::Partition": "aws", "AWS::Region": "us-east-1",
	"AWS::StackName": "shop", "AWS::URLSuffix": "amazonaws.com",
}

// eval evaluates the intrinsic functions of v that the task role and the
// task definition's environment use: Ref (parameters, pseudo parameters,
// queues: their URL), Fn::GetAtt of a queue's Arn, Fn::Sub and Fn::Select.
func (tpl *template) eval(t *testing.T, v any) any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		if l, ok := v.([]any); ok {
			out := make([]any, len(l))
			for i, e := range l {
				out[i] = tpl.eval(t, e)
			}
			return out
		}
		if ok {
			out := map[string]any{}
			for k, e := range m {
				out[k] = tpl.eval(t, e)
			}
			return out
		}
		return v
	}
	for fn, arg := range m {
		switch fn {
		case "Ref":
			return tpl.ref(t, arg.(string))
		case "Fn::GetAtt":
			parts := arg.([]any)
			return tpl.attr(t, parts[0].(string), parts[1].(string))
		case "Fn::Select":
			l := arg.([]any)
			return asList(tpl.eval(t, l[1]))[int(l[0].(float64))]
		case "Fn::Sub":
			str, vars := arg, map[string]any{}
			if l, ok := arg.([]any); ok {
				str, vars = l[0], l[1].(map[string]any)
			}
			return subVarRE.ReplaceAllStringFunc(str.(string), func(m string) string {
				name := subVarRE.FindStringSubmatch(m)[1]
				if v, ok := vars[name]; ok {
					return fmt.Sprint(tpl.eval(t, v))
				}
				if res, attr, isAttr := strings.Cut(name, "."); isAttr && !strings.HasPrefix(name, "AWS::") {
					return fmt.Sprint(tpl.attr(t, res, attr))
				}
				return fmt.Sprint(tpl.ref(t, name))
			})
		}
		out := map[string]any{}
		for k, e := range m {
			out[k] = tpl.eval(t, e)
		}
		return out
	}
	return nil
}

func (tpl *template) ref(t *testing.T, name string) any {
	t.Helper()
	if v, ok := stackPseudo[name]; ok {
		return v
	}
	if v, ok := stackParameters[name]; ok {
		return v
	}
	if p, ok := tpl.Parameters[name]; ok && p["Default"] != nil {
		return fmt.Sprint(p["Default"])
	}
	if r, ok := tpl.Resources[name]; ok && r.Type == "AWS::SQS::Queue" {
		return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", stackPseudo["AWS::Region"], stackPseudo["AWS::AccountId"], tpl.eval(t, r.Properties["QueueName"]))
	}
	t.Fatalf("Ref %s: not evaluated by this test", name)
	return nil
}

func (tpl *template) attr(t *testing.T, res, attr string) any {
	t.Helper()
	if r, ok := tpl.Resources[res]; ok && r.Type == "AWS::SQS::Queue" && attr == "Arn" {
		return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", stackPseudo["AWS::Region"], stackPseudo["AWS::AccountId"], tpl.eval(t, r.Properties["QueueName"]))
	}
	t.Fatalf("GetAtt %s.%s: not evaluated by this test", res, attr)
	return nil
}

// iamMatch reports whether an IAM pattern (* and ? wildcards) matches s.
func iamMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}

// checkIAMPolicyAgrees checks that the task role's statements are those
// `switchyard iam-policy` prints for examples/sidecar.yaml as the stack
// fills it in (its container's environment evaluated): the same Sids,
// actions and condition keys, and resources and condition values that
// the printed ones match, one for one. The template may be narrower where
// it knows more than the config: the region and account of ECS ARNs (the
// config names the cluster and family only), and the roles passed to ECS
// (the config does not name them).
func checkIAMPolicyAgrees(t *testing.T, tpl *template) {
	t.Helper()
	env := map[string]string{}
	for _, c := range asList(tpl.Resources["TaskDefinition"].Properties["ContainerDefinitions"]) {
		if get(c, "Name") != "switchyard" {
			continue
		}
		for _, e := range asList(get(c, "Environment")) {
			env[get(e, "Name").(string)] = fmt.Sprint(tpl.eval(t, get(e, "Value")))
		}
	}
	if len(env) == 0 {
		t.Fatal("the switchyard container has no environment")
	}
	cfg, err := config.Parse(sidecarConfig, readRepoFile(t, sidecarConfig), func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		t.Fatalf("%s with the stack's environment: %v", sidecarConfig, err)
	}
	doc, err := iam.Policy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	printed := map[string]iam.Statement{}
	for _, st := range doc.Statement {
		printed[st.Sid] = st
	}
	// matches pairs what the template grants with what iam-policy prints:
	// every value is matched, and every printed pattern matches a value.
	matches := func(what string, patterns []string, values []string) {
		t.Helper()
		for _, v := range values {
			if !slices.ContainsFunc(patterns, func(p string) bool { return iamMatch(p, v) }) {
				t.Errorf("%s: the template grants %s, which iam-policy's %v do not", what, v, patterns)
			}
		}
		for _, p := range patterns {
			if !slices.ContainsFunc(values, func(v string) bool { return iamMatch(p, v) }) {
				t.Errorf("%s: iam-policy grants %s, which the template does not (it has %v)", what, p, values)
			}
		}
	}
	seen := map[string]bool{}
	for _, raw := range roleStatements(t, tpl, "TaskRole") {
		s := tpl.eval(t, raw)
		sid := fmt.Sprint(get(s, "Sid"))
		seen[sid] = true
		want, ok := printed[sid]
		if !ok {
			t.Errorf("task role statement %s: iam-policy prints no statement of that Sid (it prints %v)", sid, slices.Sorted(maps.Keys(printed)))
			continue
		}
		if got := slices.Sorted(slices.Values(strList(get(s, "Action")))); !slices.Equal(got, want.Action) || get(s, "Effect") != want.Effect {
			t.Errorf("%s: %v %v, iam-policy prints %s %v", sid, get(s, "Effect"), got, want.Effect, want.Action)
		}
		matches(sid+" Resource", want.Resource, strList(get(s, "Resource")))
		cond, _ := get(s, "Condition").(map[string]any)
		var keys, wantKeys []string
		for op, kv := range cond {
			for k, v := range kv.(map[string]any) {
				keys = append(keys, op+":"+k)
				matches(sid+" "+op+" "+k, want.Condition[op][k], strList(v))
			}
		}
		for op, kv := range want.Condition {
			for k := range kv {
				wantKeys = append(wantKeys, op+":"+k)
			}
		}
		slices.Sort(keys)
		slices.Sort(wantKeys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("%s: conditions %v, iam-policy prints %v", sid, keys, wantKeys)
		}
	}
	for sid := range printed {
		if !seen[sid] {
			t.Errorf("iam-policy prints statement %s, which the task role does not have", sid)
		}
	}
}

// With NatsUrl the stack's tasks join a NATS cluster as a fleet: the
// switchyard container gets the URL and the password the sidecar's fleet
// line reads, and the execution role may read that secret alone; without
// it, neither is there. A rule makes the password's secret required.
func TestCloudFormation_Fleet(t *testing.T) {
	t.Parallel()
	const url, secret = "tls://nats-0.switchyard.internal:4222,tls://nats-1.switchyard.internal:4222", "arn:aws:secretsmanager:us-east-1:111122223333:secret:switchyard-nats-AbCdEf"
	// The variables the sidecar's fleet line reads.
	var fleetLine string
	for line := range strings.SplitSeq(string(readRepoFile(t, sidecarConfig)), "\n") {
		if strings.HasPrefix(line, "# nats: ") {
			fleetLine = line
		}
	}
	for _, v := range []string{"${NATS_URL}", "${NATS_PASSWORD}"} {
		if !strings.Contains(fleetLine, v) {
			t.Fatalf("%s's fleet line %q does not read %s", sidecarConfig, fleetLine, v)
		}
	}
	for _, tt := range []struct {
		name   string
		params map[string]string
		fleet  bool
	}{
		{"defaults", nil, false},
		{"fleet", map[string]string{"NatsUrl": url, "NatsPasswordSecretArn": secret}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tpl := loadTemplateWith(t, tt.params)
			var env, secrets map[string]any
			for _, c := range asList(tpl.Resources["TaskDefinition"].Properties["ContainerDefinitions"]) {
				if get(c, "Name") != "switchyard" {
					continue
				}
				env, secrets = map[string]any{}, map[string]any{}
				for _, e := range asList(get(c, "Environment")) {
					env[fmt.Sprint(get(e, "Name"))] = get(e, "Value")
				}
				for _, e := range asList(get(c, "Secrets")) {
					secrets[fmt.Sprint(get(e, "Name"))] = get(e, "ValueFrom")
				}
			}
			if got, want := tpl.eval(t, env["NATS_URL"]), map[bool]any{true: url, false: nil}[tt.fleet]; !equal(got, want) {
				t.Errorf("NATS_URL %v, want %v", got, want)
			}
			if got, want := tpl.eval(t, secrets["NATS_PASSWORD"]), map[bool]any{true: secret, false: nil}[tt.fleet]; !equal(got, want) {
				t.Errorf("NATS_PASSWORD from %v, want %v", got, want)
			}
			var readable []any
			for _, s := range roleStatements(t, tpl, "ExecutionRole") {
				if slices.Contains(strList(get(s, "Action")), "secretsmanager:GetSecretValue") {
					readable = append(readable, tpl.eval(t, get(s, "Resource")))
				}
			}
			if want := map[bool][]any{true: {secret}, false: nil}[tt.fleet]; !equal(readable, want) {
				t.Errorf("the execution role reads the secrets %v, want %v", readable, want)
			}
		})
	}
	rule := get(loadTemplate(t).raw, "Rules", "NatsPasswordWithNatsUrl")
	if b, _ := json.Marshal(rule); !strings.Contains(string(b), `"Ref":"NatsUrl"`) || !strings.Contains(string(b), `"Ref":"NatsPasswordSecretArn"`) {
		t.Errorf("Rules.NatsPasswordWithNatsUrl %s: want NatsPasswordSecretArn asserted when NatsUrl is set", b)
	}
}
