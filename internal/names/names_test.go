package names

import (
	"strings"
	"testing"
)

func TestParseQueueURL(t *testing.T) {
	for _, tc := range []struct {
		url, account, name, region string
		ok                         bool
	}{
		{"https://sqs.us-east-1.amazonaws.com/123456789012/jobs", "123456789012", "jobs", "us-east-1", true},
		{"https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo", "123456789012", "jobs.fifo", "eu-west-1", true},
		{"http://127.0.0.1:4566/000000000000/q-1_a", "000000000000", "q-1_a", "", true},
		{"http://localhost.localstack.cloud:4566/000000000000/q", "000000000000", "q", "", true},
		{"https://vpce-1.sqs.us-east-1.vpce.amazonaws.com/123456789012/jobs/", "123456789012", "jobs", "us-east-1", true},
		{"https://ap-southeast-2.queue.amazonaws.com/123456789012/jobs", "123456789012", "jobs", "ap-southeast-2", true},
		{"https://queue.amazonaws.com/123456789012/jobs", "123456789012", "jobs", "us-east-1", true},
		{"https://sqs.cn-north-1.amazonaws.com.cn/123456789012/jobs", "123456789012", "jobs", "cn-north-1", true},
		{"https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/jobs", "123456789012", "jobs", "us-gov-west-1", true},
		{"", "", "", "", false},
		{"jobs", "", "", "", false},
		{"ftp://host/1/q", "", "", "", false},
		{"https://sqs.us-east-1.amazonaws.com/jobs", "", "", "", false},
		{"https://sqs.us-east-1.amazonaws.com/1/2/3", "", "", "", false},
		{"https://sqs.us-east-1.amazonaws.com/1/bad.name", "", "", "", false},
		{"https://sqs.us-east-1.amazonaws.com/1/" + string(make([]byte, 81)), "", "", "", false},
	} {
		q, err := ParseQueueURL(tc.url)
		if (err == nil) != tc.ok || q.Account != tc.account || q.Name != tc.name || q.Region != tc.region {
			t.Errorf("ParseQueueURL(%q) = %+v, %v", tc.url, q, err)
		}
	}
}

func TestCheckFunction(t *testing.T) {
	for _, tc := range []struct {
		f, qualifier string
		ok           bool
	}{
		{"thumb", "", true},
		{"thumb:prod", "prod", true},
		{"thumb:$LATEST", "$LATEST", true},
		{"123456789012:function:thumb", "", true},
		{"arn:aws:lambda:us-east-1:123456789012:function:thumb", "", true},
		{"arn:aws:lambda:us-east-1:123456789012:function:thumb:7", "7", true},
		{"arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:thumb", "", true},
		{"", "", false},
		{"not a function!", "", false},
		{"arn:aws:s3:::bucket", "", false},
	} {
		q, err := CheckFunction(tc.f)
		if (err == nil) != tc.ok || q != tc.qualifier {
			t.Errorf("CheckFunction(%q) = %q, %v", tc.f, q, err)
		}
	}
}

func TestCheckTaskDefinition(t *testing.T) {
	for _, tc := range []struct {
		td string
		ok bool
	}{
		{"transcode", true},
		{"transcode:7", true},
		{"arn:aws:ecs:us-east-1:123456789012:task-definition/transcode:7", true},
		{"", false},
		{"bad/def", false},
		{"transcode:latest", false},
		{"arn:aws:ecs:us-east-1:123456789012:task/transcode", false},
	} {
		if err := CheckTaskDefinition(tc.td); (err == nil) != tc.ok {
			t.Errorf("CheckTaskDefinition(%q) = %v", tc.td, err)
		}
	}
}

func TestCheckSubject(t *testing.T) {
	for _, tc := range []struct {
		s        string
		wild, ok bool
	}{
		{"events.orders", false, true},
		{"events.*", true, true},
		{"events.>", true, true},
		{">", true, true},
		{"events.*", false, false},
		{"a.>.b", true, false},
		{"ev*nts", true, false},
		{"a..b", true, false},
		{".a", true, false},
		{"a b", true, false},
		{"", true, false},
	} {
		if err := CheckSubject(tc.s, tc.wild); (err == nil) != tc.ok {
			t.Errorf("CheckSubject(%q, %v) = %v", tc.s, tc.wild, err)
		}
	}
}

// Token keeps distinct names distinct, and yields only what NATS accepts.
func TestToken(t *testing.T) {
	seen := map[string]string{}
	for _, name := range []string{"a", "A", "a.b", "a_b", "a-b", "a__b", "a_0b", "a..b", "a._b", "web.hooks.v2", "x_"} {
		tok := Token(name)
		for _, r := range tok {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Errorf("Token(%q) = %q has %q", name, tok, r)
			}
		}
		if other, dup := seen[tok]; dup {
			t.Errorf("Token(%q) = Token(%q) = %q", name, other, tok)
		}
		seen[tok] = name
	}
	if got := Token("web.hooks_v2"); got != "web_0hooks__v2" {
		t.Errorf("Token: %q", got)
	}
}

