package config

import (
	"github.com/switchyard-dev/switchyard/internal/names"
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
}
