// Package ecstask is the ECS task target: it launches a task with RunTask
// for each delivery, idempotently.
package ecstask

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: ecs_task`.
type Config struct {
	// Cluster is the cluster to launch in. Default: the default cluster.
	Cluster string `yaml:"cluster"`
	// TaskDefinition is FAMILY, FAMILY:REVISION or an ARN. Required.
	TaskDefinition string `yaml:"task_definition"`
	// LaunchType is EC2, FARGATE or EXTERNAL. Set it or
	// CapacityProviderStrategy, not both.
	LaunchType string `yaml:"launch_type"`
	// CapacityProviderStrategy places the task on capacity providers.
	CapacityProviderStrategy []CapacityProvider `yaml:"capacity_provider_strategy"`
	// Network is the awsvpc network configuration (required by FARGATE).
	Network Network `yaml:"network"`
	// PlatformVersion is the Fargate platform version. Default: LATEST.
	PlatformVersion string `yaml:"platform_version"`
	// Count is how many tasks each delivery launches, 1 to 10. Default 1.
	Count int `yaml:"count"`
	// Group is the task group. Default: family:<task definition family>.
	Group string `yaml:"group"`
	// PropagateTags copies tags from TASK_DEFINITION or SERVICE.
	PropagateTags string `yaml:"propagate_tags"`
	// EnableExecuteCommand turns on ECS Exec for the tasks.
	EnableExecuteCommand bool `yaml:"enable_execute_command"`
	// Tags are added to every task, besides switchyard's own.
	Tags map[string]string `yaml:"tags"`
	// TaskRoleARN overrides the task definition's task role, the role the
	// task's containers use. Default: the task definition's. Naming it
	// also lets `switchyard iam-policy` grant iam:PassRole on exactly it.
	TaskRoleARN string `yaml:"task_role_arn"`
	// ExecutionRoleARN overrides the task definition's execution role, the
	// role ECS uses to pull images and write logs. Default: the task
	// definition's.
	ExecutionRoleARN string `yaml:"execution_role_arn"`
	// ContainerOverrides change containers of the task. Their strings may
	// use <name> placeholders: the top-level fields of the delivery's
	// payload (the rule's input), and <switchyard.delivery-id>,
	// <switchyard.event-id>, <switchyard.rule>.
	ContainerOverrides []ContainerOverride `yaml:"container_overrides"`
}

// CapacityProvider is one entry of a capacity provider strategy.
type CapacityProvider struct {
	CapacityProvider string `yaml:"capacity_provider"`
	Weight           int    `yaml:"weight"`
	Base             int    `yaml:"base"`
}

// Network is an awsvpc network configuration.
type Network struct {
	Subnets        []string `yaml:"subnets"`
	SecurityGroups []string `yaml:"security_groups"`
	AssignPublicIP bool     `yaml:"assign_public_ip"`
}

// ContainerOverride changes one container of the launched task.
type ContainerOverride struct {
	// Name is the container's name in the task definition. Required.
	Name string `yaml:"name"`
	// Command replaces the container's command.
	Command []string `yaml:"command"`
	// Environment adds or replaces environment variables.
	Environment map[string]string `yaml:"environment"`
	// CPU and Memory (MiB) override the container's reservations.
	CPU    int `yaml:"cpu"`
	Memory int `yaml:"memory"`
}

var (
	tagRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`) })
	roleRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	})
)

// SetDefaults fills the defaults; the rest are ECS's own.
func (c *Config) SetDefaults() {
	if c.Count == 0 {
		c.Count = 1
	}
}

