package importer

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/router"
)

// Options configure an import.
type Options struct {
	// Bus is the event bus whose rules are imported; rules of other buses
	// are listed as not imported. Default "default".
	Bus string
	// Region and Account are where the rules live: CloudFormation's
	// AWS::Region and AWS::AccountId. Default: from the rules' ARNs (AWS
	// CLI input), else read from the environment (AWS_REGION,
	// AWS_ACCOUNT_ID) with placeholders that keep the config valid.
	Region, Account string
	// Params are values by name: a template parameter's (overriding its
	// default), an export's (Fn::ImportValue), or AWS::StackName.
	Params map[string]string
}

// Result is what an import made.
type Result struct {
	// Config is the switchyard config, YAML.
	Config []byte
	// Warnings say what was not imported, or was imported with a
	// difference, one line each.
	Warnings []string
	// Notes name the environment variables the config reads for what the
	// input does not tell, and what to set them to.
	Notes []string
	// Rules and Skipped count the EventBridge rules of the bus that were
	// imported (in part or whole) and that were not.
	Rules, Skipped int
}

// InvalidError is returned when the config the import wrote does not
// validate: a bug in the import, never the input's fault.
type InvalidError struct {
	// Config is what was written.
	Config []byte
	// Problems are switchyard validate's, one each, as ":LINE:COL: key:
	// message" (the file's name left out).
	Problems []string
}

func (e *InvalidError) Error() string {
	return "the config written does not validate (a bug in switchyard import):\n" + strings.Join(e.Problems, "\n")
}

// ErrNothing is returned when no rule of the bus could be imported: a
// config needs at least one rule.
var ErrNothing = errors.New("nothing to import")

// sourceName names the config's one source.
const sourceName = "events"

// converter turns the rules of one bus into a config, as it reads them:
// the nodes written so far, the names taken, the variables read. One
// import uses one, from one goroutine.
type converter struct {
	opt       Options
	input     string // what was read, for the header
	region    text   // where switchyard calls AWS
	account   text
	partition string

	warnings []string
	env      []*envRef
	derived  map[string]*envRef

	source      *ynode
	targets     *ynode
	rules       *ynode
	policies    *ynode
	pendingR    []string // comments waiting for the next rule
	targetNames namer
	ruleNames   namer
	policyNames map[string]string // policy key → name
	policyNodes map[string]*ynode
	policyHeads map[string][]string
	policyOrder []string
	dlqTargets  map[string]string // queue URL (config form) → target name
	dlqNodes    map[string]*ynode // dead-letter target name → its node
	dlqWritten  map[string]bool
	imported    int
	skipped     int
	targetTypes []string
}

func newConverter(input string, opt Options, region, account text) *converter {
	opt.Bus = busName(opt.Bus) // a bus's ARN names it too
	c := &converter{opt: opt, input: input, region: region, account: account, partition: partitionOf(region.plain()),
		derived: map[string]*envRef{}, targets: ySeqNode(), rules: ySeqNode(), policies: yMapNode(),
		targetNames: namer{}, ruleNames: namer{}, policyNames: map[string]string{}, policyNodes: map[string]*ynode{},
		policyHeads: map[string][]string{}, dlqTargets: map[string]string{}, dlqNodes: map[string]*ynode{}, dlqWritten: map[string]bool{}, targetTypes: config.TargetTypes()}
	c.source = c.sourceNode()
	return c
}

