package router

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// transformEvent is the event the transformer tests render from.
const transformEvent = `{"version":"0","id":"e-1","detail-type":"Account Update","source":"core.accounts","account":"111122223333","time":"2026-06-11T08:33:10Z","region":"us-east-1","resources":["arn:aws:x:::r1"],"detail":{"command":"update-account","payload":{"acc_id":"0a787ecb-4015","sf_id":"baz"},"listsingle":["HIGH"],"listmulti":["ACTIVE","INACTIVE"],"valid":true,"qty":3,"note":null,"msg":"say \"hi\"\nbye","accent":"caf\u00e9","items":[{"sku":"A"},{"sku":"B","tags":["x"]}],
  "spaced": { "a" : [ 1 , 2 ] }}}`

var transformPaths = map[string]string{
	"userId":       "$.detail.payload.acc_id",
	"payload":      "$.detail.payload",
	"listsingle":   "$.detail.listsingle",
	"listmulti":    "$.detail.listmulti",
	"valid":        "$.detail.valid",
	"qty":          "$.detail.qty",
	"note":         "$.detail.note",
	"msg":          "$.detail.msg",
	"accent":       "$.detail.accent",
	"sku1":         "$.detail.items[1].sku",
	"skus":         "$.detail.items[*].sku",
	"ids":          "$.detail.payload.*",
	"spaced":       "$.detail.spaced",
	"systemstring": "$.detail.awsAccountId",
	"outOfRange":   "$.detail.items[5].sku",
	"detailType":   "$.detail-type",
	"whole":        "$",
}

func TestTransformer_Render(t *testing.T) {
	ev, err := ParseEvent([]byte(transformEvent), time.Date(2026, 6, 11, 8, 33, 12, 500, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, template, want string
		text                 bool
	}{
		// Outputs EventBridge was recorded producing, for the same template.
		{"aws: object and embedded string", `{"method": "PUT", "path": "users-service/users/<userId>", "bod": <payload>}`,
			`{"method": "PUT", "path": "users-service/users/0a787ecb-4015", "bod": {"acc_id":"0a787ecb-4015","sf_id":"baz"}}`, false},
		{"aws: string value gets quotes", `{"id" : <userId>}`, `{"id" : "0a787ecb-4015"}`, false},
		{"aws: quoted placeholder", `{"id" : "<userId>"}`, `{"id" : "0a787ecb-4015"}`, false},
		{"aws: placeholder in a list", `{"bod": [<userId>, "hardcoded"]}`, `{"bod": ["0a787ecb-4015", "hardcoded"]}`, false},
		{"aws: list value", `{"singlelistitem": <listsingle>}`, `{"singlelistitem": ["HIGH"]}`, false},
		{"aws: string template", `"<listsingle> single list item <listmulti> multiple list items <systemstring> system account id <payload> payload <userId> user id"`,
			`"[HIGH] single list item [ACTIVE,INACTIVE] multiple list items  system account id {acc_id:0a787ecb-4015,sf_id:baz} payload 0a787ecb-4015 user id"`, false},
		{"aws: boolean in a string template", `"Command is <valid>!"`, `"Command is true!"`, false},
		{"aws: missing path outside quotes is empty string", `{"a": <systemstring>}`, `{"a": ""}`, false},
		{"aws: same placeholder twice", `{"p": "users/<userId>/second/<userId>"}`, `{"p": "users/0a787ecb-4015/second/0a787ecb-4015"}`, false},

		// Values inside quotes are JSON-escaped, so the payload stays JSON
		// (EventBridge leaves them as they are and fails the delivery).
		{"escaped inside quotes", `{"m": "<msg>!"}`, `{"m": "say \"hi\"\nbye!"}`, false},
		{"object inside quotes", `{"p": "<payload>"}`, `{"p": "{acc_id:0a787ecb-4015,sf_id:baz}"}`, false},
		{"escapes kept outside quotes", `{"m": <msg>}`, `{"m": "say \"hi\"\nbye"}`, false},
		{"unicode escape kept", `{"a": <accent>, "b": "<accent>"}`, `{"a": "caf\u00e9", "b": "caf\u00e9"}`, false},
		{"number and boolean", `{"q": <qty>, "v": <valid>, "s": "<qty>/<valid>"}`, `{"q": 3, "v": true, "s": "3/true"}`, false},
		{"null", `{"n": <note>, "s": "<note>"}`, `{"n": null, "s": "null"}`, false},
		{"missing inside quotes adds nothing", `{"a": "x<systemstring>y"}`, `{"a": "xy"}`, false},
		{"index out of range is missing", `{"a": <outOfRange>}`, `{"a": ""}`, false},
		{"array index", `{"sku": <sku1>}`, `{"sku": "B"}`, false},
		{"wildcard over an array", `{"skus": <skus>}`, `{"skus": ["A","B"]}`, false},
		{"wildcard over an object", `{"ids": <ids>}`, `{"ids": ["0a787ecb-4015","baz"]}`, false},
		{"objects are compacted", `{"s": <spaced>}`, `{"s": {"a":[1,2]}}`, false},
		{"a key with a dash", `{"t": <detailType>}`, `{"t": "Account Update"}`, false},
		{"a lone placeholder", `<payload>`, `{"acc_id":"0a787ecb-4015","sf_id":"baz"}`, false},
		{"a lone string placeholder", `<userId>`, `"0a787ecb-4015"`, false},
		{"white space and newlines are kept", "{\n  \"a\": <qty>\n}\n", "{\n  \"a\": 3\n}\n", false},
		{"escaped quotes in the template", `"instance \"<userId>\" is <valid>"`, `"instance \"0a787ecb-4015\" is true"`, false},
		{"placeholders around escapes", `{"a": "\\<qty>\u0041<qty>\n"}`, `{"a": "\\3\u00413\n"}`, false},

		// Predefined placeholders.
		{"rule name and identifier", `{"r": <aws.events.rule-name>, "arn": "<aws.events.rule-arn>"}`, `{"r": "route-accounts", "arn": "switchyard:rule/route-accounts"}`, false},
		{"ingestion time", `{"at": <aws.events.event.ingestion-time>}`, `{"at": "2026-06-11T08:33:12Z"}`, false},
		{"whole event", `{"e": <aws.events.event.json>}`, `{"e": ` + compact(transformEvent) + `}`, false},
		{"the event without its detail", `<aws.events.event>`,
			`{"id":"e-1","account":"111122223333","detailType":"Account Update","time":"2026-06-11T08:33:10Z","source":"core.accounts","region":"us-east-1","resources":["arn:aws:x:::r1"],"version":"0"}`, false},
		{"the whole event by path", `<whole>`, compact(transformEvent), false},

		// Templates that are not JSON render text.
		{"text", `<userId> is <valid> with <qty>`, `0a787ecb-4015 is true with 3`, true},
		{"text with an object", `payload: <payload>, tags <listmulti>`, `payload: {acc_id:0a787ecb-4015,sf_id:baz}, tags [ACTIVE,INACTIVE]`, true},
		{"text decodes escapes", `msg=<msg>`, "msg=say \"hi\"\nbye", true},
		{"text with a missing path", `[<systemstring>]x`, `[]x`, true},
		{"text that starts with a bracket", `[ALERT] <userId> is down`, `[ALERT] 0a787ecb-4015 is down`, true},
		{"several quoted lines are text", "\"<listsingle> single\"\n\"<payload> payload\"", "\"[HIGH] single\"\n\"{acc_id:0a787ecb-4015,sf_id:baz} payload\"", true},
		{"a literal < that is no placeholder", `a < b <userId>`, `a < b 0a787ecb-4015`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTransformer(transformPaths, tc.template)
			if err != nil {
				t.Fatalf("NewTransformer(%q): %v", tc.template, err)
			}
			if tr.Text() != tc.text {
				t.Errorf("Text() = %v, want %v", tr.Text(), tc.text)
			}
			got := string(tr.Render(nil, ev, "route-accounts"))
			if got != tc.want {
				t.Errorf("template %s\ngot  %s\nwant %s", tc.template, got, tc.want)
			}
			if !tr.Text() && !json.Valid([]byte(got)) {
				t.Errorf("JSON template rendered invalid JSON: %s", got)
			}
		})
	}
}