func TestParseFunction(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Function
	}{
		{"thumb", Function{Name: "thumb"}},
		{"thumb:prod", Function{Name: "thumb", Qualifier: "prod"}},
		{"thumb:$LATEST", Function{Name: "thumb", Qualifier: "$LATEST"}},
		{"123456789012:function:thumb", Function{Account: "123456789012", Name: "thumb"}},
		{"123456789012:function:thumb:7", Function{Account: "123456789012", Name: "thumb", Qualifier: "7"}},
		{"arn:aws:lambda:us-east-1:123456789012:function:thumb", Function{Partition: "aws", Region: "us-east-1", Account: "123456789012", Name: "thumb"}},
		{"arn:aws-cn:lambda:cn-north-1:123456789012:function:thumb:live", Function{Partition: "aws-cn", Region: "cn-north-1", Account: "123456789012", Name: "thumb", Qualifier: "live"}},
		{"arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:a.b_c-d", Function{Partition: "aws-us-gov", Region: "us-gov-west-1", Account: "123456789012", Name: "a.b_c-d"}},
	} {
		got, err := ParseFunction(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseFunction(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "arn:aws:lambda:us-east-1:123456789012:function:", "a b", "thumb:prod:extra"} {
		if _, err := ParseFunction(bad); err == nil {
			t.Errorf("ParseFunction(%q): no error", bad)
		}
	}
}

func TestHostRegion(t *testing.T) {
	for host, want := range map[string]string{
		"sqs.us-east-1.amazonaws.com":                         "us-east-1",
		"sqs.cn-north-1.amazonaws.com.cn":                     "cn-north-1",
		"sqs-fips.us-gov-west-1.amazonaws.com":                "us-gov-west-1",
		"eu-west-1.queue.amazonaws.com":                       "eu-west-1",
		"queue.amazonaws.com":                                 "us-east-1",
		"QUEUE.amazonaws.com.":                                "us-east-1",
		"vpce-0123-abcd.sqs.ap-south-2.vpce.amazonaws.com":    "ap-south-2",
		"sqs.eu-central-2.api.aws":                            "eu-central-2",
		"sqs.us-isob-east-1.sc2s.sgov.gov":                    "us-isob-east-1",
		"localhost":                                           "",
		"127.0.0.1":                                           "",
		"my-host-1.example.com":                               "", // looks like a region, but not an AWS host
		"sqs.amazonaws.com":                                   "",
		"vpce-0123-abcd-us-east-1.sqs.example.internal":       "",
		"sqs.us-east-1.amazonaws.com.evil.example":            "",
		"elasticmq.internal":                                  "",
		"sqs.me-central-1.amazonaws.com":                      "me-central-1",
		"vpce-1a2b3c4d-5e6f.sqs.us-east-1.vpce.amazonaws.com": "us-east-1",
	} {
		if got := hostRegion(host); got != want {
			t.Errorf("hostRegion(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestParseStateMachineARN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want StateMachine
	}{
		{"arn:aws:states:us-east-1:123456789012:stateMachine:orders", StateMachine{"aws", "us-east-1", "123456789012", "orders"}},
		{"arn:aws-cn:states:cn-north-1:123456789012:stateMachine:a-b_C9", StateMachine{"aws-cn", "cn-north-1", "123456789012", "a-b_C9"}},
		{"arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:Ünïcode.name", StateMachine{"aws-us-gov", "us-gov-west-1", "123456789012", "Ünïcode.name"}},
	} {
		got, err := ParseStateMachineARN(tc.in)
		if err != nil || got != tc.want || got.ARN() != tc.in {
			t.Errorf("ParseStateMachineARN(%q) = %+v (%s), %v; want %+v", tc.in, got, got.ARN(), err, tc.want)
		}
	}
	if got := (StateMachine{"aws", "eu-west-1", "123456789012", "m"}).ExecutionARN("x-1"); got != "arn:aws:states:eu-west-1:123456789012:execution:m:x-1" {
		t.Errorf("ExecutionARN = %s", got)
	}
	for bad, msg := range map[string]string{
		"":       "required",
		"orders": "not a state machine ARN",
		"arn:aws:lambda:us-east-1:123456789012:function:orders":               "not a state machine ARN",
		"arn:aws:states:us-east-1:123456789012:activity:orders":               "not a state machine ARN",
		"arn:aws:states:useast1:123456789012:stateMachine:orders":             "not a region",
		"arn:aws:states:us-east-1:1234:stateMachine:orders":                   "12 digits",
		"arn:aws:states:us-east-1:123456789012:stateMachine:":                 "1 to 80",
		"arn:aws:states:us-east-1:123456789012:stateMachine:has space":        "1 to 80",
		"arn:aws:states:us-east-1:123456789012:stateMachine:orders/map":       "1 to 80",
		"arn:aws:states:us-east-1:123456789012:stateMachine:orders:PROD":      "version or alias",
		"arn:aws:states:us-east-1:123456789012:stateMachine:" + long(81):      "1 to 80",
		"arn:aws:states:us-east-1:123456789012:execution:orders:x":            "not a state machine ARN",
		"arn:gcp:states:us-east-1:123456789012:stateMachine:orders":           "not a state machine ARN",
		"arn:aws:states:us-east-1:123456789012:stateMachine:tab\there":        "1 to 80",
		"arn:aws:states:us-east-1:123456789012:stateMachine:ctrl\u0085":       "1 to 80",
		"arn:aws:states:us-east-1:123456789012:stateMachine:brace{":           "1 to 80",
		"arn:aws:states:us-east-1:123456789012:stateMachine:dollar$":          "1 to 80",
		"arn:aws:states:us-east-1:123456789012:stateMachine:invalid\xffutf-8": "1 to 80",
	} {
		if _, err := ParseStateMachineARN(bad); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseStateMachineARN(%q) = %v, want an error saying %q", bad, err, msg)
		}
	}
	if !ValidStepFunctionsName(long(80)) || ValidStepFunctionsName(long(81)) || !ValidStepFunctionsName("ééé") {
		t.Error("ValidStepFunctionsName counts characters wrong")
	}
}

func long(n int) string { return strings.Repeat("é", n) }
