package importer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ebRule is an EventBridge rule, read from a CloudFormation template or
// from the AWS CLI's JSON: what the conversion works from.
type ebRule struct {
	// Name is the rule's name in EventBridge; empty when CloudFormation
	// generates it (the template gives no Name).
	Name string
	// ID names the rule in the input: the template's logical ID, or the
	// rule's name.
	ID string
	// Where is where the rule is, for messages: "FILE:LINE (ID)" or
	// "FILE: rule NAME".
	Where string
	// ARN is the rule's ARN, when known.
	ARN         text
	Bus         string // the name of its event bus
	State       string // ENABLED (the default), DISABLED, ...
	Description string
	Pattern     *value // nil for none
	Schedule    string
	ManagedBy   string
	// Problem says why the rule cannot be read at all; it is not imported.
	Problem string
	Targets []*ebTarget
}

// ebTarget is one target of a rule.
type ebTarget struct {
	ID string
	// Where is where the target is, for messages about a target without
	// an Id: "FILE:LINE" or "FILE: Targets[N]".
	Where string
	ARN   text
	Role  text
	// Input is constant JSON, InputPath a JSON path, Transformer an input
	// transformer; at most one is set.
	Input       *text
	InputPath   *text
	Transformer *ebTransformer
	// MaxRetries and MaxAge (seconds) are the retry policy; nil for
	// EventBridge's defaults.
	MaxRetries, MaxAge *int
	DeadLetter         text // an SQS queue's ARN, or nil
	ECS                *ebECS
	SQSGroup           *text
	KinesisKey         *text
	// Unsupported names the target's settings switchyard has no use for
	// (HttpParameters, BatchParameters...), with their keys.
	Unsupported []string
	// Problem says why the target cannot be read; it is not imported.
	Problem string
}

// ebTransformer is an InputTransformer.
type ebTransformer struct {
	Paths    []pathEntry
	Template text
}

type pathEntry struct {
	Name string
	Path text
}

// ebECS is a target's EcsParameters.
type ebECS struct {
	TaskDefinition       text
	Count                *int
	LaunchType           string
	Subnets              []text
	SecurityGroups       []text
	AssignPublicIP       string // ENABLED, DISABLED or ""
	PlatformVersion      text
	Group                text
	CapacityProviders    []ebCapacityProvider
	EnableExecuteCommand bool
	PropagateTags        string
	Tags                 []pathEntry // Key → Value
	// Unsupported names the settings RunTask takes that the ecs_task
	// target does not set.
	Unsupported []string
}

type ebCapacityProvider struct {
	Name         text
	Weight, Base int
}

// EventBridge's retry policy defaults and ranges.
const (
	defaultMaxRetries = 185
	defaultMaxAge     = 86400 // seconds: 24 hours
	minMaxAge         = 60
)

// readRule fills a rule from its properties: a CloudFormation resource's
// evaluated Properties or an element of list-rules' Rules, whose keys are
// the same. Targets are read by the caller.
func readRule(r *ebRule, props *value) {
	get := func(key string) string {
		v := props.get(key)
		if v == nil {
			return ""
		}
		t, err := asText(v)
		if err != nil {
			r.Problem = fmt.Sprintf("%s: %v", key, err)
			return ""
		}
		return t.plain()
	}
	if v := props.get("Name"); v != nil {
		// A name the template does not tell (it reads AWS::StackName, say)
		// is as good as one CloudFormation generates: not known.
		if t, err := asText(v); err == nil && t.literal() {
			r.Name = t.plain()
		}
	}
	r.Description = get("Description")
	r.State = get("State")
	r.Schedule = get("ScheduleExpression")
	r.ManagedBy = get("ManagedBy")
	r.Bus = busName(get("EventBusName"))
	if p := props.get("EventPattern"); p != nil {
		switch p.kind {
		case kObject:
			r.Pattern = p
		case kString:
			v, err := parseJSONText(p.str)
			switch {
			case err != nil:
				r.Problem = fmt.Sprintf("EventPattern is not JSON: %v", err)
			case v.kind != kObject:
				r.Problem = fmt.Sprintf("EventPattern is %s, not a JSON object", v.kind)
			default:
				r.Pattern = v
			}
		default:
			r.Problem = fmt.Sprintf("EventPattern is %s: want an object, or a JSON string", p.kind)
		}
	}
}

// busName is the name of a bus given by name or ARN; "" is default.
func busName(s string) string {
	if s == "" {
		return "default"
	}
	if strings.HasPrefix(s, "arn:") {
		if _, after, ok := strings.Cut(s, ":event-bus/"); ok {
			return after
		}
	}
	return s
}