func compact(s string) string { return string(appendCompact(nil, []byte(s))) }

func TestNewTransformer_Invalid(t *testing.T) {
	many := map[string]string{}
	for i := range 101 {
		many["k"+strings.Repeat("x", i)] = "$.a"
	}
	for _, tc := range []struct {
		name     string
		paths    map[string]string
		template string
		want     string
	}{
		{"undefined placeholder", map[string]string{"a": "$.a"}, `{"x": <b>}`, "template: undefined placeholder <b> (defined: a)"},
		{"no paths defined", nil, `{"x": <b>}`, "undefined placeholder <b> (no paths are defined)"},
		{"empty template", nil, ``, "template: required"},
		{"template too long", nil, `"` + strings.Repeat("x", 8192) + `"`, "8194 characters exceed EventBridge's limit of 8192"},
		{"too many paths", many, `"x"`, "paths: 101 paths exceed EventBridge's limit of 100"},
		{"a dot in a name", map[string]string{"a.b": "$.a"}, `"x"`, `paths.a.b: invalid name "a.b"`},
		{"path without $", map[string]string{"a": "detail.a"}, `"x"`, `paths.a: invalid path "detail.a": a path starts with $`},
		{"bracket names", map[string]string{"a": "$['detail']"}, `"x"`, `paths.a: invalid path "$['detail']"`},
		{"recursive descent", map[string]string{"a": "$..a"}, `"x"`, "empty name after '.'"},
		{"filter", map[string]string{"a": "$.a[?(@.b)]"}, `"x"`, "filters, slices and quoted names are not supported"},
		{"negative index", map[string]string{"a": "$.a[-1]"}, `"x"`, "want an array index"},
		{"unclosed bracket", map[string]string{"a": "$.a[1"}, `"x"`, "unclosed '['"},
		{"path too long", map[string]string{"a": "$." + strings.Repeat("a", 256)}, `"x"`, "longer than EventBridge's limit of 256"},
		{"placeholder as a key", map[string]string{"a": "$.a"}, `{<a>: 1}`, "a placeholder cannot be an object key"},
		{"looks like JSON but is not", map[string]string{"a": "$.a"}, `{"x": <a>,}`, "looks like JSON but is not valid JSON"},
		{"a list that is not JSON", nil, ` ["x" "y"] `, "looks like JSON but is not valid JSON"},
		{"whole event inside a string", nil, `{"e": "<aws.events.event.json>"}`, "<aws.events.event.json> can only be used as a JSON value"},
		{"event header in text", nil, `event: <aws.events.event>`, "<aws.events.event> can only be used as a JSON value"},
		{"placeholder after a backslash", map[string]string{"v": "$.v"}, `{"msg": "\<v>n"}`, "a placeholder cannot stand inside an escape sequence"},
		{"placeholder in a unicode escape", map[string]string{"v": "$.v"}, `{"msg": "\u<v>0041"}`, "a placeholder cannot stand inside an escape sequence"},
		{"placeholder in the last hex digits", map[string]string{"v": "$.v"}, `{"msg": "\u00<v>"}`, "a placeholder cannot stand inside an escape sequence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTransformer(tc.paths, tc.template)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewTransformer(%v, %q) = %v, want an error containing %q", tc.paths, tc.template, err, tc.want)
			}
			for _, fe := range FieldErrors(err) {
				if fe.Field == "" {
					t.Errorf("error %q names no field", fe)
				}
			}
		})
	}
}

