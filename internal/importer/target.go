package importer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// convTarget is an EventBridge target made a switchyard target.
type convTarget struct {
	name     string
	node     *ynode
	comments []string
	// input is what the target's switchyard rule renders for it; nil for
	// the whole event. anyInput marks a target that takes nothing from
	// the payload (an ECS task without overrides), which can join any rule.
	input    *ruleInput
	anyInput bool
	// policy is the target's policy; dlq names its dead-letter target.
	policy, dlq string
	// warnings are written once the target is taken.
	warnings []string
}

// target converts one target; nil and the reason when it cannot be.
func (c *converter) target(r *ebRule, t *ebTarget) (*convTarget, string) {
	if t.Problem != "" {
		return nil, t.Problem
	}
	a, ok := parseARN(t.ARN.plain())
	if rs := t.ARN.refs(); !ok && len(rs) > 0 {
		why := fmt.Sprintf("its Arn is %s, which the template does not tell, and nor the service it is of", rs[0].What)
		if rs[0].Hint != "" {
			why += " (import again with " + rs[0].Hint + ")"
		}
		return nil, why
	}
	if !ok {
		return nil, fmt.Sprintf("its Arn %q is not an ARN", t.ARN.plain())
	}
	ruleName := r.Name
	if ruleName == "" {
		ruleName = r.ID
	}
	ct := &convTarget{name: c.targetNames.name(t.ID, ruleName+"."+t.ID)}
	release := func() { delete(c.targetNames, ct.name) }
	head := fmt.Sprintf("EventBridge rule %s, target %s: %s", ruleName, t.ID, t.ARN.plain())
	if rs := t.ARN.refs(); len(rs) > 0 {
		var vars []string
		for _, r := range rs {
			vars = append(vars, r.Name)
		}
		head = fmt.Sprintf("EventBridge rule %s, target %s (its ARN reads %s)", ruleName, t.ID, strings.Join(vars, ", "))
	}
	ct.comments = wrap(head)
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }

	// switchyard calls AWS in one region, with its own credentials.
	if a.Region != "" && c.region.literal() && a.Region != c.region.plain() {
		release()
		return nil, fmt.Sprintf("it is in %s, and switchyard calls AWS in one region, %s (a switchyard in %s can take it)", a.Region, c.region.plain(), a.Region)
	}
	crossAccount := a.Account != "" && c.account.literal() && a.Account != c.account.plain()
	bus := a.Service == "events" && strings.HasPrefix(a.Resource, "event-bus/")
	switch {
	case crossAccount && !bus && t.Role != nil:
		release()
		return nil, fmt.Sprintf("it is in account %s, which EventBridge reaches with the role %s: switchyard calls AWS with its own credentials and assumes no role", a.Account, t.Role.plain())
	case crossAccount && bus:
		note("The bus is in account %s: its resource policy must let switchyard's role put events (EventBridge used %s).", a.Account, roleOr(t.Role, "a permission the bus's policy gives this account"))
	case crossAccount:
		note("It is in account %s: its resource policy must let switchyard's role (not events.amazonaws.com) call it.", a.Account)
	case t.Role != nil:
		note("EventBridge used the role %s; switchyard uses its own credentials (switchyard iam-policy prints what they need).", t.Role.plain())
	}

	n := yMapNode().set("name", yStr(ct.name))
	var err string
	switch {
	case a.Service == "lambda" && strings.HasPrefix(a.Resource, "function:"):
		n.set("type", yStr("lambda")).set("function", yText(t.ARN)).set("invocation", yStr("event"))
		c.useRefs(t.ARN)
		note("invocation: event, as EventBridge invokes functions asynchronously.")
	case a.Service == "sqs":
		url, e := c.queueURL(t.ARN)
		if e != "" {
			err = e
			break
		}
		n.set("type", yStr("sqs")).set("queue_url", yText(url))
		c.useRefs(url)
		if t.SQSGroup != nil {
			// A JSON path (as EventBridge Pipes take one) becomes the
			// placeholder of that path; a name is the group as it is.
			group := t.SQSGroup.plain()
			if strings.HasPrefix(group, "$.") {
				group = "<" + group + ">"
			}
			n.set("message_group_id", yStr(group))
		}
	case a.Service == "sns":
		n.set("type", yStr("sns")).set("topic_arn", yText(t.ARN))
		c.useRefs(t.ARN)
	case a.Service == "kinesis" && strings.HasPrefix(a.Resource, "stream/"):
		key := "<$.id>"
		if t.KinesisKey != nil {
			p := t.KinesisKey.plain()
			if !t.KinesisKey.literal() || !strings.HasPrefix(p, "$") {
				err = fmt.Sprintf("its PartitionKeyPath %q is not a JSON path", p)
				break
			}
			key = "<" + p + ">"
		} else {
			note("EventBridge's partition key is the event's id when PartitionKeyPath is not set: <$.id>.")
		}
		n.set("type", yStr("kinesis")).set("stream_arn", yText(t.ARN)).set("partition_key", yStr(key))
		c.useRefs(t.ARN)
	case a.Service == "states" && strings.HasPrefix(a.Resource, "stateMachine:"):
		if !slices.Contains(c.targetTypes, "stepfunctions") {
			err = "this switchyard has no stepfunctions target"
			break
		}
		n.set("type", yStr("stepfunctions")).set("state_machine", yText(t.ARN))
		c.useRefs(t.ARN)
	case bus:
		if !slices.Contains(c.targetTypes, "eventbridge") {
			err = "this switchyard has no eventbridge target"
			break
		}
		b := t.ARN
		if !crossAccount && c.account.literal() && a.Account == c.account.plain() && t.ARN.literal() {
			b = lit(strings.TrimPrefix(a.Resource, "event-bus/"))
		}
		n.set("type", yStr("eventbridge")).set("bus", yText(b))
		c.useRefs(b)
	case a.Service == "events" && strings.HasPrefix(a.Resource, "api-destination/"):
		err = "it is an API destination, whose endpoint and connection (its credentials) are not part of the rule: an http target can post to the endpoint (see the README's Importing EventBridge rules)"
	case a.Service == "ecs" && strings.HasPrefix(a.Resource, "cluster/"):
		if t.ECS == nil {
			err = "an ECS target needs EcsParameters"
			break
		}
		if e := c.ecsTarget(r, n, t, ct, &notes); e != "" {
			err = e
		}
	case a.Service == "logs":
		err = "switchyard has no CloudWatch Logs target (a log target writes deliveries to standard output, which the awslogs log driver sends to CloudWatch Logs)"
	default:
		what := serviceNames[a.Service]
		if what == "" {
			what = a.Service
		}
		err = fmt.Sprintf("switchyard has no %s target", what)
	}
	if err != "" {
		release()
		return nil, err
	}
	if ct.node == nil {
		ct.node = n
	}
	if a.Service != "ecs" {
		in, e := targetInput(t)
		if e != "" {
			release()
			return nil, e
		}
		ct.input = in
	}
	if len(t.Unsupported) > 0 {
		note("Not imported: %s (switchyard has no use for them here).", strings.Join(t.Unsupported, ", "))
		ct.warnings = append(ct.warnings, fmt.Sprintf("%s, target %s: %s not imported", ruleLabel(r), t.ID, strings.Join(t.Unsupported, ", ")))
	}

	pol, dlq, polWarnings := c.policy(r, t)
	ct.policy, ct.dlq = pol, dlq
	if pol != "default" {
		n.set("policy", yStr(pol))
	}

	// Check the target as switchyard will, with its policy and dead letter.
	mini := yMapNode().set("version", yNum("1")).set("aws", yMapNode().set("region", yText(c.region))).
		set("sources", ySeqNode().add(c.source))
	ts := ySeqNode()
	if dlq != "" {
		ts.add(c.dlqNodes[dlq])
	}
	ts.add(n)
	mini.set("targets", ts)
	mini.set("policies", yMapNode().set(pol, c.policyNodes[pol]))
	mini.set("rules", ySeqNode().add(yMapNode().set("name", yStr("r")).set("pattern", yMapNode().set("source", yStrs([]string{"x"}))).
		set("targets", yStrs([]string{ct.name}))))
	if problems := validate(emit(mini)); len(problems) > 0 {
		release()
		return nil, "switchyard refuses it: " + strings.Join(trimPaths(problems), "; ")
	}
	for _, w := range polWarnings {
		ct.warnings = append(ct.warnings, w)
		notes = append(notes, strings.TrimPrefix(w, fmt.Sprintf("%s, target %s: ", ruleLabel(r), t.ID)))
	}
	for _, s := range notes {
		ct.comments = append(ct.comments, wrap(s)...)
	}
	return ct, ""
}