// targetKeys are the keys of a target that the import reads; others are
// reported as unsupported.
var targetKeys = []string{"Id", "Arn", "RoleArn", "Input", "InputPath", "InputTransformer", "RetryPolicy",
	"DeadLetterConfig", "EcsParameters", "SqsParameters", "KinesisParameters"}

// readTarget reads one target (a CloudFormation Target or an element of
// list-targets-by-rule's Targets, which have the same keys).
func readTarget(t *ebTarget, v *value) {
	if v.kind != kObject {
		t.Problem = fmt.Sprintf("a target is %s, not an object", v.kind)
		return
	}
	fail := func(format string, args ...any) {
		if t.Problem == "" {
			t.Problem = fmt.Sprintf(format, args...)
		}
	}
	str := func(key string, in *value) (text, bool) {
		e := in.get(key)
		if e == nil {
			return nil, false
		}
		s, err := asText(e)
		if err != nil {
			fail("%s: %v", key, err)
			return nil, false
		}
		return s, true
	}
	if id, ok := str("Id", v); ok {
		t.ID = id.plain()
	}
	if t.ID == "" {
		fail("the target has no Id")
	}
	if arn, ok := str("Arn", v); ok {
		t.ARN = arn
	}
	if t.ARN.plain() == "" {
		fail("the target has no Arn")
	}
	t.Role, _ = str("RoleArn", v)
	inputs := 0
	if s, ok := str("Input", v); ok {
		t.Input = &s
		inputs++
	}
	if s, ok := str("InputPath", v); ok {
		t.InputPath = &s
		inputs++
	}
	if it := v.get("InputTransformer"); it != nil {
		inputs++
		t.Transformer = &ebTransformer{}
		if tpl, ok := str("InputTemplate", it); ok {
			t.Transformer.Template = tpl
		} else {
			fail("InputTransformer has no InputTemplate")
		}
		if pm := it.get("InputPathsMap"); pm != nil {
			if pm.kind != kObject {
				fail("InputTransformer.InputPathsMap is %s, not an object", pm.kind)
			}
			for i, k := range pm.keys {
				p, err := asText(pm.vals[i])
				if err != nil {
					fail("InputTransformer.InputPathsMap.%s: %v", k, err)
					continue
				}
				t.Transformer.Paths = append(t.Transformer.Paths, pathEntry{Name: k, Path: p})
			}
		}
	}
	if inputs > 1 {
		fail("the target has more than one of Input, InputPath and InputTransformer")
	}
	if rp := v.get("RetryPolicy"); rp != nil {
		var err error
		if t.MaxRetries, err = optInt(rp, "MaximumRetryAttempts"); err != nil {
			fail("RetryPolicy.MaximumRetryAttempts: %v", err)
		}
		if t.MaxAge, err = optInt(rp, "MaximumEventAgeInSeconds"); err != nil {
			fail("RetryPolicy.MaximumEventAgeInSeconds: %v", err)
		}
	}
	if dl := v.get("DeadLetterConfig"); dl != nil {
		if a, ok := str("Arn", dl); ok {
			t.DeadLetter = a
		}
	}
	if sq := v.get("SqsParameters"); sq != nil {
		if g, ok := str("MessageGroupId", sq); ok {
			t.SQSGroup = &g
		}
	}
	if kp := v.get("KinesisParameters"); kp != nil {
		if k, ok := str("PartitionKeyPath", kp); ok {
			t.KinesisKey = &k
		}
	}
	if ep := v.get("EcsParameters"); ep != nil {
		ecs, err := readECS(ep)
		if err != nil {
			fail("EcsParameters: %v", err)
		}
		t.ECS = ecs
	}
	for _, k := range v.keys {
		if !slices.Contains(targetKeys, k) {
			t.Unsupported = append(t.Unsupported, k)
		}
	}
}

