package main

import (
	"os"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/configsrc"
)

// configServer serves the example config and a broken one from S3 and SSM,
// and points the SDK's default chain at it (AWS_ENDPOINT_URL_S3 and _SSM).
func configServer(t *testing.T) (s *awstest.Server, good, bad string) {
	t.Helper()
	goodB, err := os.ReadFile("../../examples/switchyard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	badB, err := os.ReadFile("../../internal/config/testdata/many-mistakes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s = awstest.NewTestServer(t, awstest.Options{})
	s.Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL", "")
	os.Unsetenv("AWS_ENDPOINT_URL")
	t.Setenv("AWS_ENDPOINT_URL_S3", s.URL())
	t.Setenv("AWS_ENDPOINT_URL_SSM", s.URL())
	for _, k := range []string{configsrc.EnvRef, configsrc.EnvYAML} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	s.S3().CreateBucket("configs", "")
	for key, data := range map[string][]byte{"switchyard.yaml": goodB, "bad.yaml": badB, "huge.yaml": make([]byte, configsrc.MaxSize+1)} {
		if err := s.S3().PutObject("configs", key, data, "application/yaml"); err != nil {
			t.Fatal(err)
		}
	}
	s.SSM().PutParameter(awstest.SSMParameter{Name: "/switchyard/prod", Type: awstest.ParamSecureString, Value: string(goodB)})
	s.SSM().PutParameter(awstest.SSMParameter{Name: "switchyard-bad", Value: string(badB)})
	return s, string(goodB), string(badB)
}

// mistakes is the golden list of many-mistakes.yaml's errors, under name.
func mistakes(t *testing.T, name string) string {
	t.Helper()
	want, err := os.ReadFile("../../internal/config/testdata/many-mistakes.golden")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(want), "testdata/many-mistakes.yaml:", name+":")
}

// onlyNotes reports whether every line of stderr is a note.
func onlyNotes(stderr string) bool {
	for l := range strings.Lines(stderr) {
		if !strings.HasPrefix(l, "note: ") {
			return false
		}
	}
	return true
}

func TestValidateConfigDelivery(t *testing.T) {
	_, good, bad := configServer(t)

	ok := func(desc string, args ...string) {
		t.Helper()
		code, stdout, stderr := cli(t, "", append([]string{"validate"}, args...)...)
		if code != exitOK || stdout != "ok\n" || !onlyNotes(stderr) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", desc, code, stdout, stderr)
		}
	}
	invalid := func(desc, name string, args ...string) {
		t.Helper()
		code, stdout, stderr := cli(t, "", append([]string{"validate"}, args...)...)
		if want := mistakes(t, name); code != exitFail || stdout != "" || stderr != want {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant:\n%s", desc, code, stderr, want)
		}
	}
	failed := func(desc, msg string, args ...string) {
		t.Helper()
		code, stdout, stderr := cli(t, "", append([]string{"validate"}, args...)...)
		if code != exitFail || stdout != "" || !strings.HasPrefix(stderr, "switchyard validate: ") || !strings.Contains(stderr, msg) {
			t.Errorf("%s: exit %d, stderr %q, want %q", desc, code, stderr, msg)
		}
	}

	ok("s3", "-c", "s3://configs/switchyard.yaml")
	invalid("s3 invalid", "s3://configs/bad.yaml", "-c", "s3://configs/bad.yaml")
	ok("ssm path, SecureString", "-c", "ssm:/switchyard/prod")
	ok("ssm ARN", "-c", "arn:aws:ssm:us-east-1:123456789012:parameter/switchyard/prod")
	invalid("ssm invalid", "ssm:switchyard-bad", "-c", "ssm:switchyard-bad")
	failed("missing key", `s3://configs/nope.yaml: not found: bucket configs has no key "nope.yaml"`, "-c", "s3://configs/nope.yaml")
	failed("missing parameter", "ssm:/nope: not found: no parameter /nope in us-east-1", "-c", "ssm:/nope")
	failed("oversize", "s3://configs/huge.yaml: too large: the object is 1.0 MiB; a config is at most 1 MiB", "-c", "s3://configs/huge.yaml")

	t.Setenv(configsrc.EnvRef, "s3://configs/switchyard.yaml")
	ok("$SWITCHYARD_CONFIG s3")
	t.Setenv(configsrc.EnvRef, "ssm:switchyard-bad")
	invalid("$SWITCHYARD_CONFIG ssm invalid", "ssm:switchyard-bad")

	// Both variables: ambiguous, unless -c says which.
	t.Setenv(configsrc.EnvYAML, good)
	failed("both variables", "ambiguous config: both SWITCHYARD_CONFIG (ssm:switchyard-bad) and SWITCHYARD_CONFIG_YAML are set; unset one, or name the config with -c")
	ok("both variables and -c", "-c", "s3://configs/switchyard.yaml")

	t.Setenv(configsrc.EnvRef, "")
	ok("$SWITCHYARD_CONFIG_YAML")
	t.Setenv(configsrc.EnvYAML, bad)
	invalid("$SWITCHYARD_CONFIG_YAML invalid", "$SWITCHYARD_CONFIG_YAML")
	t.Setenv(configsrc.EnvYAML, "")
	code, _, stderr := cli(t, "", "validate")
	if code != exitFail || stderr != "$SWITCHYARD_CONFIG_YAML: the file is empty (see docs/config.md for its shape)\n" {
		t.Errorf("empty $SWITCHYARD_CONFIG_YAML: exit %d, stderr %q", code, stderr)
	}
}