func roleOr(role text, or string) string {
	if role != nil {
		return "the role " + role.plain()
	}
	return or
}

// addTarget writes a converted target, after its dead-letter target and
// policy when they are not written yet, and its warnings.
func (c *converter) addTarget(t *convTarget) {
	if t.dlq != "" && !c.dlqWritten[t.dlq] {
		c.dlqWritten[t.dlq] = true
		c.targets.add(c.dlqNodes[t.dlq], wrap("Dead letters: the SQS queue of EventBridge's DeadLetterConfig.")...)
	}
	if !slices.Contains(c.policyOrder, t.policy) {
		c.policyOrder = append(c.policyOrder, t.policy)
		c.policies.set(t.policy, c.policyNodes[t.policy], c.policyHeads[t.policy]...)
	}
	c.targets.add(t.node, t.comments...)
	c.warnings = append(c.warnings, t.warnings...)
}

// queueURL is the URL of the SQS queue whose ARN is a: built from the
// ARN's region, account and name, which keep their references.
func (c *converter) queueURL(a text) (text, string) {
	domain := "amazonaws.com"
	if c.partition == "aws-cn" {
		domain = "amazonaws.com.cn"
	}
	if f, ok := arnFields(a); ok {
		return join(lit("https://sqs."), f[3], lit("."+domain+"/"), f[4], lit("/"), f[5]), ""
	}
	// A whole ARN read from the environment: read the URL instead.
	rs := a.refs()
	if len(a) != 1 || len(rs) != 1 {
		return nil, fmt.Sprintf("the queue URL cannot be made of %q", a.config())
	}
	ref := rs[0]
	name := strings.TrimSuffix(ref.Name, "_ARN") + "_URL"
	if d, ok := c.derived[name]; ok {
		return refText(d), ""
	}
	pa, ok := parseARN(ref.Default)
	if !ok {
		return nil, fmt.Sprintf("the queue URL cannot be made of %q", a.config())
	}
	what := "the URL of " + strings.TrimPrefix(ref.What, "the ARN of ")
	d := &envRef{Name: name, Default: "https://sqs." + pa.Region + "." + domain + "/" + pa.Account + "/" + pa.Resource, What: what}
	c.derived[name] = d
	return refText(d), ""
}

