// Package ecs is the ECS task-state source: it watches a cluster's tasks, or
// the task switchyard runs in, and emits "ECS Task State Change" events.
package ecs

import (
	"errors"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Config is a source of `type: ecs`. Set exactly one of Cluster and Task.
type Config struct {
	// Cluster is the cluster whose tasks are polled.
	Cluster string `yaml:"cluster"`
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

// Validate checks that one mode is chosen and the interval is sane.
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
	if c.Interval < time.Second {
		errs = append(errs, router.Fieldf("interval", "%s is too short: ECS API limits call for at least 1s", c.Interval))
	}
	return errors.Join(errs...)
}
