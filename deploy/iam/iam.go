// Package iam renders the least-privilege IAM policy a validated config
// needs: exactly the AWS actions its sources and targets call, on exactly the
// resources the config names. It renders; it never calls AWS.
package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/backlog"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/names"
	ecssource "github.com/switchyard-dev/switchyard/sources/ecs"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"

	"github.com/switchyard-dev/switchyard/sinks/ecstask"
	"github.com/switchyard-dev/switchyard/sinks/eventbridge"
	kinesissink "github.com/switchyard-dev/switchyard/sinks/kinesis"
	"github.com/switchyard-dev/switchyard/sinks/lambda"
	snssink "github.com/switchyard-dev/switchyard/sinks/sns"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
	"github.com/switchyard-dev/switchyard/sinks/stepfunctions"
)

// Version is the IAM policy language version every Document has.
const Version = "2012-10-17"

// ManagedPolicyLimit is the most characters, white space not counted, that
// a customer managed policy may have. (Inline policies of one role may have
// 10,240 together.)
const ManagedPolicyLimit = 6144

// Document is an IAM policy document. It marshals to the IAM policy
// grammar: {"Version": ..., "Statement": [...]}.
type Document struct {
	// Version is always Version.
	Version string `json:"Version"`
	// Statement lists the grants, in a fixed order (sources, then targets),
	// each with a stable Sid. A config that calls no AWS API has none: IAM
	// rejects such a document, so callers should leave the policy out.
	Statement []Statement `json:"Statement"`
	// Notes say where the policy is broader than the config's resources
	// because the config cannot say more, and how to narrow it. They are not
	// part of the document.
	Notes []string `json:"-"`
}

// Statement is one Allow statement. Action, Resource and the values of
// Condition are sorted and free of duplicates.
type Statement struct {
	Sid       string    `json:"Sid"`
	Effect    string    `json:"Effect"`
	Action    []string  `json:"Action"`
	Resource  []string  `json:"Resource"`
	Condition Condition `json:"Condition,omitempty"`
}

// Condition maps a condition operator (ArnEquals, StringEquals) to
// condition keys and the values any of which satisfies the key.
type Condition map[string]map[string][]string

// Size is the document's length as IAM counts it against its limits: its
// JSON without white space.
func (d *Document) Size() int {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return 0 // a Document always encodes
	}
	return len(bytes.TrimSpace(b.Bytes()))
}

// Statement ids, in the order the statements appear. RunTask statements
// are one per cluster, their Sids RunTasksIn<Cluster>.
const (
	sidReceive       = "ReceiveFromSourceQueues"
	sidListTasks     = "ListClusterTasks"
	sidDescribeTasks = "DescribeClusterTasks"
	sidSend          = "SendToTargetQueues"
	sidBacklog       = "UseTargetBacklogQueues"
	sidInvoke        = "InvokeFunctions"
	sidInvokeQual    = "InvokeFunctionVersionsAndAliases"
	sidRunTasks      = "RunTasksIn"
	sidTag           = "TagLaunchedTasks"
	sidPassRole      = "PassRolesToTasks"
	sidStartExec     = "StartExecutions"
	sidDescribeExec  = "DescribeExecutions"
	sidStartSync     = "StartSyncExecutions"
	sidPutEvents     = "PutEventsOnBuses"
)

// Statement ids of the SNS and Kinesis targets, after those above.
const (
	sidPublish    = "PublishToTopics"
	sidPutRecords = "PutRecordsToStreams"
)

var sidOrder = []string{sidReceive, sidListTasks, sidDescribeTasks, sidSend, sidBacklog, sidInvoke, sidInvokeQual, sidRunTasks, sidTag, sidPassRole,
	sidStartExec, sidDescribeExec, sidStartSync, sidPublish, sidPutRecords, sidPutEvents}

func rank(sid string) int {
	for i, s := range sidOrder {
		if sid == s || s == sidRunTasks && strings.HasPrefix(sid, s) {
			return i
		}
	}
	return len(sidOrder)
}