func (c *converter) warn(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

// useRefs records the environment variables a text written to the config
// reads, for the header's list.
func (c *converter) useRefs(ts ...text) {
	for _, t := range ts {
		for _, r := range t.refs() {
			if !slices.Contains(c.env, r) {
				c.env = append(c.env, r)
			}
		}
	}
}

// sourceNode is the config's one source: the SQS queue an EventBridge rule
// on the bus forwards every event to.
func (c *converter) sourceNode() *ynode {
	domain := "amazonaws.com"
	if c.partition == "aws-cn" {
		domain = "amazonaws.com.cn"
	}
	queue := "switchyard-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, c.opt.Bus)
	if len(queue) > 80 {
		queue = queue[:80]
	}
	url := &envRef{Name: "EVENTS_QUEUE_URL", Default: "https://sqs." + c.region.plain() + "." + domain + "/" + c.account.plain() + "/" + queue,
		What: fmt.Sprintf("the URL of the SQS queue an EventBridge rule on the bus %q forwards its events to", c.opt.Bus)}
	c.useRefs(refText(url))
	n := yMapNode().set("name", yStr(sourceName)).set("type", yStr("sqs")).
		set("queue_url", yText(refText(url))).set("envelope", yStr("eventbridge"))
	return n
}

// convert turns the rules into the config.
func (c *converter) convert(rules []*ebRule) (*Result, error) {
	for _, r := range rules {
		if r.Bus != c.opt.Bus {
			c.warn("not imported: %s: it is on the event bus %q, not %q (import it with --bus %s)", ruleLabel(r), r.Bus, c.opt.Bus, r.Bus)
			continue
		}
		c.rule(r)
	}
	if c.imported == 0 {
		return &Result{Warnings: c.warnings, Skipped: c.skipped}, fmt.Errorf("%w: no rule of the event bus %q could be imported", ErrNothing, c.opt.Bus)
	}
	doc := c.document()
	out := emit(doc)
	if problems := validate(out); len(problems) > 0 {
		return &Result{Config: out, Warnings: c.warnings}, &InvalidError{Config: out, Problems: problems}
	}
	return &Result{Config: out, Warnings: c.warnings, Rules: c.imported, Skipped: c.skipped}, nil
}

// validate parses a config as switchyard validate does, with every
// environment variable unset (so at its default), and returns its
// problems without the file's name.
func validate(data []byte) []string {
	_, err := config.Parse("import", data, func(string) (string, bool) { return "", false })
	if err == nil {
		return nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range errs {
		out = append(out, strings.TrimPrefix(e.Error(), "import:"))
	}
	return out
}

func ruleLabel(r *ebRule) string {
	switch {
	case r.Name == "":
		return fmt.Sprintf("rule %s (%s)", r.ID, r.Where)
	case r.ID != r.Name:
		return fmt.Sprintf("rule %s (%s, %s)", r.Name, r.ID, r.Where)
	}
	return fmt.Sprintf("rule %s (%s)", r.Name, r.Where)
}

// skipRule leaves a rule out: a comment where it would be, and a warning.
func (c *converter) skipRule(r *ebRule, why string, extra ...string) {
	c.skipped++
	if len(c.pendingR) > 0 {
		c.pendingR = append(c.pendingR, "")
	}
	c.pendingR = append(c.pendingR, wrap(fmt.Sprintf("Not imported: EventBridge %s: %s.", ruleLabel(r), why))...)
	for _, e := range extra {
		c.pendingR = append(c.pendingR, wrap("  "+e)...)
	}
	if len(extra) > 0 {
		why += ": " + strings.Join(extra, "; ")
	}
	c.warn("not imported: %s: %s", ruleLabel(r), why)
}

// rule converts one rule of the bus.
func (c *converter) rule(r *ebRule) {
	switch {
	case r.Problem != "":
		c.skipRule(r, r.Problem)
		return
	case r.ManagedBy != "":
		c.skipRule(r, fmt.Sprintf("it is managed by %s, which made it for its own use", r.ManagedBy))
		return
	case r.State == "DISABLED":
		c.skipRule(r, "it is disabled (switchyard has no disabled rules: importing it would turn it on)")
		return
	case r.Pattern == nil && r.Schedule != "":
		arn := "its ARN"
		if r.ARN != nil {
			arn = r.ARN.plain()
		}
		c.skipRule(r, fmt.Sprintf("it runs on a schedule, %s, and switchyard has no schedules: keep it in EventBridge, "+
			"or make the events queue its target and match its events in switchyard (source aws.events, detail-type Scheduled Event, resources [%s])", r.Schedule, arn))
		return
	case r.Pattern == nil:
		c.skipRule(r, "it has no EventPattern")
		return
	case len(r.Targets) == 0:
		c.skipRule(r, "it has no targets")
		return
	}
	if r.Schedule != "" {
		c.warn("%s: its schedule, %s, is not imported (switchyard has no schedules); its event pattern is", ruleLabel(r), r.Schedule)
	}
	name := r.Name
	if name == "" {
		name = r.ID
		c.warn("%s: CloudFormation generates its name; it is named %s in switchyard", ruleLabel(r), configName(r.ID))
	}

	// Convert each target; targets with the same input share a switchyard
	// rule (an input is a rule's in switchyard, a target's in EventBridge).
	type group struct {
		key     string
		input   *ruleInput
		targets []*convTarget
	}
	var groups []*group
	var anyInput []*convTarget // ECS targets that take nothing from the payload
	var dropped []string       // "target ID: why"
	var droppedWarnings []string
	for _, t := range r.Targets {
		ct, why := c.target(r, t)
		if ct == nil {
			id := t.ID
			if id == "" {
				id = "at " + t.Where // it has none
			}
			dropped = append(dropped, fmt.Sprintf("target %s: %s", id, why))
			droppedWarnings = append(droppedWarnings, fmt.Sprintf("not imported: %s, target %s: %s", ruleLabel(r), id, why))
			continue
		}
		if ct.anyInput {
			anyInput = append(anyInput, ct)
			continue
		}
		key := ct.input.key()
		i := slices.IndexFunc(groups, func(g *group) bool { return g.key == key })
		if i < 0 {
			groups = append(groups, &group{key: key, input: ct.input})
			i = len(groups) - 1
		}
		groups[i].targets = append(groups[i].targets, ct)
	}
	if len(anyInput) > 0 {
		i := slices.IndexFunc(groups, func(g *group) bool { return g.input == nil })
		if i < 0 && len(groups) == 0 {
			groups = append(groups, &group{})
			i = 0
		}
		groups[max(i, 0)].targets = append(groups[max(i, 0)].targets, anyInput...)
	}
	if len(groups) == 0 {
		c.skipRule(r, "none of its targets can be imported", dropped...)
		return
	}

	names := make([]string, len(groups))
	for gi, g := range groups {
		if gi == 0 {
			names[gi] = c.ruleNames.name(name)
		} else {
			names[gi] = c.ruleNames.name(name+"."+g.targets[0].name, name+"."+strconv.Itoa(gi+1))
		}
	}
	nodes := make([]*ynode, len(groups))
	heads := make([][]string, len(groups))
	for gi, g := range groups {
		node, comments, err := c.ruleNode(r, names[gi], g.input, g.targets)
		if err != nil {
			for _, n := range names {
				delete(c.ruleNames, n)
			}
			c.skipRule(r, err.Error(), dropped...)
			return
		}
		if gi == 0 {
			if r.Name == "" {
				comments = append(comments, wrap(fmt.Sprintf("CloudFormation generates this rule's name: in switchyard it is %s, its logical ID.", names[0]))...)
			}
			comments = append(comments, c.dropComments(dropped)...)
			if len(groups) > 1 {
				comments = append(comments, wrap(fmt.Sprintf("Its targets have different inputs, and a switchyard rule has one input for all its targets: it is split in %d, %s.",
					len(groups), strings.Join(names, ", ")))...)
			}
		}
		nodes[gi], heads[gi] = node, comments
	}
	for gi, g := range groups {
		for _, t := range g.targets {
			c.addTarget(t)
		}
		c.rules.add(nodes[gi], append(c.takePendingR(), heads[gi]...)...)
	}
	c.imported++
	c.warnings = append(c.warnings, droppedWarnings...)
}

func (c *converter) dropComments(dropped []string) []string {
	var out []string
	for _, d := range dropped {
		out = append(out, wrap("Not imported: "+d+".")...)
	}
	return out
}

// takePendingR returns the comments on rules not imported before the
// next one, set apart from its own.
func (c *converter) takePendingR() []string {
	p := c.pendingR
	c.pendingR = nil
	if len(p) > 0 {
		p = append(p, "")
	}
	return p
}

// ruleNode writes one switchyard rule, and checks it on its own.
func (c *converter) ruleNode(r *ebRule, name string, in *ruleInput, targets []*convTarget) (*ynode, []string, error) {
	n := yMapNode().set("name", yStr(name))
	n.set("pattern", patternNode(r.Pattern))
	var comments []string
	head := "EventBridge " + ruleLabel(r)
	if r.Description != "" {
		head += ": " + r.Description
	}
	comments = append(comments, wrap(head)...)
	c.useRefs(patternRefs(r.Pattern)...)
	if in != nil {
		inode := yMapNode()
		if len(in.paths) > 0 {
			p := yMapNode()
			for _, e := range in.paths {
				p.set(e.Name, yText(e.Path))
				c.useRefs(e.Path)
			}
			inode.set("paths", p)
		}
		if in.constant {
			inode.set("Input", yText(in.template))
			c.useRefs(in.template)
		} else {
			tpl, notes := c.substitutePredefined(r, name, in)
			inode.set("template", yText(tpl))
			c.useRefs(tpl)
			comments = append(comments, notes...)
		}
		n.set("input", inode)
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
	}
	n.set("targets", yStrs(names))

	// Check the rule as switchyard will, with stand-ins for its targets.
	mini := yMapNode().set("version", yNum("1")).set("sources", ySeqNode().add(c.source))
	ts := ySeqNode()
	for _, t := range names {
		ts.add(yMapNode().set("name", yStr(t)).set("type", yStr("log")))
	}
	mini.set("targets", ts).set("rules", ySeqNode().add(n))
	if problems := validate(emit(mini)); len(problems) > 0 {
		return nil, nil, fmt.Errorf("switchyard refuses it: %s", strings.Join(trimPaths(problems), "; "))
	}
	return n, comments, nil
}

// trimPaths drops the line and column of problems found in a config made
// for a check (they are not the output's).
func trimPaths(problems []string) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		// ":LINE:COL: " first.
		rest := strings.TrimLeft(p, ":0123456789")
		out[i] = strings.TrimSpace(rest)
	}
	return out
}

