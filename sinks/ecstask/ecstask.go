package ecstask

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/router"
)

// API is the part of the ECS client the sink uses; *ecs.Client has it. The
// client should not retry (aws.NopRetryer): the policy does.
type API interface {
	RunTask(context.Context, *ecs.RunTaskInput, ...func(*ecs.Options)) (*ecs.RunTaskOutput, error)
}

// Sink launches tasks with RunTask, idempotently.
type Sink struct {
	name string
	cfg  Config
	api  API
}

// New returns a sink for cfg (defaults applied). It starts nothing.
func New(name string, cfg Config, api API) *Sink {
	return &Sink{name: name, cfg: cfg, api: api}
}

var _ router.Sink = (*Sink)(nil)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// Deliver launches the configured task once. Each container the target
// overrides gets the delivery's trace context (OutboundTrace) in its
// environment: AWS_XRAY_TRACE_ID (X-Ray form) and TRACEPARENT (W3C form),
// unless its configured environment sets them; containers not overridden
// get none: switchyard does not know the task definition's containers (an
// override naming a container the definition lacks fails the launch). Its clientToken is the
// delivery id while the outcome of earlier attempts is unknown; after an
// attempt that definitely launched nothing, the delivery's generation is
// bumped and the next token differs.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	in := s.input(d)
	out, err := s.api.RunTask(ctx, in)
	if err != nil {
		err = classify(err)
		if router.ClassOf(err) == router.Throttled {
			d.Generation++ // a throttled call launched nothing
		}
		return fmt.Errorf("ecs_task %s: RunTask: %w", s.name, err)
	}
	if len(out.Tasks) > 0 {
		return nil // launched (all of them, or some with failures: a retry would not help)
	}
	if len(out.Failures) == 0 {
		return router.RetryableError(fmt.Errorf("ecs_task %s: RunTask returned neither tasks nor failures", s.name), 0)
	}
	d.Generation++ // failures only: nothing was launched
	return failuresError(s.name, out.Failures)
}

// input builds the RunTask request for a delivery.
func (s *Sink) input(d *router.Delivery) *ecs.RunTaskInput {
	c := &s.cfg
	token := d.ID
	if d.Generation > 0 {
		token += "-" + strconv.Itoa(d.Generation)
	}
	in := &ecs.RunTaskInput{
		TaskDefinition:       aws.String(c.TaskDefinition),
		ClientToken:          aws.String(token),
		Count:                aws.Int32(int32(c.Count)),
		StartedBy:            aws.String(StartedBy(d.Rule)),
		EnableExecuteCommand: c.EnableExecuteCommand,
		Tags:                 s.tags(d),
	}
	if c.Cluster != "" {
		in.Cluster = aws.String(c.Cluster)
	}
	if c.LaunchType != "" {
		in.LaunchType = types.LaunchType(c.LaunchType)
	}
	for _, cp := range c.CapacityProviderStrategy {
		in.CapacityProviderStrategy = append(in.CapacityProviderStrategy, types.CapacityProviderStrategyItem{
			CapacityProvider: aws.String(cp.CapacityProvider), Weight: int32(cp.Weight), Base: int32(cp.Base),
		})
	}
	if len(c.Network.Subnets) > 0 {
		assign := types.AssignPublicIpDisabled
		if c.Network.AssignPublicIP {
			assign = types.AssignPublicIpEnabled
		}
		in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: c.Network.Subnets, SecurityGroups: c.Network.SecurityGroups, AssignPublicIp: assign,
		}}
	}
	if c.PlatformVersion != "" {
		in.PlatformVersion = aws.String(c.PlatformVersion)
	}
	if c.Group != "" {
		in.Group = aws.String(c.Group)
	}
	if c.PropagateTags != "" {
		in.PropagateTags = types.PropagateTags(c.PropagateTags)
	}
	if c.TaskRoleARN != "" || c.ExecutionRoleARN != "" {
		in.Overrides = &types.TaskOverride{}
		if c.TaskRoleARN != "" {
			in.Overrides.TaskRoleArn = aws.String(c.TaskRoleARN)
		}
		if c.ExecutionRoleARN != "" {
			in.Overrides.ExecutionRoleArn = aws.String(c.ExecutionRoleARN)
		}
	}
	if len(c.ContainerOverrides) > 0 {
		vars := router.DeliveryValues(d)
		trace := traceEnv(d.OutboundTrace())
		if in.Overrides == nil {
			in.Overrides = &types.TaskOverride{}
		}
		for _, o := range c.ContainerOverrides {
			co := types.ContainerOverride{Name: aws.String(o.Name)}
			for _, arg := range o.Command {
				co.Command = append(co.Command, fill(arg, vars))
			}
			for _, k := range sortedKeys(o.Environment) {
				co.Environment = append(co.Environment, types.KeyValuePair{Name: aws.String(k), Value: aws.String(fill(o.Environment[k], vars))})
			}
			for _, kv := range trace {
				if _, mine := o.Environment[kv.name]; !mine {
					co.Environment = append(co.Environment, types.KeyValuePair{Name: aws.String(kv.name), Value: aws.String(kv.value)})
				}
			}
			if o.CPU > 0 {
				co.Cpu = aws.Int32(int32(o.CPU))
			}
			if o.Memory > 0 {
				co.Memory = aws.Int32(int32(o.Memory))
			}
			in.Overrides.ContainerOverrides = append(in.Overrides.ContainerOverrides, co)
		}
	}
	return in
}

