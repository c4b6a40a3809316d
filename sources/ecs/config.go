// Package ecs is the ECS task-state source. In cluster mode it polls a
// cluster's tasks (ListTasks, DescribeTasks) and emits an "ECS Task State
// Change" event, in the shape EventBridge delivers, for every change of a
// task's lastStatus. With `task: self` it reads the task metadata endpoint
// v4 of the task switchyard runs in and emits an "ECS Container State
// Change" event for every change of a sibling container's status or health.
//
// Each change is emitted until it is acked, and once acked it is not emitted
// again: what was acked is kept in a State, so a restarted source with the
// same State does not repeat itself.
package ecs

import (
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Config is a source of `type: ecs`. Set exactly one of Cluster and Task.
type Config struct {
	// Cluster is the cluster whose tasks are polled: a name or an ARN.
	Cluster string `yaml:"cluster"`
	// Family, in cluster mode, keeps only the tasks of this task
	// definition family. Empty: every family.
	Family string `yaml:"family"`
	// StartedBy, in cluster mode, keeps only the tasks started with this
	// startedBy value (as ecs_task targets set it). Empty: any.
	StartedBy string `yaml:"started_by"`
	// Task is "self" to watch the sibling containers of the task switchyard
	// runs in, through the task metadata endpoint.
	Task string `yaml:"task"`
	// Interval is the polling period. Default 10s.
	Interval time.Duration `yaml:"interval"`
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
}

var (
	familyRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`) })
	startedByRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9/_-]{1,128}$`) })
)

// Validate checks that one mode is chosen, that the filters fit it and
// what ECS accepts, and that the interval is sane.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Cluster == "" && c.Task == "":
		errs = append(errs, router.Fieldf("", "set cluster (to poll a cluster's tasks) or task: self"))
	case c.Cluster != "" && c.Task != "":
		errs = append(errs, router.Fieldf("task", "set either cluster or task, not both"))
	case c.Task != "" && c.Task != "self":
		errs = append(errs, router.Fieldf("task", "the only valid value is self, got %q", c.Task))
	}
	if c.Family != "" {
		if c.Cluster == "" {
			errs = append(errs, router.Fieldf("family", "filters the tasks of a cluster: set cluster, or remove family"))
		} else if !familyRE().MatchString(c.Family) {
			errs = append(errs, router.Fieldf("family", "%q is not a task definition family (up to 255 letters, digits, - and _)", c.Family))
		}
	}
	if c.StartedBy != "" {
		if c.Cluster == "" {
			errs = append(errs, router.Fieldf("started_by", "filters the tasks of a cluster: set cluster, or remove started_by"))
		} else if !startedByRE().MatchString(c.StartedBy) {
			errs = append(errs, router.Fieldf("started_by", "%q is not a startedBy value (up to 128 letters, digits, -, / and _)", c.StartedBy))
		}
	}
	if c.Interval < time.Second {
		errs = append(errs, router.Fieldf("interval", "%s is too short: ECS API limits call for at least 1s", c.Interval))
	}
	return errors.Join(errs...)
}