// ruleInput is a switchyard rule's input transformer.
type ruleInput struct {
	paths    []pathEntry
	template text
	// constant writes template with the Input key: constant JSON, where
	// <name> is text.
	constant bool
}

func (in *ruleInput) key() string {
	if in == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range in.paths {
		b.WriteString(p.Name + "\x00" + p.Path.config() + "\x00")
	}
	b.WriteString("\x01" + in.template.config())
	if in.constant {
		b.WriteString("\x02")
	}
	return b.String()
}

var placeholderRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<[A-Za-z0-9_.\-]+>`) })

// substitutePredefined writes EventBridge's rule name and ARN where the
// template asks for <aws.events.rule-name> and <aws.events.rule-arn>, so
// that payloads stay what EventBridge delivered: switchyard would render
// its own rule's name and switchyard:rule/NAME. Placeholders whose value
// is not known stay, with a note.
func (c *converter) substitutePredefined(r *ebRule, name string, in *ruleInput) (text, []string) {
	values := map[string]text{}
	var notes []string
	if r.Name != "" {
		values["aws.events.rule-name"] = lit(r.Name)
	}
	if r.ARN != nil {
		values["aws.events.rule-arn"] = r.ARN
	}
	plainPaths := map[string]string{}
	for _, p := range in.paths {
		plainPaths[p.Name] = p.Path.plain()
	}
	tr, err := router.NewTransformer(plainPaths, in.template.plain())
	textTemplate := err == nil && tr.Text()
	var out text
	tracker := &quoteTracker{}
	used := map[string]bool{}
	for _, s := range in.template {
		if s.ref != nil {
			tracker.feed(s.ref.Default)
			out = join(out, text{s})
			continue
		}
		last := 0
		for _, loc := range placeholderRE().FindAllStringIndex(s.lit, -1) {
			tracker.feed(s.lit[last:loc[0]])
			out = join(out, lit(s.lit[last:loc[0]]))
			ph := s.lit[loc[0]+1 : loc[1]-1]
			v, ok := values[ph]
			if _, isPath := plainPaths[ph]; isPath || !ok {
				out = join(out, lit(s.lit[loc[0]:loc[1]]))
				if !isPath && (ph == "aws.events.rule-name" || ph == "aws.events.rule-arn") && !used[ph] {
					used[ph] = true
					notes = append(notes, wrap(fmt.Sprintf("<%s> renders switchyard's rule (%s): EventBridge's is not known, CloudFormation generates its name.", ph, name))...)
				}
				last = loc[1]
				continue
			}
			switch {
			case textTemplate:
				out = join(out, v)
			case tracker.inString:
				out = join(out, escapeText(v))
			default:
				out = join(out, lit(`"`), escapeText(v), lit(`"`))
			}
			last = loc[1]
		}
		tracker.feed(s.lit[last:])
		out = join(out, lit(s.lit[last:]))
	}
	return out, notes
}

// escapeText escapes a text's literal runs for a JSON string.
func escapeText(t text) text {
	var out text
	for _, s := range t {
		if s.ref != nil {
			out = join(out, text{s})
			continue
		}
		q := appendJSONString(nil, s.lit)
		out = join(out, lit(string(q[1:len(q)-1])))
	}
	return out
}

// quoteTracker follows whether a template's text stands inside a JSON
// string, as router's transformer does.
type quoteTracker struct {
	inString, escaped bool
	hexLeft           int
}

func (q *quoteTracker) feed(s string) {
	for i := 0; i < len(s); i++ {
		switch {
		case q.hexLeft > 0:
			q.hexLeft--
		case q.escaped:
			q.escaped = false
			if s[i] == 'u' {
				q.hexLeft = 4
			}
		case q.inString && s[i] == '\\':
			q.escaped = true
		case s[i] == '"':
			q.inString = !q.inString
		}
	}
}

// patternNode writes an event pattern: objects as block mappings, lists
// (and what they hold) on one line, as EventBridge's patterns are read.
func patternNode(v *value) *ynode {
	return valueNode(v, false)
}

func valueNode(v *value, flow bool) *ynode {
	switch v.kind {
	case kNull:
		return &ynode{kind: yScalar, val: "null", typ: "null"}
	case kBool:
		return yBool(v.b)
	case kNumber:
		return yNum(v.num)
	case kString:
		return yText(v.str)
	case kObject:
		n := yMapNode()
		n.flow = flow
		for i, k := range v.keys {
			n.set(k, valueNode(v.vals[i], flow))
		}
		return n
	}
	n := yFlowSeq()
	for _, e := range v.vals {
		n.add(valueNode(e, true))
	}
	return n
}

func patternRefs(v *value) []text {
	switch v.kind {
	case kString:
		return []text{v.str}
	case kObject, kArray:
		var out []text
		for _, e := range v.vals {
			out = append(out, patternRefs(e)...)
		}
		return out
	}
	return nil
}

// wrap cuts a comment into lines of at most about 96 characters.
func wrap(s string) []string {
	const width = 96
	var lines []string
	indent := ""
	if strings.HasPrefix(s, "  ") {
		indent = "  "
	}
	line := ""
	for _, w := range strings.Fields(s) {
		switch {
		case line == "":
			line = indent + w
		case len(line)+1+len(w) > width:
			lines = append(lines, line)
			line = indent + indent + w // a sub-item's lines hang under it
		default:
			line += " " + w
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// duration writes seconds as a duration the config reads: 1h, 1h30m, 90s.
func duration(sec int) string {
	d := time.Duration(sec) * time.Second
	s := d.String()
	s = strings.Replace(s, "h0m0s", "h", 1)
	s = strings.Replace(s, "m0s", "m", 1)
	return s
}

// document assembles the config.
func (c *converter) document() *ynode {
	head := wrap(fmt.Sprintf("switchyard config imported by switchyard import from %s: the rules of the EventBridge event bus %q. "+
		"Read the comments: they say what was not imported, or was imported with a difference.", c.input, c.opt.Bus))
	if len(c.env) > 0 {
		head = append(head, "", "It reads these environment variables; until they are set, their defaults keep it valid:")
		for _, r := range c.env {
			line := "  " + r.Name + ": " + r.What
			if r.Hint != "" {
				line += " (or import again with " + r.Hint + ")"
			}
			head = append(head, wrap(line)...)
		}
	}
	head = append(head, "")
	root := yMapNode()
	root.set("version", yNum("1"), head...)
	root.set("aws", yMapNode().set("region", yText(c.region)))
	c.useRefs(c.region)
	sources := ySeqNode()
	sources.add(c.source, wrap(fmt.Sprintf("Events reach switchyard through an SQS queue that an EventBridge rule on the bus %q forwards them to "+
		"(see the README's Importing EventBridge rules, and Receiving from EventBridge): set EVENTS_QUEUE_URL to its URL.", c.opt.Bus))...)
	root.set("sources", sources)
	root.set("targets", c.targets)
	root.set("policies", c.policies)
	c.rules.foot = append(c.rules.foot, c.pendingR...)
	root.set("rules", c.rules)
	return root
}