// readECS reads EcsParameters, in CloudFormation's spelling (TagList,
// PlacementStrategies, AwsVpcConfiguration, CapacityProvider) or the
// API's (Tags, PlacementStrategy, awsvpcConfiguration, capacityProvider).
func readECS(v *value) (*ebECS, error) {
	if v.kind != kObject {
		return nil, fmt.Errorf("%s, not an object", v.kind)
	}
	e := &ebECS{}
	str := func(in *value, key string) (text, error) {
		x := in.getFold(key)
		if x == nil {
			return nil, nil
		}
		t, err := asText(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return t, nil
	}
	strs := func(in *value, key string) ([]text, error) {
		x := in.getFold(key)
		if x == nil {
			return nil, nil
		}
		if x.kind != kArray {
			return nil, fmt.Errorf("%s is %s, not a list", key, x.kind)
		}
		var out []text
		for _, el := range x.vals {
			t, err := asText(el)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			out = append(out, t)
		}
		return out, nil
	}
	var err error
	if e.TaskDefinition, err = str(v, "TaskDefinitionArn"); err != nil {
		return nil, err
	}
	if e.TaskDefinition.plain() == "" {
		return nil, fmt.Errorf("no TaskDefinitionArn")
	}
	if e.Count, err = optInt(v, "TaskCount"); err != nil {
		return nil, fmt.Errorf("TaskCount: %w", err)
	}
	lt, err := str(v, "LaunchType")
	if err != nil {
		return nil, err
	}
	e.LaunchType = lt.plain()
	if e.PlatformVersion, err = str(v, "PlatformVersion"); err != nil {
		return nil, err
	}
	if e.Group, err = str(v, "Group"); err != nil {
		return nil, err
	}
	pt, err := str(v, "PropagateTags")
	if err != nil {
		return nil, err
	}
	e.PropagateTags = pt.plain()
	if x := v.getFold("EnableExecuteCommand"); x != nil {
		if e.EnableExecuteCommand, err = asBool(x); err != nil {
			return nil, fmt.Errorf("EnableExecuteCommand: %w", err)
		}
	}
	if nc := v.getFold("NetworkConfiguration"); nc != nil {
		av := nc.getFold("AwsVpcConfiguration")
		if av == nil {
			return nil, fmt.Errorf("NetworkConfiguration has no AwsVpcConfiguration")
		}
		if e.Subnets, err = strs(av, "Subnets"); err != nil {
			return nil, err
		}
		if e.SecurityGroups, err = strs(av, "SecurityGroups"); err != nil {
			return nil, err
		}
		ip, err := str(av, "AssignPublicIp")
		if err != nil {
			return nil, err
		}
		e.AssignPublicIP = ip.plain()
	}
	if cps := v.getFold("CapacityProviderStrategy"); cps != nil {
		if cps.kind != kArray {
			return nil, fmt.Errorf("CapacityProviderStrategy is %s, not a list", cps.kind)
		}
		for _, item := range cps.vals {
			name, err := str(item, "CapacityProvider")
			if err != nil {
				return nil, err
			}
			cp := ebCapacityProvider{Name: name}
			for _, f := range []struct {
				key string
				dst *int
			}{{"Weight", &cp.Weight}, {"Base", &cp.Base}} {
				if x := item.getFold(f.key); x != nil {
					n, err := asInt(x)
					if err != nil {
						return nil, fmt.Errorf("CapacityProviderStrategy %s: %w", f.key, err)
					}
					*f.dst = n
				}
			}
			e.CapacityProviders = append(e.CapacityProviders, cp)
		}
	}
	tags := v.get("TagList")
	if tags == nil {
		tags = v.get("Tags")
	}
	if tags != nil {
		if tags.kind != kArray {
			return nil, fmt.Errorf("tags are %s, not a list", tags.kind)
		}
		for _, tag := range tags.vals {
			k, err := str(tag, "Key")
			if err != nil {
				return nil, err
			}
			val, err := str(tag, "Value")
			if err != nil {
				return nil, err
			}
			e.Tags = append(e.Tags, pathEntry{Name: k.plain(), Path: val})
		}
	}
	for _, k := range []string{"EnableECSManagedTags", "PlacementConstraints", "PlacementStrategies", "PlacementStrategy", "ReferenceId"} {
		x := v.get(k)
		if x == nil || x.kind == kBool && !x.b || x.kind == kArray && len(x.vals) == 0 {
			continue // set to what the ecs_task target does anyway
		}
		e.Unsupported = append(e.Unsupported, k)
	}
	return e, nil
}

// asText reads a string (or a number or boolean, which CloudFormation
// takes for strings).
func asText(v *value) (text, error) {
	switch v.kind {
	case kString:
		return v.str, nil
	case kNumber:
		return lit(v.num), nil
	case kBool:
		return lit(strconv.FormatBool(v.b)), nil
	}
	return nil, fmt.Errorf("%s, not a string", v.kind)
}

// asInt reads an integer, written as a number or a string.
func asInt(v *value) (int, error) {
	var s string
	switch v.kind {
	case kNumber:
		s = v.num
	case kString:
		if !v.str.literal() {
			return 0, fmt.Errorf("%s is not known (it is read from the environment), and a number is needed", v.str.refs()[0].What)
		}
		s = v.str.plain()
	default:
		return 0, fmt.Errorf("%s, not a number", v.kind)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

func optInt(in *value, key string) (*int, error) {
	x := in.get(key)
	if x == nil {
		return nil, nil
	}
	n, err := asInt(x)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// asBool reads a boolean, written as one or as "true"/"false".
func asBool(v *value) (bool, error) {
	switch {
	case v.kind == kBool:
		return v.b, nil
	case v.kind == kString && v.str.literal():
		switch strings.ToLower(v.str.plain()) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s is not true or false", v.kind)
}