// FuzzTransformer checks that a template that compiles as JSON always
// renders valid JSON, whatever the event holds.
func FuzzTransformer(f *testing.F) {
	f.Add(`{"a": <x>, "b": "<x>-<y>"}`, "$.detail.payload", `{"detail":{"payload":{"k":"v\"q"}}}`)
	f.Add(`"<x> and <y>"`, "$.detail.msg", `{"detail":{"msg":"a\nb"}}`)
	f.Add(`[<x>, <aws.events.event>, "<aws.events.rule-name>"]`, "$.detail[*]", `{"detail":[1,"2",{"3":null}]}`)
	f.Add(`{"msg": "\<x>n"}`, "$.detail", `{"detail":"abc"}`)
	f.Add(`{"msg": "\u<x>0041"}`, "$.detail", `{"detail":"xyz"}`)
	f.Fuzz(func(t *testing.T, template, xPath, event string) {
		tr, err := NewTransformer(map[string]string{"x": xPath, "y": "$.detail"}, template)
		if err != nil {
			return
		}
		ev, err := ParseEvent([]byte(event), time.Unix(0, 0))
		if err != nil {
			return
		}
		out := tr.Render(nil, ev, "r")
		if !tr.Text() && !json.Valid(out) {
			t.Fatalf("template %q on %s rendered invalid JSON: %s", template, event, out)
		}
	})
}

// An EventBridge target's Input is constant JSON: every payload is the
// text as written, and <name> in it is text.
func TestNewConstant(t *testing.T) {
	ev, err := ParseEvent([]byte(transformEvent), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, input := range []string{`{"kind": "nightly", "html": "<b>hi</b>", "rule": "<aws.events.rule-name>"}`, `"plain"`, `[1, 2]`, ` 3 `, `null`} {
		tr, err := NewConstant(input)
		if err != nil {
			t.Fatalf("%q: %v", input, err)
		}
		if got := string(tr.Render(nil, ev, "r")); got != input || tr.Text() {
			t.Errorf("%q rendered %q (text %v)", input, got, tr.Text())
		}
	}
	for _, tc := range []struct{ input, want string }{
		{"", "required (constant JSON"},
		{"  ", "required (constant JSON"},
		{`{"a": 1`, "not valid JSON (Input is constant JSON text)"},
		{`{"a": 1, "a": 2}`, "duplicate key"},
		{`hello <x>`, "not valid JSON"},
		{`"` + strings.Repeat("x", 8191) + `"`, "8193 characters exceed EventBridge's limit of 8192"},
	} {
		if _, err := NewConstant(tc.input); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewConstant(%.40q) = %v, want %q", tc.input, err, tc.want)
		}
	}
}

// FuzzConstant: a constant that compiles renders itself, which is JSON.
func FuzzConstant(f *testing.F) {
	for _, s := range []string{`{"a": "<b>"}`, `[1,{"x":null}]`, `"s"`, `{"a":1,"a":2}`, "\"\xff\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tr, err := NewConstant(input)
		if err != nil {
			return
		}
		ev, _ := ParseEvent([]byte(`{"detail":{}}`), time.Unix(0, 0))
		if out := tr.Render(nil, ev, "r"); string(out) != input || !json.Valid(out) {
			t.Fatalf("NewConstant(%q) rendered %q", input, out)
		}
	})
}
