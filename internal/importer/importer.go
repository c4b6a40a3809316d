// Package importer turns EventBridge rules into a switchyard config: the
// AWS::Events::Rule resources of a CloudFormation template, or the JSON of
// aws events list-rules and list-targets-by-rule. Patterns carry over
// unchanged, input transformers as rules' inputs, targets by their ARN's
// service, retry policies and dead-letter queues as policies. What does
// not convert (schedules, API destinations, services switchyard has no
// target for) is left out, with a comment where it would be and a
// warning; what the input does not tell (a name CloudFormation generates,
// a parameter without a default) is read from the environment, with a
// default that keeps the config valid. The config written is validated as
// switchyard validate does.
package importer

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FromCloudFormation imports the AWS::Events::Rule resources of a
// template, YAML (with CloudFormation's short-form tags) or JSON. An error
// other than an *InvalidError or ErrNothing means the template could not
// be read.
func FromCloudFormation(file string, data []byte, opt Options) (*Result, error) {
	t, err := parseTemplate(file, data, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	rules := t.eventRules()
	c := newConverter(file+" (CloudFormation)", opt, t.region(), t.account())
	if t.transform != "" {
		c.warn("%s: the template has Transform %s: rules that the transform makes (a SAM function's events, say) are not in it; "+
			"import the processed template (aws cloudformation get-template --template-stage Processed) to have them", file, t.transform)
	}
	if !c.region.literal() || !c.account.literal() {
		c.warn("the stack's region and account are not known: the config reads AWS_REGION and AWS_ACCOUNT_ID (pass --region and --account to write them)")
	}
	res, err := c.convert(rules)
	if res != nil {
		res.Warnings = append(t.notes, res.Warnings...)
		res.Notes = c.unresolved()
	}
	return res, err
}

// unresolved are warnings for the values the config reads from the
// environment because the input does not tell them.
func (c *converter) unresolved() []string {
	var out []string
	for _, r := range c.env {
		if r.Name == "EVENTS_QUEUE_URL" || r.Name == "AWS_REGION" || r.Name == "AWS_ACCOUNT_ID" {
			continue
		}
		n := fmt.Sprintf("set %s to %s; until it is set, the config uses %s", r.Name, r.What, r.Default)
		if r.Hint != "" {
			n += " (or import again with " + r.Hint + ")"
		}
		out = append(out, n)
	}
	return out
}

// Targets are the outputs of aws events list-targets-by-rule, by rule
// name.
type Targets struct {
	// From says where they were read, for messages.
	From   string
	byRule map[string][]byte
	files  map[string]string
}

// LoadTargets reads the targets of the rules: a directory of NAME.json
// files, each the output of aws events list-targets-by-rule --rule NAME,
// or one JSON file mapping rule names to such outputs.
func LoadTargets(path string) (*Targets, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	ts := &Targets{From: path, byRule: map[string][]byte{}, files: map[string]string{}}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), ".json")
			if !ok || e.IsDir() {
				continue
			}
			file := filepath.Join(path, e.Name())
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			ts.byRule[name] = data
			ts.files[name] = file
		}
		return ts, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not JSON: %v", path, err)
	}
	if v.kind != kObject {
		return nil, fmt.Errorf("%s: want an object mapping rule names to the output of aws events list-targets-by-rule, got %s", path, v.kind)
	}
	for i, k := range v.keys {
		ts.byRule[k] = v.vals[i].appendJSON(nil, true)
		ts.files[k] = fmt.Sprintf("%s (%s)", path, k)
	}
	return ts, nil
}

// FromCLI imports the output of aws events list-rules (rules, read from
// rulesFile) with the targets of each rule. An error other than an
// *InvalidError or ErrNothing means the input could not be read.
func FromCLI(rulesFile string, rules []byte, targets *Targets, opt Options) (*Result, error) {
	v, err := parseJSON(rules)
	if err != nil {
		return nil, fmt.Errorf("%s: not JSON: %v", rulesFile, err)
	}
	list := v.get("Rules")
	if v.kind != kObject || list == nil || list.kind != kArray {
		return nil, fmt.Errorf("%s: not the output of aws events list-rules: want an object with Rules, a list", rulesFile)
	}
	for _, k := range v.keys {
		if k != "Rules" && k != "NextToken" {
			return nil, fmt.Errorf("%s: not the output of aws events list-rules: unknown key %q", rulesFile, k)
		}
	}
	var out []*ebRule
	region, account := opt.Region, opt.Account
	for i, rv := range list.vals {
		if rv.kind != kObject {
			return nil, fmt.Errorf("%s: Rules[%d] is %s, not an object", rulesFile, i, rv.kind)
		}
		r := &ebRule{Bus: "default"}
		readRule(r, rv)
		if r.Name == "" {
			return nil, fmt.Errorf("%s: Rules[%d] has no Name", rulesFile, i)
		}
		r.ID = r.Name
		r.Where = fmt.Sprintf("%s: Rules[%d]", rulesFile, i)
		if a := rv.get("Arn"); a != nil && a.kind == kString {
			r.ARN = a.str
			if pa, ok := parseARN(a.str.plain()); ok && r.Bus == opt.busOrDefault() {
				if region == "" {
					region = pa.Region
				}
				if account == "" {
					account = pa.Account
				}
			}
		}
		out = append(out, r)
		if r.Bus != opt.busOrDefault() {
			continue // reported as on another bus; its targets are not needed
		}
		data, ok := targets.byRule[r.Name]
		if !ok {
			r.Problem = fmt.Sprintf("its targets are not in %s (aws events list-targets-by-rule --rule %s)", targets.From, r.Name)
			continue
		}
		file := targets.files[r.Name]
		tv, err := parseJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: not JSON: %v", file, err)
		}
		tl := tv.get("Targets")
		if tv.kind != kObject || tl == nil || tl.kind != kArray {
			return nil, fmt.Errorf("%s: not the output of aws events list-targets-by-rule: want an object with Targets, a list", file)
		}
		for j, e := range tl.vals {
			t := &ebTarget{Where: fmt.Sprintf("%s: Targets[%d]", file, j)}
			readTarget(t, e)
			r.Targets = append(r.Targets, t)
		}
	}
	var extra []string
	for _, name := range slices.Sorted(maps.Keys(targets.byRule)) {
		if !slices.ContainsFunc(out, func(r *ebRule) bool { return r.Name == name }) {
			extra = append(extra, fmt.Sprintf("%s: not read: %s lists no rule %s", targets.files[name], rulesFile, name))
		}
	}
	regionText, accountText := lit(region), lit(account)
	if region == "" {
		regionText = refText(&envRef{Name: "AWS_REGION", Default: placeholderRegion, What: "the rules' region", Hint: "--region"})
	}
	if account == "" {
		accountText = refText(&envRef{Name: "AWS_ACCOUNT_ID", Default: placeholderAccount, What: "the rules' account", Hint: "--account"})
	}
	c := newConverter(rulesFile+" (aws events list-rules)", opt, regionText, accountText)
	c.warnings = append(c.warnings, extra...)
	res, err := c.convert(out)
	if res != nil {
		res.Notes = c.unresolved()
	}
	return res, err
}

func (o Options) busOrDefault() string { return busName(o.Bus) }

// IsInputError reports whether err means the input could not be read
// (rather than that nothing could be imported, or a bug).
func IsInputError(err error) bool {
	var inv *InvalidError
	return err != nil && !errors.As(err, &inv) && !errors.Is(err, ErrNothing)
}
