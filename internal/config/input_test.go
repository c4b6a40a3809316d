package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/router"
)

// ec2Events are the events the inputs of testdata/cloudformation/rules.yaml
// are rendered from: plain, with characters to escape, with fields
// missing, with values of other types.
var ec2Events = []string{
	`{"version":"0","id":"e-1","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"111122223333",` +
		`"time":"2026-11-20T12:00:00Z","region":"eu-west-1","resources":["arn:aws:ec2:eu-west-1:111122223333:instance/i-1"],` +
		`"detail":{"instance-id":"i-1","state":"running"}}`,
	`{"source":"aws.ec2","time":"2026-11-20T12:00:01Z","resources":[],"detail":{"instance-id":"i-\"2\"\n","state":"stopp\u00e9d <b>"}}`,
	`{"source":"aws.ec2","detail":{"instance-id":"i-3"}}`,
	`{"source":"aws.ec2","time":7,"resources":["a","b"],"detail":{"instance-id":42,"state":{"code":16,"name":"running"}}}`,
	`{"source":"aws.ec2","detail":{}}`,
}

// sameInSwitchyardKeys is each target's input written in switchyard's
// keys, by target Id.
var sameInSwitchyardKeys = map[string]string{
	"notify": `paths:
  instance: $.detail.instance-id
  state: $.detail.state
  at: $.time
  resources: $.resources
template: |
  {
    "instance": <instance>,
    "state": <state>,
    "at": <at>,
    "resources": <resources>,
    "summary": "<instance> is <state> since <at>",
    "rule": <aws.events.rule-name>
  }
`,
	"alert":     "paths: {instance: $.detail.instance-id, state: $.detail.state}\ntemplate: '\"Instance <instance> is now <state>.\"'\n",
	"audit":     "paths: {v: $.detail}\ntemplate: <v>\n",
	"inventory": `template: '{"job": "refresh-inventory", "scope": ["ec2", "ebs"], "dryRun": false}'` + "\n",
}

// ruleWithInput is a config whose one rule has the input block given.
func ruleWithInput(t *testing.T, input string) *router.Transformer {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\nsources: [{name: in, type: http}]\ntargets: [{name: out, type: log}]\nrules:\n  - name: instance-state\n    pattern: {source: [aws.ec2]}\n    targets: [out]\n    input:\n")
	for line := range strings.SplitSeq(strings.TrimRight(input, "\n"), "\n") {
		b.WriteString("      " + line + "\n")
	}
	c, err := Parse("rule.yaml", []byte(b.String()), testEnv)
	if err != nil {
		t.Fatalf("%v\nin:\n%s", err, b.String())
	}
	return c.Rules[0].Input.Transformer
}

// pastedInputs returns, by target Id, the lines of each target's input
// keys (InputTransformer, InputPath, Input) in the template as written,
// moved to column 1.
func pastedInputs(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var all []*yaml.Node // every key of every target, in file order
	targetOf := map[*yaml.Node]string{}
	for _, res := range mapValue(doc.Content[0], "Resources").Content {
		if res.Kind != yaml.MappingNode || mapValue(res, "Type") == nil || mapValue(res, "Type").Value != "AWS::Events::Rule" {
			continue
		}
		for _, tgt := range mapValue(mapValue(res, "Properties"), "Targets").Content {
			for i := 0; i < len(tgt.Content); i += 2 {
				all = append(all, tgt.Content[i])
				targetOf[tgt.Content[i]] = mapValue(tgt, "Id").Value
			}
		}
	}
	out := map[string]string{}
	for i, k := range all {
		if inputForm(k.Value) == "" {
			continue
		}
		end := len(lines)
		if i+1 < len(all) {
			end = all[i+1].Line - 1
		}
		for _, l := range lines[k.Line-1 : end] {
			out[targetOf[k]] += strings.TrimPrefix(l, strings.Repeat(" ", k.Column-1)) + "\n"
		}
	}
	return out
}

// An AWS::Events::Rule target's input, pasted as it is, renders what the
// same input in switchyard's keys renders, for every event.
func TestInput_CloudFormationTargetsRenderAsSwitchyardKeys(t *testing.T) {
	pasted := pastedInputs(t, "testdata/cloudformation/rules.yaml")
	if len(pasted) != len(sameInSwitchyardKeys) {
		t.Fatalf("inputs of targets %v, want those of %v", pasted, sameInSwitchyardKeys)
	}
	var events []*router.Event
	for _, e := range ec2Events {
		ev, err := router.ParseEvent([]byte(e), time.Date(2026, 11, 20, 12, 0, 2, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	rendered := map[string][]string{}
	for id, input := range pasted {
		t.Run(id, func(t *testing.T) {
			eb, ours := ruleWithInput(t, input), ruleWithInput(t, sameInSwitchyardKeys[id])
			if eb.Text() != ours.Text() {
				t.Errorf("text %v, in switchyard's keys %v", eb.Text(), ours.Text())
			}
			for i, ev := range events {
				got, want := eb.Render(nil, ev, "instance-state"), ours.Render(nil, ev, "instance-state")
				if string(got) != string(want) {
					t.Errorf("event %d:\n%s\nin switchyard's keys:\n%s", i, got, want)
				}
				rendered[id] = append(rendered[id], string(got))
			}
		})
	}
	// And what they render is what EventBridge would.
	for id, want := range map[string]string{
		"alert":     `"Instance i-1 is now running."`,
		"audit":     `{"instance-id":"i-1","state":"running"}`,
		"inventory": `{"job": "refresh-inventory", "scope": ["ec2", "ebs"], "dryRun": false}`,
		"notify": `{
  "instance": "i-1",
  "state": "running",
  "at": "2026-11-20T12:00:00Z",
  "resources": ["arn:aws:ec2:eu-west-1:111122223333:instance/i-1"],
  "summary": "i-1 is running since 2026-11-20T12:00:00Z",
  "rule": "instance-state"
}
`,
	} {
		if got := rendered[id]; len(got) == 0 || got[0] != want {
			t.Errorf("%s on the first event: %q, want %q", id, got, want)
		}
	}
	if got := rendered["audit"][2]; got != `{"instance-id":"i-3"}` {
		t.Errorf("audit of an event without state: %s", got)
	}
	if got := rendered["alert"][3]; got != `"Instance 42 is now {code:16,name:running}."` {
		t.Errorf("alert with a number and an object: %s", got)
	}
}

// The same holds for the flat form (InputPathsMap and InputTemplate right
// under input) and for a constant with what looks like a placeholder.
func TestInput_FlatFormAndConstants(t *testing.T) {
	ev, _ := router.ParseEvent([]byte(ec2Events[1]), time.Now())
	flat := ruleWithInput(t, "InputPathsMap: {i: $.detail.instance-id, s: $.detail.state}\nInputTemplate: '{\"i\": <i>, \"s\": \"<s>\"}'\n")
	ours := ruleWithInput(t, "paths: {i: $.detail.instance-id, s: $.detail.state}\ntemplate: '{\"i\": <i>, \"s\": \"<s>\"}'\n")
	if got, want := flat.Render(nil, ev, "r"), ours.Render(nil, ev, "r"); string(got) != string(want) || string(got) != `{"i": "i-\"2\"\n", "s": "stopp\u00e9d <b>"}` {
		t.Errorf("flat %s, ours %s", got, want)
	}
	c := ruleWithInput(t, `Input: '{"note": "<instance> stays as written"}'`+"\n")
	if got := c.Render(nil, ev, "r"); string(got) != `{"note": "<instance> stays as written"}` || c.Text() {
		t.Errorf("constant: %s", got)
	}
}
