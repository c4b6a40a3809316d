package redact

import "testing"

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"nats://svc:Secret@10.0.0.1:4222", "nats://xxxxx@10.0.0.1:4222"},
		{"nats://t0ken@nats:4222", "nats://xxxxx@nats:4222"},
		{"http://u:p@host/hook?token=abc&b=1#frag", "http://xxxxx@host/hook?b=xxxxx&token=xxxxx"},
		{"https://host/path", "https://host/path"},
		{"svc:Secret@host:4222", "xxxxx@host:4222"},
		{"examples/switchyard.yaml", "examples/switchyard.yaml"},
		{"/home/ada@corp/switchyard.yaml", "/home/ada@corp/switchyard.yaml"},
		{"ssm:/switchyard/prod", "ssm:/switchyard/prod"},
		{"s3://bucket/key", "s3://bucket/key"},
		{"s3://bucket/my key.yaml", "s3://bucket/my key.yaml"},
		{"s3://u:p@bucket/key", "s3://xxxxx@bucket/key"},
		{"http://u:p@host:bad", "(unparsable URL)"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := URLs("nats://a:4222, nats://u:p@b:4222"), "nats://a:4222,nats://xxxxx@b:4222"; got != want {
		t.Errorf("URLs = %q, want %q", got, want)
	}
}