// targetInput maps a target's Input, InputPath or InputTransformer to a
// switchyard rule's input.
func targetInput(t *ebTarget) (*ruleInput, string) {
	switch {
	case t.Input != nil:
		p := t.Input.plain()
		if !json.Valid([]byte(p)) {
			return nil, fmt.Sprintf("its Input is not JSON: %q", p)
		}
		// A constant with what a template would read as a placeholder is
		// written with the Input key, whose text is taken as it is.
		return &ruleInput{template: *t.Input, constant: placeholderRE().MatchString(p)}, ""
	case t.InputPath != nil:
		if t.InputPath.plain() == "$" {
			return nil, "" // the whole event
		}
		return &ruleInput{paths: []pathEntry{{Name: "value", Path: *t.InputPath}}, template: lit("<value>")}, ""
	case t.Transformer != nil:
		return &ruleInput{paths: t.Transformer.Paths, template: t.Transformer.Template}, ""
	}
	return nil, ""
}

// policy returns the name of the policy for a target's retry policy and
// dead letter, and the name of its dead-letter target, making them (they
// are written by addTarget, once a target that uses them is taken), and
// warnings about what did not convert as it was.
func (c *converter) policy(r *ebRule, t *ebTarget) (name, dlqName string, warnings []string) {
	retries, age := defaultMaxRetries, defaultMaxAge
	var clamps []string
	if t.MaxRetries != nil {
		retries = *t.MaxRetries
		if retries < 0 || retries > defaultMaxRetries {
			clamps = append(clamps, fmt.Sprintf("MaximumRetryAttempts %d is outside EventBridge's range of 0 to 185: %d", retries, min(max(retries, 0), defaultMaxRetries)))
			retries = min(max(retries, 0), defaultMaxRetries)
		}
	}
	if t.MaxAge != nil {
		age = *t.MaxAge
		if age < minMaxAge || age > defaultMaxAge {
			clamped := min(max(age, minMaxAge), defaultMaxAge)
			clamps = append(clamps, fmt.Sprintf("MaximumEventAgeInSeconds %d is outside EventBridge's range of 60 to 86400: %d", age, clamped))
			age = clamped
		}
	}
	for _, cl := range clamps {
		warnings = append(warnings, fmt.Sprintf("%s, target %s: %s", ruleLabel(r), t.ID, cl))
	}
	if t.DeadLetter != nil {
		note := ""
		a, ok := parseARN(t.DeadLetter.plain())
		switch {
		case !ok || a.Service != "sqs":
			note = fmt.Sprintf("Not imported: its dead-letter queue %s, which is not an SQS queue's ARN.", t.DeadLetter.plain())
		case a.Region != "" && c.region.literal() && a.Region != c.region.plain():
			note = fmt.Sprintf("Not imported: its dead-letter queue %s, in %s, which switchyard does not call.", t.DeadLetter.plain(), a.Region)
		default:
			url, e := c.queueURL(t.DeadLetter)
			if e != "" {
				note = "Not imported: its dead-letter queue: " + e
				break
			}
			key := url.config()
			if existing, ok := c.dlqTargets[key]; ok {
				dlqName = existing
				break
			}
			qname := a.Resource
			dlqName = c.targetNames.name(qname, "dlq-"+qname)
			c.dlqTargets[key] = dlqName
			c.dlqNodes[dlqName] = yMapNode().set("name", yStr(dlqName)).set("type", yStr("sqs")).set("queue_url", yText(url))
			c.useRefs(url)
		}
		if note != "" {
			warnings = append(warnings, fmt.Sprintf("%s, target %s: %s", ruleLabel(r), t.ID, note))
		}
	}
	attempts := retries + 1
	key := fmt.Sprintf("%d|%d|%s", attempts, age, dlqName)
	if n, ok := c.policyNames[key]; ok {
		return n, dlqName, warnings
	}
	base := "default"
	if retries != defaultMaxRetries || age != defaultMaxAge {
		base = fmt.Sprintf("retry-%dx-%s", attempts, duration(age))
	}
	name = base
	if dlqName != "" {
		name = base + "-dlq-" + dlqName
	}
	taken := map[string]bool{}
	for _, n := range c.policyNames {
		taken[n] = true
	}
	name = namer(taken).name(name)
	src := fmt.Sprintf("EventBridge's retry policy: MaximumRetryAttempts %d, MaximumEventAgeInSeconds %d", retries, age)
	if retries == defaultMaxRetries && age == defaultMaxAge {
		src += " (its defaults)"
	}
	switch retries {
	case 0:
		src += ": 1 attempt, no retry"
	case 1:
		src += ": 2 attempts, the first and 1 retry"
	default:
		src += fmt.Sprintf(": %d attempts, the first and %d retries", attempts, retries)
	}
	if dlqName != "" {
		src += "; dead letters to " + dlqName
	}
	head := wrap(src + ".")
	for _, cl := range clamps {
		head = append(head, wrap("Clamped: "+cl+".")...)
	}
	if spent := backoffTotal(attempts); attempts > 1 && spent < time.Duration(age)*time.Second {
		head = append(head, wrap(fmt.Sprintf("switchyard's backoff (200ms doubling to retry.max, 30s, with full jitter) spends %d attempts in about %s, sooner than max_age; EventBridge spreads its retries further: raise retry.max to do the same.", attempts, roundDuration(spent)))...)
	}
	c.policyNames[key] = name
	c.policyHeads[name] = head
	pn := yMapNode()
	retry := yMapNode()
	retry.flow = true
	retry.set("attempts", yNum(strconv.Itoa(attempts))).set("max_age", yStr(duration(age)))
	pn.set("retry", retry)
	if dlqName != "" {
		pn.set("dead_letter", yStr(dlqName))
	}
	c.policyNodes[name] = pn
	return name, dlqName, warnings
}

// backoffTotal is the expected time switchyard's default backoff waits
// between attempts: full jitter over 200ms doubling to 30s.
func backoffTotal(attempts int) time.Duration {
	var total time.Duration
	b := 200 * time.Millisecond
	for i := 1; i < attempts; i++ {
		total += b / 2
		b = min(2*b, 30*time.Second)
	}
	return total
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return duration(int(d.Round(10*time.Minute) / time.Second))
	case d >= time.Minute:
		return duration(int(d.Round(time.Minute) / time.Second))
	}
	return duration(int(d.Round(time.Second) / time.Second))
}
