package config

import (
	"github.com/switchyard-dev/switchyard/internal/names"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
	"github.com/switchyard-dev/switchyard/sinks/stepfunctions"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

// queueRegions reports SQS queues in another region than the one
// switchyard calls SQS in: its SQS client is made for one region
// (aws.region, or the SDK's when that is unset), and a queue URL naming
// another one is not reachable through it. With aws.region unset, the
// first queue's region stands for the SDK's, so queues in two regions are
// reported. URLs whose host names no region (a local endpoint) are skipped.
func (d *decoder) queueRegions(c *Config) {
	check := d.oneRegion(c, "SQS", "queue", queueRegion)
	for i, s := range c.Sources {
		if sc, ok := s.Config.(*sqssource.Config); ok {
			check(indexPath("sources", i)+".queue_url", sc.QueueURL)
		}
	}
	for i, t := range c.Targets {
		if tc, ok := t.Config.(*sqssink.Config); ok {
			check(indexPath("targets", i)+".queue_url", tc.QueueURL)
		}
	}
}

// stateMachineRegions reports, as queueRegions does for queues, state
// machines in another region than the one switchyard calls Step Functions
// in.
func (d *decoder) stateMachineRegions(c *Config) {
	check := d.oneRegion(c, "Step Functions", "state machine", stateMachineRegion)
	for i, t := range c.Targets {
		if tc, ok := t.Config.(*stepfunctions.Config); ok {
			check(indexPath("targets", i)+".state_machine", tc.StateMachine)
		}
	}
}

func queueRegion(url string) string {
	q, err := names.ParseQueueURL(url)
	if err != nil {
		return ""
	}
	return q.Region
}

func stateMachineRegion(arn string) string {
	m, err := names.ParseStateMachineARN(arn)
	if err != nil {
		return ""
	}
	return m.Region
}

// oneRegion returns a check that the resource named by value at path,
// whose region regionOf tells ("" when value is invalid or names none), is
// in the one region switchyard calls service in: aws.region, or, with that
// unset, the first such resource's region, standing for the SDK's.
func (d *decoder) oneRegion(c *Config, service, what string, regionOf func(string) string) func(path, value string) {
	region, from := c.AWS.Region, "aws.region"
	return func(path, value string) {
		r := regionOf(value)
		if r == "" || d.failed[path] {
			return // reported as invalid, or no region to compare
		}
		switch {
		case region == "":
			region, from = r, path
		case r != region && from == "aws.region":
			d.errorf(d.at(path), path, "the %s is in %s, but aws.region is %s, the one region switchyard calls %s in: this %s cannot be reached; use a %s in %s", what, r, region, service, what, what, region)
		case r != region:
			d.errorf(d.at(path), path, "the %s is in %s, but %s is in %s: switchyard calls %s in one region (aws.region, or the SDK's), so the two cannot both be reached", what, r, from, region, service)
		}
	}
}
