package configsrc_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/configsrc"
)

const cfg = "version: 1\n"

// server starts the wire-level endpoints with a bucket and parameters, and
// points the SDK's default chain at them through AWS_ENDPOINT_URL_S3 and
// AWS_ENDPOINT_URL_SSM; AWS_ENDPOINT_URL leads nowhere, so a service
// reaching the server proves the SDK honours the per-service variable.
func server(t *testing.T) *awstest.Server {
	s := awstest.NewTestServer(t, awstest.Options{})
	s.Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_S3", s.URL())
	t.Setenv("AWS_ENDPOINT_URL_SSM", s.URL())
	s.S3().CreateBucket("configs", "")
	if err := s.S3().PutObject("configs", "prod/switchyard.yaml", []byte(cfg), ""); err != nil {
		t.Fatal(err)
	}
	s.SSM().PutParameter(awstest.SSMParameter{Name: "/switchyard/prod", Type: awstest.ParamSecureString, Value: cfg})
	s.SSM().PutParameter(awstest.SSMParameter{Name: "switchyard-plain", Value: cfg})
	return s
}

func TestRead(t *testing.T) {
	s := server(t)
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{
		file,
		"s3://configs/prod/switchyard.yaml",
		"ssm:/switchyard/prod", // a SecureString: read decrypted
		"ssm:switchyard-plain",
		"arn:aws:ssm:us-east-1:123456789012:parameter/switchyard/prod",
		"ssm:arn:aws:ssm:us-east-1:123456789012:parameter/switchyard-plain",
	} {
		name, data, err := configsrc.Read(t.Context(), ref)
		if err != nil || name != ref || string(data) != cfg {
			t.Errorf("%s: name %q, data %q, %v", ref, name, data, err)
		}
	}
	if n := s.Calls("s3:GetObject"); n != 1 {
		t.Errorf("s3:GetObject calls = %d", n)
	}
	if n := s.Calls("ssm:GetParameter"); n != 4 {
		t.Errorf("ssm:GetParameter calls = %d", n)
	}

	// Read fetches anew each time (a reload sees a new version).
	s.SSM().PutParameter(awstest.SSMParameter{Name: "switchyard-plain", Value: "version: 2\n"})
	if _, data, err := configsrc.Read(t.Context(), "ssm:switchyard-plain"); err != nil || string(data) != "version: 2\n" {
		t.Errorf("re-read: %q, %v", data, err)
	}
}

