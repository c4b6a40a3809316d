package config

import (
	"github.com/switchyard-dev/switchyard/sinks/eventbridge"
	kinesissink "github.com/switchyard-dev/switchyard/sinks/kinesis"
	snssink "github.com/switchyard-dev/switchyard/sinks/sns"
)

// arnRegions reports SNS topics, Kinesis streams and event buses, named by ARN, in
// another region than the one switchyard calls AWS in (aws.region, or, with
// it unset, the first such ARN's, standing for the SDK's): SNS publishes
// only to topics in the caller's region, and the Kinesis client sends a
// stream ARN of another region to its own region's endpoint, where the
// stream is not found; EventBridge refuses PutEvents for a bus of another
// region ("Cross-region api call is not allowed"). Either way every
// delivery would fail.
func (d *decoder) arnRegions(c *Config) {
	region, from := c.AWS.Region, "aws.region"
	check := func(path, what, arnRegion string) {
		switch {
		case d.failed[path] || arnRegion == "":
		case region == "":
			region, from = arnRegion, path
		case arnRegion != region && from == "aws.region":
			d.errorf(d.at(path), path, "the %s is in %s, but aws.region is %s, the one region switchyard calls AWS in: it cannot be reached; use one in %s", what, arnRegion, region, region)
		case arnRegion != region:
			d.errorf(d.at(path), path, "the %s is in %s, but %s is in %s: switchyard calls AWS in one region (aws.region, or the SDK's), so the two cannot both be reached", what, arnRegion, from, region)
		}
	}
	for i, t := range c.Targets {
		switch tc := t.Config.(type) {
		case *snssink.Config:
			if topic, err := snssink.ParseTopicARN(tc.TopicARN); err == nil {
				check(indexPath("targets", i)+".topic_arn", "topic", topic.Region)
			}
		case *kinesissink.Config:
			if tc.StreamARN == "" {
				continue
			}
			if st, err := kinesissink.ParseStreamARN(tc.StreamARN); err == nil {
				check(indexPath("targets", i)+".stream_arn", "stream", st.Region)
			}
		case *eventbridge.Config:
			if b, err := eventbridge.ParseBus(tc.Bus); err == nil {
				check(indexPath("targets", i)+".bus", "event bus", b.Region)
			}
		}
	}
}
