package importer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Sentinels for placeholders while an ECS target's input is parsed as
// JSON (see parseJSONText's, which differ).
const (
	phOpen  = '\uE002'
	phClose = '\uE003'
)

// ecsTarget fills n, an ecs_task target, from a target's EcsParameters
// and its input: for an ECS task, EventBridge's input is the task's
// overrides (containerOverrides, taskRoleArn...), which the ecs_task target
// writes as container_overrides, filled per delivery from its rule's
// payload.
func (c *converter) ecsTarget(r *ebRule, n *ynode, t *ebTarget, ct *convTarget, notes *[]string) string {
	e := t.ECS
	cluster := t.ARN
	if a, _ := parseARN(t.ARN.plain()); t.ARN.literal() && c.account.literal() && a.Account == c.account.plain() {
		cluster = lit(strings.TrimPrefix(a.Resource, "cluster/"))
	}
	n.set("type", yStr("ecs_task")).set("cluster", yText(cluster)).set("task_definition", yText(e.TaskDefinition))
	c.useRefs(cluster, e.TaskDefinition)
	if e.LaunchType != "" {
		n.set("launch_type", yStr(e.LaunchType))
	}
	if len(e.CapacityProviders) > 0 {
		cps := ySeqNode()
		for _, cp := range e.CapacityProviders {
			m := yMapNode()
			m.flow = true
			m.set("capacity_provider", yText(cp.Name))
			if cp.Weight != 0 {
				m.set("weight", yNum(strconv.Itoa(cp.Weight)))
			}
			if cp.Base != 0 {
				m.set("base", yNum(strconv.Itoa(cp.Base)))
			}
			cps.add(m)
			c.useRefs(cp.Name)
		}
		n.set("capacity_provider_strategy", cps)
	}
	if len(e.Subnets) > 0 || len(e.SecurityGroups) > 0 || e.AssignPublicIP != "" {
		net := yMapNode()
		list := func(ts []text) *ynode {
			l := yFlowSeq()
			for _, s := range ts {
				l.add(yText(s))
				c.useRefs(s)
			}
			return l
		}
		net.set("subnets", list(e.Subnets))
		if len(e.SecurityGroups) > 0 {
			net.set("security_groups", list(e.SecurityGroups))
		}
		switch e.AssignPublicIP {
		case "ENABLED":
			net.set("assign_public_ip", yBool(true))
		case "", "DISABLED":
		default:
			return fmt.Sprintf("AssignPublicIp %q is neither ENABLED nor DISABLED", e.AssignPublicIP)
		}
		n.set("network", net)
	}
	if e.PlatformVersion != nil {
		n.set("platform_version", yText(e.PlatformVersion))
		c.useRefs(e.PlatformVersion)
	}
	if e.Count != nil && *e.Count != 1 {
		n.set("count", yNum(strconv.Itoa(*e.Count)))
	}
	if e.Group != nil {
		n.set("group", yText(e.Group))
		c.useRefs(e.Group)
	}
	if e.PropagateTags != "" {
		n.set("propagate_tags", yStr(e.PropagateTags))
	}
	if e.EnableExecuteCommand {
		n.set("enable_execute_command", yBool(true))
	}
	if len(e.Tags) > 0 {
		tags := yMapNode()
		for _, tag := range e.Tags {
			tags.set(tag.Name, yText(tag.Path))
			c.useRefs(tag.Path)
		}
		n.set("tags", tags)
	}
	if len(e.Unsupported) > 0 {
		*notes = append(*notes, fmt.Sprintf("Not imported: %s (the ecs_task target does not set them; switchyard tags its tasks and sets startedBy itself).", strings.Join(e.Unsupported, ", ")))
		ct.warnings = append(ct.warnings, fmt.Sprintf("%s, target %s: EcsParameters %s not imported", ruleLabel(r), t.ID, strings.Join(e.Unsupported, ", ")))
	}

	var tpl text
	switch {
	case t.InputPath != nil:
		return "its InputPath would take the task's overrides from the event, which the ecs_task target does not do"
	case t.Input != nil:
		tpl = *t.Input
	case t.Transformer != nil:
		tpl = t.Transformer.Template
	default:
		ct.anyInput = true // RunTask with no overrides: the payload is not used
		return ""
	}
	ov, used, err := ecsOverrides(tpl, t.Transformer != nil)
	if err != "" {
		return "its input, the task's overrides: " + err
	}
	for _, k := range []string{"task_role_arn", "execution_role_arn"} {
		if v := ov.get(k); v != nil {
			n.set(k, v)
		}
	}
	if co := ov.get("container_overrides"); co != nil {
		n.set("container_overrides", co)
	}
	if len(used) == 0 {
		ct.anyInput = true
		return ""
	}
	// The rule renders the placeholders' values as the payload's top-level
	// fields, which the overrides' <name> placeholders read.
	var b strings.Builder
	b.WriteString("{")
	for i, u := range used {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(appendJSONString(nil, u))
		b.WriteString(": <" + u + ">")
	}
	b.WriteString("}")
	ct.input = &ruleInput{paths: t.Transformer.Paths, template: lit(b.String())}
	*notes = append(*notes, "Its container overrides read the payload's fields: its rule renders them from the event as EventBridge's input transformer did.")
	return ""
}