// The region of a parameter ARN is the one the request is signed for.
func TestReadSSMARNRegion(t *testing.T) {
	s := server(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	var scopes []string
	s.SetHook(func(op string, r *http.Request) *awstest.Fault {
		scopes = append(scopes, r.Header.Get("Authorization"))
		return nil
	})
	if _, _, err := configsrc.Read(t.Context(), "arn:aws:ssm:us-east-1:123456789012:parameter/switchyard/prod"); err != nil {
		t.Fatal(err)
	}
	if len(scopes) != 1 || !strings.Contains(scopes[0], "/us-east-1/ssm/aws4_request") {
		t.Errorf("signed as %q, want the ARN's region us-east-1", scopes)
	}
}

// A bucket in another region: S3 answers 301 with x-amz-bucket-region, and
// the read asks again there.
func TestReadS3OtherRegion(t *testing.T) {
	s := server(t)
	s.S3().CreateBucket("eu-configs", "eu-west-1")
	if err := s.S3().PutObject("eu-configs", "c.yaml", []byte(cfg), ""); err != nil {
		t.Fatal(err)
	}
	_, data, err := configsrc.Read(t.Context(), "s3://eu-configs/c.yaml")
	if err != nil || string(data) != cfg {
		t.Fatalf("%q, %v", data, err)
	}
	if n := s.Calls("s3:GetObject"); n != 2 {
		t.Errorf("s3:GetObject calls = %d, want 2 (redirected once)", n)
	}
	// With no region at all, S3 still works (us-east-1, then the bucket's).
	t.Setenv("AWS_REGION", "")
	os.Unsetenv("AWS_REGION")
	if _, _, err := configsrc.Read(t.Context(), "s3://eu-configs/c.yaml"); err != nil {
		t.Errorf("no region: %v", err)
	}
	if _, _, err := configsrc.Read(t.Context(), "ssm:/switchyard/prod"); err == nil || !strings.Contains(err.Error(), "ssm:/switchyard/prod: no AWS region: set AWS_REGION") {
		t.Errorf("ssm with no region: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	s := server(t)
	if err := s.S3().PutObject("configs", "huge.yaml", make([]byte, configsrc.MaxSize+1), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.S3().PutObject("configs", "limit.yaml", []byte(strings.Repeat("#", configsrc.MaxSize)), ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref   string
		fault *awstest.FaultRule
		is    error
		msg   string
	}{
		{ref: "s3://configs/nope.yaml", is: configsrc.ErrNotFound, msg: `s3://configs/nope.yaml: not found: bucket configs has no key "nope.yaml"`},
		{ref: "s3://no-bucket/c.yaml", is: configsrc.ErrNotFound, msg: "s3://no-bucket/c.yaml: not found: no bucket no-bucket"},
		{ref: "s3://configs/huge.yaml", is: configsrc.ErrTooLarge, msg: "s3://configs/huge.yaml: too large: the object is 1.0 MiB; a config is at most 1 MiB"},
		{ref: "s3://configs/prod/switchyard.yaml", fault: &awstest.FaultRule{Op: "s3:GetObject", Fault: awstest.Fault{Code: "AccessDenied", Message: "Access Denied"}},
			is: configsrc.ErrAccessDenied, msg: "s3://configs/prod/switchyard.yaml: access denied (AccessDenied: Access Denied): the caller needs s3:GetObject on arn:aws:s3:::configs/prod/switchyard.yaml"},
		{ref: "s3://configs/prod/switchyard.yaml", fault: &awstest.FaultRule{Op: "s3:GetObject", Fault: awstest.SlowDown()},
			is: configsrc.ErrThrottled, msg: "s3://configs/prod/switchyard.yaml: throttled: S3 answered SlowDown, still after the SDK's retries"},
		{ref: "s3://configs", msg: "s3://configs: want s3://BUCKET/KEY, the key of one object"},
		{ref: "s3://configs/dir/", msg: "s3://configs/dir/: want s3://BUCKET/KEY"},
		{ref: "ssm:/nope", is: configsrc.ErrNotFound, msg: "ssm:/nope: not found: no parameter /nope in us-east-1"},
		{ref: "ssm:", msg: "ssm:: want ssm:NAME, ssm:/PATH or a parameter ARN"},
		{ref: "ssm:/switchyard/prod", fault: &awstest.FaultRule{Op: "ssm:GetParameter", Fault: awstest.Fault{Code: "AccessDeniedException", Message: "not authorized to perform: kms:Decrypt"}},
			is: configsrc.ErrAccessDenied, msg: "ssm:/switchyard/prod: access denied (AccessDeniedException: not authorized to perform: kms:Decrypt): the caller needs ssm:GetParameter on the parameter, and kms:Decrypt on its key for a SecureString"},
		{ref: "ssm:/switchyard/prod", fault: &awstest.FaultRule{Op: "ssm:GetParameter", Fault: awstest.Throttled()},
			is: configsrc.ErrThrottled, msg: "ssm:/switchyard/prod: throttled: SSM answered ThrottlingException, still after the SDK's retries"},
		{ref: filepath.Join(t.TempDir(), "none.yaml"), is: os.ErrNotExist, msg: "none.yaml: no such file or directory"},
	} {
		var remove func()
		if tc.fault != nil {
			remove = s.InjectFault(*tc.fault)
		}
		before := s.Stats().Calls
		_, _, err := configsrc.Read(t.Context(), tc.ref)
		if remove != nil {
			remove()
		}
		if err == nil || !strings.Contains(err.Error(), tc.msg) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: %v\nwant %q (is %v)", tc.ref, err, tc.msg, tc.is)
		}
		// Throttles are retried by the SDK's standard retryer (3 attempts).
		if tc.is == configsrc.ErrThrottled {
			op := tc.fault.Op
			if n := s.Stats().Calls[op] - before[op]; n != 3 {
				t.Errorf("%s: %d calls, want 3", tc.ref, n)
			}
		}
	}
	if _, data, err := configsrc.Read(t.Context(), "s3://configs/limit.yaml"); err != nil || len(data) != configsrc.MaxSize {
		t.Errorf("exactly MaxSize: %d bytes, %v", len(data), err)
	}

	// A throttle that passes is invisible.
	s.FailNext("ssm:GetParameter", 2, awstest.Throttled())
	if _, data, err := configsrc.Read(t.Context(), "ssm:/switchyard/prod"); err != nil || string(data) != cfg {
		t.Errorf("throttled twice: %q, %v", data, err)
	}
}

func TestReadUnreachable(t *testing.T) {
	server(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
	_, _, err := configsrc.Read(t.Context(), "s3://configs/prod/switchyard.yaml")
	if !errors.Is(err, configsrc.ErrUnreachable) || !strings.Contains(err.Error(), "s3://configs/prod/switchyard.yaml: unreachable: cannot reach S3 (AWS_ENDPOINT_URL_S3 overrides its endpoint)") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused: %v", err)
	}
}

func TestReadTimeout(t *testing.T) {
	s := server(t)
	old := configsrc.Timeout
	configsrc.Timeout = 300 * time.Millisecond
	t.Cleanup(func() { configsrc.Timeout = old })
	s.InjectFault(awstest.FaultRule{Op: "ssm:GetParameter", Fault: awstest.Fault{Latency: time.Minute}})
	start := time.Now()
	_, _, err := configsrc.Read(t.Context(), "ssm:/switchyard/prod")
	if !errors.Is(err, configsrc.ErrUnreachable) || !strings.Contains(err.Error(), "ssm:/switchyard/prod: unreachable: no answer from SSM within 300ms") {
		t.Errorf("slow: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	flagFile := filepath.Join(dir, "flag.yaml")
	envFile := filepath.Join(dir, "env.yaml")
	os.WriteFile(flagFile, []byte("from: flag\n"), 0o644)
	os.WriteFile(envFile, []byte("from: env file\n"), 0o644)
	t.Chdir(dir)
	os.WriteFile(configsrc.DefaultFile, []byte("from: default\n"), 0o644)

	for _, tc := range []struct {
		desc, flag string
		env        map[string]string
		name, data string
		is         error
	}{
		{desc: "nothing", name: "switchyard.yaml", data: "from: default\n"},
		{desc: "flag over everything", flag: flagFile, env: map[string]string{configsrc.EnvRef: envFile, configsrc.EnvYAML: "from: yaml\n"}, name: flagFile, data: "from: flag\n"},
		{desc: "SWITCHYARD_CONFIG", env: map[string]string{configsrc.EnvRef: envFile}, name: envFile, data: "from: env file\n"},
		{desc: "SWITCHYARD_CONFIG_YAML", env: map[string]string{configsrc.EnvYAML: "from: yaml\n"}, name: "$SWITCHYARD_CONFIG_YAML", data: "from: yaml\n"},
		{desc: "empty SWITCHYARD_CONFIG is unset", env: map[string]string{configsrc.EnvRef: "", configsrc.EnvYAML: "from: yaml\n"}, name: "$SWITCHYARD_CONFIG_YAML", data: "from: yaml\n"},
		{desc: "empty SWITCHYARD_CONFIG_YAML is an empty config", env: map[string]string{configsrc.EnvYAML: ""}, name: "$SWITCHYARD_CONFIG_YAML", data: ""},
		{desc: "both variables", env: map[string]string{configsrc.EnvRef: envFile, configsrc.EnvYAML: "from: yaml\n"}, is: configsrc.ErrAmbiguous},
		{desc: "oversize variable", env: map[string]string{configsrc.EnvYAML: strings.Repeat("#", configsrc.MaxSize+1)}, is: configsrc.ErrTooLarge},
	} {
		lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		name, data, err := configsrc.Load(t.Context(), tc.flag, lookup)
		if tc.is != nil {
			if !errors.Is(err, tc.is) {
				t.Errorf("%s: %v, want %v", tc.desc, err, tc.is)
			}
			continue
		}
		if err != nil || name != tc.name || string(data) != tc.data {
			t.Errorf("%s: name %q, data %q, %v; want %q, %q", tc.desc, name, data, err, tc.name, tc.data)
		}
	}
	_, _, err := configsrc.Load(t.Context(), "", func(k string) (string, bool) {
		return map[string]string{configsrc.EnvRef: "s3://b/k", configsrc.EnvYAML: "x"}[k], true
	})
	if err == nil || err.Error() != "ambiguous config: both SWITCHYARD_CONFIG (s3://b/k) and SWITCHYARD_CONFIG_YAML are set; unset one, or name the config with -c" {
		t.Errorf("ambiguous: %v", err)
	}
}

// A caller's deadline shorter than Timeout is the time the message names.
func TestReadTimeout_CallersDeadline(t *testing.T) {
	s := server(t)
	s.InjectFault(awstest.FaultRule{Op: "ssm:GetParameter", Fault: awstest.Fault{Latency: time.Minute}})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, _, err := configsrc.Read(ctx, "ssm:/switchyard/prod")
	if !errors.Is(err, configsrc.ErrUnreachable) || !strings.Contains(err.Error(), "no answer from SSM within 300ms") {
		t.Errorf("slow, with the caller's deadline: %v", err)
	}
}