// Environment variables that carry the trace context into the containers
// a target overrides.
const (
	EnvXRayTraceID = "AWS_XRAY_TRACE_ID"
	EnvTraceParent = "TRACEPARENT"
	EnvTraceState  = "TRACESTATE"
)

// traceEnv is the trace context as environment variables: the X-Ray form
// as AWS_XRAY_TRACE_ID, the W3C form as TRACEPARENT (and TRACESTATE), each
// left out when t has no such form.
func traceEnv(t router.TraceContext) []struct{ name, value string } {
	var env []struct{ name, value string }
	if x := t.XRayHeader(); x != "" {
		env = append(env, struct{ name, value string }{EnvXRayTraceID, x})
	}
	if tp := t.W3C(); tp != "" {
		env = append(env, struct{ name, value string }{EnvTraceParent, tp})
		if t.TraceState != "" && t.TraceParent != "" {
			env = append(env, struct{ name, value string }{EnvTraceState, t.TraceState})
		}
	}
	return env
}

// tags are the configured tags and switchyard's own, which trace a task
// back to the event that launched it.
func (s *Sink) tags(d *router.Delivery) []types.Tag {
	var tags []types.Tag
	for _, k := range sortedKeys(s.cfg.Tags) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(s.cfg.Tags[k])})
	}
	own := []struct{ k, v string }{
		{"switchyard:event-id", eventID(d)},
		{"switchyard:delivery-id", d.ID},
		{"switchyard:rule", d.Rule},
		{"switchyard:message-id", d.Message.ID},
	}
	for _, t := range own {
		if v := tagValue(t.v); v != "" {
			tags = append(tags, types.Tag{Key: aws.String(t.k), Value: aws.String(v)})
		}
	}
	return tags
}

func eventID(d *router.Delivery) string {
	if d.Message.Event != nil {
		return d.Message.Event.ID
	}
	return ""
}

// StartedBy is the startedBy of tasks a rule launches: switchyard/RULE,
// with characters ECS does not allow replaced by _, at most 128.
func StartedBy(rule string) string {
	s := "switchyard/" + strings.Map(startedByRune, rule)
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// startedByRune keeps what startedBy allows (letters and digits of ASCII,
// _, / and -) and makes anything else _.
func startedByRune(r rune) rune {
	if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '/' || r == '-' {
		return r
	}
	return '_'
}

// tagValue is v as a tag value: characters tags do not allow made _, at
// most 256 bytes. It is on every RunTask's path, so it is a rune map, not
// a regular expression.
func tagValue(v string) string {
	v = strings.Map(tagRune, v)
	if len(v) > 256 {
		v = v[:256]
	}
	return v
}

// tagRune keeps what tags allow (letters, separators and numbers of any
// script, and _.:/=+-@) and makes anything else _.
func tagRune(r rune) rune {
	if unicode.IsLetter(r) || unicode.In(r, unicode.Z) || unicode.IsNumber(r) || strings.ContainsRune("_.:/=+-@", r) {
		return r
	}
	return '_'
}

var placeholderRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<[A-Za-z0-9_.\-]+>`) }) // compiled on first use

// fill replaces <name> placeholders that have a value; others stay.
func fill(s string, vars map[string]string) string {
	return placeholderRE().ReplaceAllStringFunc(s, func(p string) string {
		if v, ok := vars[p[1:len(p)-1]]; ok {
			return v
		}
		return p
	})
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// classify turns a RunTask error into a delivery error. A throttle or a
// rejected request launched nothing; a 5xx or a lost connection may have.
func classify(err error) error { return awserr.Classify(err, runTaskCodes) }

var runTaskCodes = awserr.Codes{
	Throttled: []string{"ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"},
	Permanent: []string{"ClientException", "InvalidParameterException", "ClusterNotFoundException", "AccessDeniedException",
		"PlatformUnknownException", "PlatformTaskDefinitionIncompatibilityException", "UnsupportedFeatureException",
		"BlockedException", "ConflictException", "UnrecognizedClientException", "InvalidSignatureException"},
	Retryable: []string{"ServerException"},
}

// failuresError classifies RunTask failures: a lack of capacity or an
// unavailable agent is worth another try, anything else (a missing or
// unplaceable definition) is not.
func failuresError(name string, fs []types.Failure) error {
	var reasons []string
	retryable := false
	for _, f := range fs {
		r := aws.ToString(f.Reason)
		if d := aws.ToString(f.Detail); d != "" {
			r += " (" + d + ")"
		}
		reasons = append(reasons, r)
		reason := strings.ToUpper(aws.ToString(f.Reason))
		if strings.HasPrefix(reason, "RESOURCE") || strings.HasPrefix(reason, "AGENT") || strings.Contains(reason, "CAPACITY") {
			retryable = true
		}
	}
	err := fmt.Errorf("ecs_task %s: RunTask launched nothing: %s", name, strings.Join(reasons, "; "))
	if retryable {
		return router.RetryableError(err, 0)
	}
	return router.PermanentError(err)
}