// Policy returns the least-privilege policy for cfg, which must be a
// validated config (config.Load's). Every source counts; a target counts
// when a rule delivers to it, or it receives dead letters of a target or
// source that counts. Where the config leaves the region of a resource
// open (no aws.region, and a name rather than a URL or ARN), its ARN has
// `*` for the region and the partition aws; where it leaves the account
// open, `*` for the account. An error means the config names something
// this package cannot turn into an ARN, or has a source or target type
// whose permissions it does not know.
func Policy(cfg *config.Config) (*Document, error) {
	b := &builder{region: cfg.AWS.Region, stmts: map[string]*Statement{}, runTasks: map[string]map[string]bool{}}
	var errs []error
	for i, s := range cfg.Sources {
		if err := b.source(s); err != nil {
			errs = append(errs, fmt.Errorf("sources[%d] %s: %w", i, s.Name, err))
		}
	}
	used := usedTargets(cfg)
	for i, t := range cfg.Targets {
		if t.Backlog != nil && t.Backlog.Type == backlog.TypeSQS {
			// internal/backlog: GetQueueAttributes at start and for its
			// depth; SendMessage to push; the SQS source's calls to drain.
			// A backlog is opened whether or not a rule uses its target.
			arn, err := b.queueARN(t.Backlog.QueueURL)
			if err != nil {
				errs = append(errs, fmt.Errorf("targets[%d] %s: backlog: %w", i, t.Name, err))
			} else {
				b.add(sidBacklog, []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"}, arn, nil)
			}
		}
		if !used[t.Name] {
			continue
		}
		if err := b.target(t); err != nil {
			errs = append(errs, fmt.Errorf("targets[%d] %s: %w", i, t.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b.document(), nil
}

// usedTargets are the targets deliveries can reach: those of rules, and
// the dead-letter targets of sources and of reachable targets' policies.
func usedTargets(cfg *config.Config) map[string]bool {
	byName := map[string]config.Target{}
	for _, t := range cfg.Targets {
		byName[t.Name] = t
	}
	used := map[string]bool{}
	var queue []string
	use := func(name string) {
		if name != "" && !used[name] {
			used[name] = true
			queue = append(queue, name)
		}
	}
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			use(t)
		}
	}
	for _, s := range cfg.Sources {
		if dl, ok := s.Config.(interface{ DeadLetterTarget() string }); ok {
			use(dl.DeadLetterTarget())
		}
	}
	for len(queue) > 0 {
		t := byName[queue[0]]
		queue = queue[1:]
		if p := cfg.Policies[t.Policy]; p != nil {
			use(p.DeadLetter)
		}
	}
	return used
}

type builder struct {
	region string // aws.region, or ""
	stmts  map[string]*Statement
	// runTasks maps a cluster ARN to the task definition ARNs launched in
	// it; each cluster gets its own statement, so that a task definition
	// may be launched only where the config launches it.
	runTasks map[string]map[string]bool
	notes    []string
}

func (b *builder) source(s config.Source) error {
	switch c := s.Config.(type) {
	case *sqssource.Config:
		// sources/sqs: GetQueueAttributes at Open; ReceiveMessage;
		// DeleteMessageBatch (authorised as sqs:DeleteMessage);
		// ChangeMessageVisibility and its batch (sqs:ChangeMessageVisibility).
		arn, err := b.queueARN(c.QueueURL)
		if err != nil {
			return err
		}
		b.add(sidReceive, []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}, arn, nil)
	case *ecssource.Config:
		if c.Cluster == "" {
			return nil // task: self reads the task metadata endpoint, which needs no IAM
		}
		cl, err := b.cluster(c.Cluster, arnParts{})
		if err != nil {
			return err
		}
		onCluster := Condition{"ArnEquals": {"ecs:cluster": {cl.arn()}}}
		// ListTasks is authorised on container instances, which a listing of
		// a whole cluster does not name: the cluster condition scopes it.
		b.add(sidListTasks, []string{"ecs:ListTasks"}, "*", onCluster)
		b.add(sidDescribeTasks, []string{"ecs:DescribeTasks"}, cl.tasks(), onCluster)
	default:
		switch s.Type {
		case "http", "nats":
			return nil
		}
		return fmt.Errorf("source type %q: its IAM permissions are unknown", s.Type)
	}
	return nil
}

func (b *builder) target(t config.Target) error {
	switch c := t.Config.(type) {
	case *sqssink.Config:
		// sinks/sqs sends one message per delivery (SendMessage; a
		// SendMessageBatch would be authorised by sqs:SendMessage too).
		arn, err := b.queueARN(c.QueueURL)
		if err != nil {
			return err
		}
		b.add(sidSend, []string{"sqs:SendMessage"}, arn, nil)
	case *lambda.Config:
		fn, err := names.ParseFunction(c.Function)
		if err != nil {
			return err
		}
		p := b.fill(arnParts{partition: fn.Partition, region: fn.Region, account: fn.Account})
		arn := p.arn("lambda", "function:"+fn.Name)
		// An unqualified ARN in a policy grants only unqualified calls; a
		// call with a version or alias is authorised on that qualified ARN.
		switch q := cmpOr(c.Qualifier, fn.Qualifier); q {
		case "":
			b.add(sidInvoke, []string{"lambda:InvokeFunction"}, arn, nil)
		default:
			b.add(sidInvokeQual, []string{"lambda:InvokeFunction"}, arn+":"+q, nil)
		}
	case *ecstask.Config:
		return b.ecsTask(t.Name, c)
	case *snssink.Config:
		// sinks/sns: Publish, authorised on the topic.
		topic, err := snssink.ParseTopicARN(c.TopicARN)
		if err != nil {
			return fmt.Errorf("topic_arn: %w", err)
		}
		p := arnParts{partition: topic.Partition, region: topic.Region, account: topic.Account}
		b.add(sidPublish, []string{"sns:Publish"}, p.arn("sns", topic.Name), nil)
	case *kinesissink.Config:
		// sinks/kinesis: PutRecords, authorised on the stream. A name
		// takes aws.region (else `*`) and any account, as a bare
		// function name does.
		var p arnParts
		name := c.Stream
		if c.StreamARN != "" {
			st, err := kinesissink.ParseStreamARN(c.StreamARN)
			if err != nil {
				return fmt.Errorf("stream_arn: %w", err)
			}
			p, name = arnParts{partition: st.Partition, region: st.Region, account: st.Account}, st.Name
		}
		b.add(sidPutRecords, []string{"kinesis:PutRecords"}, b.fill(p).arn("kinesis", "stream/"+name), nil)
	case *stepfunctions.Config:
		m, err := names.ParseStateMachineARN(c.StateMachine)
		if err != nil {
			return fmt.Errorf("state_machine: %w", err)
		}
		if c.Mode == stepfunctions.ModeExpressSync {
			b.add(sidStartSync, []string{"states:StartSyncExecution"}, m.ARN(), nil)
			return nil
		}
		// A start that finds an execution of its name asks whether it
		// is the delivery's own (same input): DescribeExecution, on the
		// state machine's executions.
		b.add(sidStartExec, []string{"states:StartExecution"}, m.ARN(), nil)
		b.add(sidDescribeExec, []string{"states:DescribeExecution"}, m.ExecutionARN("*"), nil)
	case *eventbridge.Config:
		// sinks/eventbridge: PutEvents, authorised on the event bus (a bus
		// named by its name is in aws.region and the caller's account).
		bus, err := eventbridge.ParseBus(c.Bus)
		if err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		p := b.fill(arnParts{partition: bus.Partition, region: bus.Region, account: bus.Account})
		b.add(sidPutEvents, []string{"events:PutEvents"}, p.arn("events", "event-bus/"+bus.Name), nil)
	default:
		switch t.Type {
		case "http", "nats", "log":
			return nil
		}
		return fmt.Errorf("target type %q: its IAM permissions are unknown", t.Type)
	}
	return nil
}

func (b *builder) ecsTask(name string, c *ecstask.Config) error {
	// The task definition: FAMILY (its latest ACTIVE revision, so any
	// revision), FAMILY:REVISION or an ARN.
	var td arnParts
	ref := c.TaskDefinition
	if strings.HasPrefix(ref, "arn:") {
		p, res, err := splitARN(ref, "ecs")
		if err != nil {
			return fmt.Errorf("task_definition: %w", err)
		}
		td, ref = p, strings.TrimPrefix(res, "task-definition/")
	}
	if !strings.Contains(ref, ":") {
		ref += ":*"
	}
	cl, err := b.cluster(cmpOr(c.Cluster, "default"), td)
	if err != nil {
		return err
	}
	// A task definition is launched in the cluster's region and account
	// when its ARN does not say otherwise.
	td = b.fill(arnParts{partition: cmpOr(td.partition, cl.partition), region: cmpOr(td.region, cl.region), account: cmpOr(td.account, cl.account)})
	if b.runTasks[cl.arn()] == nil {
		b.runTasks[cl.arn()] = map[string]bool{}
	}
	b.runTasks[cl.arn()][td.arn("ecs", "task-definition/"+ref)] = true
	// RunTask always tags the tasks (switchyard's own tags), which ECS
	// authorises as ecs:TagResource on the new tasks.
	b.add(sidTag, []string{"ecs:TagResource"}, cl.tasks(), Condition{"StringEquals": {"ecs:CreateAction": {"RunTask"}}})
	// Roles the task runs with are passed by RunTask: the ones the target
	// names, and otherwise those of the task definition, which the config
	// does not know.
	passed := Condition{"StringEquals": {"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}}
	for _, r := range []string{c.TaskRoleARN, c.ExecutionRoleARN} {
		if r != "" {
			b.add(sidPassRole, []string{"iam:PassRole"}, r, passed)
		}
	}
	if c.TaskRoleARN == "" || c.ExecutionRoleARN == "" {
		b.add(sidPassRole, []string{"iam:PassRole"}, cl.withRegion("").arn("iam", "role/*"), passed)
		b.notes = append(b.notes, fmt.Sprintf("target %s: iam:PassRole is granted on every role passed to ECS tasks, since the roles of task definition %s are not known; set task_role_arn and execution_role_arn on the target to grant it on those roles only", name, c.TaskDefinition))
	}
	return nil
}

// add merges a grant into the statement sid: its actions are fixed per sid,
// resources and condition values accumulate.
func (b *builder) add(sid string, actions []string, resource string, cond Condition) {
	s := b.stmts[sid]
	if s == nil {
		s = &Statement{Sid: sid, Effect: "Allow", Action: actions}
		b.stmts[sid] = s
	}
	s.Resource = append(s.Resource, resource)
	for op, keys := range cond {
		if s.Condition == nil {
			s.Condition = Condition{}
		}
		if s.Condition[op] == nil {
			s.Condition[op] = map[string][]string{}
		}
		for k, vs := range keys {
			s.Condition[op][k] = append(s.Condition[op][k], vs...)
		}
	}
}

func (b *builder) document() *Document {
	// One RunTask statement per cluster, named after it; clusters whose
	// names make the same Sid are numbered in ARN order.
	clusters := slices.Sorted(maps.Keys(b.runTasks))
	bySid := map[string][]string{}
	for _, cl := range clusters {
		sid := sidRunTasks + camel(cl[strings.LastIndex(cl, "/")+1:])
		bySid[sid] = append(bySid[sid], cl)
	}
	for sid, cls := range bySid {
		for i, cl := range cls {
			s := sid
			if len(cls) > 1 {
				s = fmt.Sprintf("%s%d", sid, i+1)
			}
			for td := range b.runTasks[cl] {
				b.add(s, []string{"ecs:RunTask"}, td, Condition{"ArnEquals": {"ecs:cluster": {cl}}})
			}
		}
	}
	d := &Document{Version: Version, Statement: []Statement{}, Notes: b.notes}
	for _, s := range b.stmts {
		s.Action = sortedSet(s.Action)
		s.Resource = sortedSet(s.Resource)
		for _, keys := range s.Condition {
			for k, vs := range keys {
				keys[k] = sortedSet(vs)
			}
		}
		d.Statement = append(d.Statement, *s)
	}
	slices.SortFunc(d.Statement, func(x, y Statement) int {
		if c := rank(x.Sid) - rank(y.Sid); c != 0 {
			return c
		}
		return strings.Compare(x.Sid, y.Sid)
	})
	slices.Sort(d.Notes)
	d.Notes = slices.Compact(d.Notes)
	return d
}

func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// camel turns a cluster name into Sid characters: "media-jobs" → "MediaJobs".
func camel(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z' && up:
			b.WriteRune(r - 'a' + 'A')
			up = false
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	return b.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// arnParts are the partition, region and account of an ARN; an empty
// region or account is written `*`.
type arnParts struct {
	partition, region, account string
	name                       string // a cluster's name
}

func (p arnParts) arn(service, resource string) string {
	return "arn:" + p.partition + ":" + service + ":" + p.region + ":" + p.account + ":" + resource
}

func (p arnParts) withRegion(r string) arnParts { p.region = r; return p }

// cluster is the ECS cluster ARN.
func (p arnParts) clusterARN() string { return p.arn("ecs", "cluster/"+p.name) }

// fill completes p: the region from aws.region, else `*`; the partition
// from the region; the account `*` when unknown.
func (b *builder) fill(p arnParts) arnParts {
	p.region = cmpOr(cmpOr(p.region, b.region), "*")
	p.partition = cmpOr(p.partition, partition(p.region))
	p.account = cmpOr(p.account, "*")
	return p
}

// partition is the AWS partition of a region: aws-cn for cn-*, aws-us-gov
// for us-gov-*, the ISO partitions for theirs, else aws (also when the
// region is unknown).
func partition(region string) string {
	for _, p := range []struct{ prefix, partition string }{
		{"cn-", "aws-cn"},
		{"us-gov-", "aws-us-gov"},
		{"us-iso-", "aws-iso"},
		{"us-isob-", "aws-iso-b"},
		{"eu-isoe-", "aws-iso-e"},
		{"us-isof-", "aws-iso-f"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}

type cluster struct{ arnParts }

func (c cluster) arn() string   { return c.clusterARN() }
func (c cluster) tasks() string { return c.arnParts.arn("ecs", "task/"+c.name+"/*") }

// cluster resolves an ECS cluster, a name or an ARN; a name takes its
// region and account from near, when known.
func (b *builder) cluster(ref string, near arnParts) (cluster, error) {
	if strings.HasPrefix(ref, "arn:") {
		p, res, err := splitARN(ref, "ecs")
		if err != nil {
			return cluster{}, fmt.Errorf("cluster: %w", err)
		}
		name, ok := strings.CutPrefix(res, "cluster/")
		if !ok || name == "" || strings.Contains(name, "/") {
			return cluster{}, fmt.Errorf("cluster: %q is not a cluster ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)", ref)
		}
		p.name = name
		return cluster{p}, nil
	}
	p := b.fill(arnParts{partition: near.partition, region: near.region, account: near.account})
	p.name = ref
	return cluster{p}, nil
}

// splitARN checks that arn is an ARN of service with a region and an
// account, and returns its parts and resource.
func splitARN(arn, service string) (arnParts, string, error) {
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" || !strings.HasPrefix(f[1], "aws") || f[2] != service || f[3] == "" || f[4] == "" || f[5] == "" {
		return arnParts{}, "", fmt.Errorf("%q is not an ARN of %s (arn:PARTITION:%s:REGION:ACCOUNT:RESOURCE)", arn, service, service)
	}
	return arnParts{partition: f[1], region: f[3], account: f[4]}, f[5], nil
}

// queueARN is the ARN of the queue at u, a URL the SDK accepts:
// https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, the legacy
// REGION.queue.amazonaws.com and queue.amazonaws.com (us-east-1), VPC
// endpoint, FIPS and dual-stack hosts, each in any partition; any other host
// (a custom endpoint) leaves the region to aws.region.
func (b *builder) queueARN(u string) (string, error) {
	q, err := names.ParseQueueURL(u)
	if err != nil {
		return "", fmt.Errorf("queue_url: %w", err)
	}
	p := arnParts{region: q.Region, account: q.Account}
	return b.fill(p).arn("sqs", q.Name), nil
}