// Validate checks the fields RunTask would reject.
func (c *Config) Validate() error {
	var errs []error
	if err := names.CheckTaskDefinition(c.TaskDefinition); err != nil {
		errs = append(errs, router.Fieldf("task_definition", "%v", err))
	}
	switch c.LaunchType {
	case "", "EC2", "FARGATE", "EXTERNAL":
	default:
		errs = append(errs, router.Fieldf("launch_type", "unknown launch type %q (valid: EC2, FARGATE, EXTERNAL)", c.LaunchType))
	}
	if c.LaunchType != "" && len(c.CapacityProviderStrategy) > 0 {
		errs = append(errs, router.Fieldf("capacity_provider_strategy", "set launch_type or capacity_provider_strategy, not both"))
	}
	for i, cp := range c.CapacityProviderStrategy {
		p := "capacity_provider_strategy[" + strconv.Itoa(i) + "]"
		if cp.CapacityProvider == "" {
			errs = append(errs, router.Fieldf(p+".capacity_provider", "required"))
		}
		if cp.Weight < 0 || cp.Weight > 1000 {
			errs = append(errs, router.Fieldf(p+".weight", "%d is outside ECS's range of 0 to 1000", cp.Weight))
		}
		if cp.Base < 0 || cp.Base > 100000 {
			errs = append(errs, router.Fieldf(p+".base", "%d is outside ECS's range of 0 to 100000", cp.Base))
		}
	}
	if c.Count < 1 || c.Count > 10 {
		errs = append(errs, router.Fieldf("count", "%d is outside RunTask's range of 1 to 10", c.Count))
	}
	switch c.PropagateTags {
	case "", "TASK_DEFINITION", "SERVICE", "NONE":
	default:
		errs = append(errs, router.Fieldf("propagate_tags", "unknown value %q (valid: TASK_DEFINITION, SERVICE, NONE)", c.PropagateTags))
	}
	if len(c.Group) > 255 {
		errs = append(errs, router.Fieldf("group", "longer than ECS's limit of 255 characters"))
	}
	if len(c.Tags) > 40 {
		errs = append(errs, router.Fieldf("tags", "%d tags: switchyard adds 4 of its own to ECS's limit of 50", len(c.Tags)))
	}
	for k, v := range c.Tags {
		switch {
		case k == "" || len(k) > 128 || !tagRE().MatchString(k):
			errs = append(errs, router.Fieldf("tags", "invalid tag key %q: 1 to 128 letters, digits, spaces and _.:/=+-@", k))
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			errs = append(errs, router.Fieldf("tags", "tag key %q: the aws: prefix is reserved", k))
		case len(v) > 256 || !tagRE().MatchString(v) && v != "":
			errs = append(errs, router.Fieldf("tags", "invalid value of tag %q: up to 256 letters, digits, spaces and _.:/=+-@", k))
		}
	}
	for _, r := range []struct{ key, arn string }{{"task_role_arn", c.TaskRoleARN}, {"execution_role_arn", c.ExecutionRoleARN}} {
		if r.arn != "" && !roleRE().MatchString(r.arn) {
			errs = append(errs, router.Fieldf(r.key, "%q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", r.arn))
		}
	}
	if c.LaunchType == "FARGATE" && len(c.Network.Subnets) == 0 {
		errs = append(errs, router.Fieldf("network.subnets", "FARGATE tasks need at least one subnet"))
	}
	if len(c.Network.Subnets) > 16 {
		errs = append(errs, router.Fieldf("network.subnets", "at most 16 subnets, got %d", len(c.Network.Subnets)))
	}
	if len(c.Network.SecurityGroups) > 5 {
		errs = append(errs, router.Fieldf("network.security_groups", "at most 5 security groups, got %d", len(c.Network.SecurityGroups)))
	}
	if len(c.Network.Subnets) == 0 && (len(c.Network.SecurityGroups) > 0 || c.Network.AssignPublicIP) {
		errs = append(errs, router.Fieldf("network.subnets", "required when the network section is used"))
	}
	seen := map[string]bool{}
	for i, o := range c.ContainerOverrides {
		p := "container_overrides[" + strconv.Itoa(i) + "]"
		switch {
		case o.Name == "":
			errs = append(errs, router.Fieldf(p+".name", "required (the container's name in the task definition)"))
		case seen[o.Name]:
			errs = append(errs, router.Fieldf(p+".name", "container %q is overridden twice", o.Name))
		}
		seen[o.Name] = true
		for k := range o.Environment {
			if k == "" || strings.ContainsAny(k, "= \t") {
				errs = append(errs, router.Fieldf(p+".environment", "invalid variable name %q", k))
			}
		}
		if o.CPU < 0 || o.Memory < 0 {
			errs = append(errs, router.Fieldf(p, "cpu and memory must not be negative"))
		}
	}
	return errors.Join(errs...)
}
