package config

import (
	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/sinks/eventbridge"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

// queueRegions reports SQS queues in another region than the one
// switchyard calls SQS in: its SQS client is made for one region
// (aws.region, or the SDK's when that is unset), and a queue URL naming
// another one is not reachable through it. With aws.region unset, the
// first queue's region stands for the SDK's, so queues in two regions are
// reported. URLs whose host names no region (a local endpoint) are skipped.
func (d *decoder) queueRegions(c *Config) {
	region, from := c.AWS.Region, "aws.region"
	check := func(path, url string) {
		q, err := names.ParseQueueURL(url)
		if err != nil || q.Region == "" || d.failed[path] {
			return // reported as invalid, or no region to compare
		}
		switch {
		case region == "":
			region, from = q.Region, path
		case q.Region != region && from == "aws.region":
			d.errorf(d.at(path), path, "the queue is in %s, but aws.region is %s, the one region switchyard calls SQS in: this queue cannot be reached; use a queue in %s", q.Region, region, region)
		case q.Region != region:
			d.errorf(d.at(path), path, "the queue is in %s, but %s is in %s: switchyard calls SQS in one region (aws.region, or the SDK's), so the two cannot both be reached", q.Region, from, region)
		}
	}
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
	d.busRegions(c)
}

// busRegions reports event buses named by an ARN of another region than
// aws.region: EventBridge refuses PutEvents for them ("Cross-region api
// call is not allowed"). Without aws.region the SDK's region is not known
// here, and nothing is reported.
func (d *decoder) busRegions(c *Config) {
	if c.AWS.Region == "" {
		return
	}
	for i, t := range c.Targets {
		tc, ok := t.Config.(*eventbridge.Config)
		path := indexPath("targets", i) + ".bus"
		if !ok || d.failed[path] {
			continue
		}
		if b, err := eventbridge.ParseBus(tc.Bus); err == nil && b.Region != "" && b.Region != c.AWS.Region {
			d.errorf(d.at(path), path, "the event bus is in %s, but aws.region is %s, the one region switchyard calls EventBridge in, and PutEvents takes no bus of another region; put on a bus in %s (a rule there can forward to %s)", b.Region, c.AWS.Region, c.AWS.Region, b.Region)
		}
	}
}