// ecsOverrides reads an ECS target's input, the task's overrides as JSON,
// into the ecs_task target's keys (container_overrides, task_role_arn,
// execution_role_arn); with placeholders (an input transformer's
// template), it returns the names they use, which become <name>
// placeholders of the overrides.
func ecsOverrides(tpl text, placeholders bool) (*ynode, []string, string) {
	var used []string
	var sub text
	q := &quoteTracker{}
	for _, s := range tpl {
		if s.ref != nil {
			q.feed(s.ref.Default)
			sub = join(sub, text{s})
			continue
		}
		last := 0
		for _, loc := range placeholderRE().FindAllStringIndex(s.lit, -1) {
			if !placeholders {
				return nil, nil, fmt.Sprintf("it holds %s, which switchyard would read as a placeholder", s.lit[loc[0]:loc[1]])
			}
			q.feed(s.lit[last:loc[0]])
			sub = join(sub, lit(s.lit[last:loc[0]]))
			name := s.lit[loc[0]+1 : loc[1]-1]
			if !slices.Contains(used, name) {
				used = append(used, name)
			}
			marker := string(phOpen) + name + string(phClose)
			if !q.inString {
				marker = `"` + marker + `"`
			}
			sub = join(sub, lit(marker))
			last = loc[1]
		}
		q.feed(s.lit[last:])
		sub = join(sub, lit(s.lit[last:]))
	}
	v, err := parseJSONText(sub)
	if err != nil {
		return nil, nil, "not JSON: " + err.Error()
	}
	if v.kind != kObject {
		return nil, nil, fmt.Sprintf("%s, not a JSON object", v.kind)
	}
	out := yMapNode()
	str := func(x *value, where string, constant bool) (text, string) {
		if x == nil || x.kind != kString {
			return nil, where + " is not a string"
		}
		var t text
		for _, s := range x.str {
			if s.ref != nil {
				t = join(t, text{s})
				continue
			}
			rest := s.lit
			for {
				i := strings.IndexRune(rest, phOpen)
				if i < 0 {
					break
				}
				j := strings.IndexRune(rest[i:], phClose)
				if constant {
					return nil, where + " must be constant, not a placeholder"
				}
				t = join(t, lit(rest[:i]), lit("<"+rest[i+len(string(phOpen)):i+j]+">"))
				rest = rest[i+j+len(string(phClose)):]
			}
			t = join(t, lit(rest))
		}
		return t, ""
	}
	for i, k := range v.keys {
		x := v.vals[i]
		switch k {
		case "taskRoleArn", "executionRoleArn":
			s, e := str(x, k, true)
			if e != "" {
				return nil, nil, e
			}
			key := map[string]string{"taskRoleArn": "task_role_arn", "executionRoleArn": "execution_role_arn"}[k]
			out.set(key, yText(s))
		case "containerOverrides":
			if x.kind != kArray {
				return nil, nil, "containerOverrides is not a list"
			}
			list := ySeqNode()
			for ci, co := range x.vals {
				where := fmt.Sprintf("containerOverrides[%d]", ci)
				if co.kind != kObject {
					return nil, nil, where + " is not an object"
				}
				m := yMapNode()
				for fi, f := range co.keys {
					fv := co.vals[fi]
					switch f {
					case "name":
						s, e := str(fv, where+".name", true)
						if e != "" {
							return nil, nil, e
						}
						m.set("name", yText(s))
					case "command":
						if fv.kind != kArray {
							return nil, nil, where + ".command is not a list"
						}
						cmd := yFlowSeq()
						for ai, arg := range fv.vals {
							s, e := str(arg, fmt.Sprintf("%s.command[%d]", where, ai), false)
							if e != "" {
								return nil, nil, e
							}
							cmd.add(yText(s))
						}
						m.set("command", cmd)
					case "environment":
						if fv.kind != kArray {
							return nil, nil, where + ".environment is not a list"
						}
						env := yMapNode()
						for ei, ev := range fv.vals {
							ew := fmt.Sprintf("%s.environment[%d]", where, ei)
							name, e := str(ev.get("name"), ew+".name", true)
							if e != "" {
								return nil, nil, e
							}
							val, e := str(ev.get("value"), ew+".value", false)
							if e != "" {
								return nil, nil, e
							}
							env.set(name.plain(), yText(val))
						}
						m.set("environment", env)
					case "cpu", "memory":
						if fv.kind != kNumber {
							return nil, nil, where + "." + f + " is not a number"
						}
						m.set(f, yNum(fv.num))
					default:
						return nil, nil, fmt.Sprintf("%s.%s has no equivalent in the ecs_task target", where, f)
					}
				}
				list.add(m)
			}
			out.set("container_overrides", list)
		default:
			return nil, nil, fmt.Sprintf("%s has no equivalent in the ecs_task target", k)
		}
	}
	return out, used, ""
}