// ${ENV} expands in a fetched config as in a file, and its errors name the
// variable at its position under the config's name.
func TestValidateConfigDeliveryEnvExpansion(t *testing.T) {
	s, _, _ := configServer(t)
	text := "version: 1\nmax_in_flight: ${MAX}\nsources:\n  - {name: jobs, type: sqs, queue_url: \"${QUEUE_URL}\"}\ntargets:\n  - {name: t, type: log}\nrules:\n  - {name: r, pattern: {source: [a]}, targets: [t]}\n"
	s.SSM().PutParameter(awstest.SSMParameter{Name: "/switchyard/env", Value: text})
	t.Setenv("MAX", "10")
	code, _, stderr := cli(t, "", "validate", "-c", "ssm:/switchyard/env")
	if want := "ssm:/switchyard/env:4:40: sources[0].queue_url: environment variable QUEUE_URL is not set (use ${QUEUE_URL:-default} for a default)\n"; code != exitFail || !strings.HasPrefix(stderr, want) {
		t.Errorf("unset variable: exit %d, stderr %q, want %q", code, stderr, want)
	}
	t.Setenv("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs")
	if code, stdout, stderr := cli(t, "", "validate", "-c", "ssm:/switchyard/env"); code != exitOK || stdout != "ok\n" {
		t.Errorf("set variables: exit %d, stderr %q", code, stderr)
	}
	t.Setenv(configsrc.EnvYAML, text)
	t.Setenv("MAX", "many")
	code, _, stderr = cli(t, "", "validate")
	if want := "$SWITCHYARD_CONFIG_YAML:2:16: max_in_flight: expected a whole number, got the string \"${MAX}\"\n"; code != exitFail || stderr != want {
		t.Errorf("bad variable: exit %d, stderr %q, want %q", code, stderr, want)
	}
}

func TestValidateConfigDeliveryAccessDenied(t *testing.T) {
	s, _, _ := configServer(t)
	s.InjectFault(awstest.FaultRule{Op: "s3:GetObject", Fault: awstest.Fault{Code: "AccessDenied", Message: "Access Denied"}})
	s.InjectFault(awstest.FaultRule{Op: "ssm:GetParameter", Fault: awstest.Fault{Code: "AccessDeniedException", Message: "not authorized"}})
	for ref, msg := range map[string]string{
		"s3://configs/switchyard.yaml": "s3://configs/switchyard.yaml: access denied (AccessDenied: Access Denied): the caller needs s3:GetObject on arn:aws:s3:::configs/switchyard.yaml",
		"ssm:/switchyard/prod":         "ssm:/switchyard/prod: access denied (AccessDeniedException: not authorized): the caller needs ssm:GetParameter on the parameter, and kms:Decrypt on its key for a SecureString",
	} {
		code, _, stderr := cli(t, "", "validate", "-c", ref)
		if code != exitFail || !strings.Contains(stderr, msg) {
			t.Errorf("%s: exit %d, stderr %q", ref, code, stderr)
		}
	}
	// route loads the same way.
	code, _, stderr := cli(t, "", "route", "-c", "ssm:/switchyard/prod", "-")
	if code != exitFail || !strings.Contains(stderr, "switchyard route: ssm:/switchyard/prod: access denied") {
		t.Errorf("route: exit %d, stderr %q", code, stderr)
	}
}
