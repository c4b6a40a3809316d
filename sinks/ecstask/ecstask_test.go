package ecstask

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/kindtest"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func setup(t *testing.T) *awstest.Server {
	t.Helper()
	srv := awstest.NewTestServer(t, awstest.Options{})
	srv.ECS().CreateCluster("media")
	if _, err := srv.ECS().RegisterTaskDefinition(awstest.TaskDefinition{
		Family: "transcode", Revision: 1, RequiresCompatibilities: []string{"FARGATE"},
		Containers: []awstest.ContainerDefinition{{Name: "transcoder"}, {Name: "log-router"}},
	}); err != nil {
		t.Fatal(err)
	}
	return srv
}

func sink(t *testing.T, srv *awstest.Server, mod func(*Config)) *Sink {
	t.Helper()
	cfg := Config{
		Cluster: "media", TaskDefinition: "transcode:1", LaunchType: "FARGATE",
		Network: Network{Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}},
		ContainerOverrides: []ContainerOverride{{
			Name: "transcoder", Command: []string{"transcode", "--input", "<key>", "--size", "<size>", "--id", "<switchyard.delivery-id>"},
			Environment: map[string]string{"BUCKET": "<bucket>", "UNKNOWN": "<nope>"}, CPU: 1024, Memory: 2048,
		}},
		Tags: map[string]string{"team": "media"}, Group: "jobs", PropagateTags: "TASK_DEFINITION", PlatformVersion: "1.4.0",
	}
	if mod != nil {
		mod(&cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New("transcode", cfg, srv.ECSClient())
}

func delivery() *router.Delivery {
	ev, _ := router.ParseEvent([]byte(`{"id":"ev-42","source":"aws.s3","detail-type":"Object Created","detail":{}}`), time.Now())
	return &router.Delivery{
		ID: "0123456789abcdef0123456789abcdef", Rule: "transcode videos!", Target: "transcode",
		Payload: []byte(`{"bucket":"media-uploads","key":"videos/a b.mp4","size":1048577}`),
		Message: &router.Message{ID: "msg-1", Source: "jobs", Event: ev},
	}
}

func TestECSSink_RunTask(t *testing.T) {
	srv := setup(t)
	if err := sink(t, srv, nil).Deliver(t.Context(), delivery()); err != nil {
		t.Fatal(err)
	}
	tasks := srv.ECS().Tasks("media")
	if len(tasks) != 1 {
		t.Fatalf("%d tasks", len(tasks))
	}
	task := tasks[0]
	if task.StartedBy != "switchyard/transcode_videos_" || task.Group != "jobs" || task.LaunchType != "FARGATE" || !strings.HasSuffix(task.TaskDefinitionARN, "task-definition/transcode:1") {
		t.Errorf("task: startedBy %q group %q launch %q definition %q", task.StartedBy, task.Group, task.LaunchType, task.TaskDefinitionARN)
	}
	// ECS lists every container in the task's overrides.
	i := slices.IndexFunc(task.Overrides.ContainerOverrides, func(o awstest.ContainerOverride) bool { return o.Name == "transcoder" })
	if i < 0 {
		t.Fatalf("overrides: %+v", task.Overrides)
	}
	o := task.Overrides.ContainerOverrides[i]
	wantCmd := []string{"transcode", "--input", "videos/a b.mp4", "--size", "1048577", "--id", "0123456789abcdef0123456789abcdef"}
	if o.Name != "transcoder" || !slices.Equal(o.Command, wantCmd) {
		t.Errorf("command %q, want %q", o.Command, wantCmd)
	}
	env := map[string]string{}
	for _, kv := range o.Environment {
		env[kv.Name] = kv.Value
	}
	if env["BUCKET"] != "media-uploads" || env["UNKNOWN"] != "<nope>" {
		t.Errorf("environment %v", env)
	}
	if o.CPU == nil || *o.CPU != 1024 || o.Memory == nil || *o.Memory != 2048 {
		t.Errorf("cpu/memory: %+v", o)
	}
	tags := map[string]string{}
	for _, tg := range task.Tags {
		tags[tg.Key] = tg.Value
	}
	for k, v := range map[string]string{"team": "media", "switchyard:event-id": "ev-42", "switchyard:delivery-id": "0123456789abcdef0123456789abcdef",
		"switchyard:rule": "transcode videos_", "switchyard:message-id": "msg-1"} {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}
}

// A launch whose outcome is unknown (the response was lost) is retried
// with the same clientToken, and ECS starts one task, not two.
func TestECSSink_RetryWithSameTokenStartsOneTask(t *testing.T) {
	srv := setup(t)
	s := sink(t, srv, nil)
	srv.FailNext("ecs:RunTask", 1, awstest.Fault{Commit: true, Drop: true})
	d := delivery()
	err := s.Deliver(t.Context(), d)
	if err == nil || router.ClassOf(err) != router.Retryable {
		t.Fatalf("first attempt = %v, want a retryable error", err)
	}
	if d.Generation != 0 {
		t.Fatalf("generation bumped after an unknown outcome")
	}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(srv.ECS().Tasks("media")); n != 1 {
		t.Errorf("%d tasks after a retried launch, want 1", n)
	}
	if srv.Calls("ecs:RunTask") != 2 {
		t.Errorf("%d RunTask calls", srv.Calls("ecs:RunTask"))
	}
}

// After a definite "nothing launched" the next attempt uses a new token,
// so that it can launch.
func TestECSSink_FailuresGetAFreshToken(t *testing.T) {
	srv := setup(t)
	s := sink(t, srv, nil)
	srv.ECS().FailRunTask(1, awstest.Failure{Reason: "RESOURCE:MEMORY"})
	d := delivery()
	err := s.Deliver(t.Context(), d)
	if err == nil || router.ClassOf(err) != router.Retryable || !strings.Contains(err.Error(), "RESOURCE:MEMORY") {
		t.Fatalf("capacity failure = %v (%s), want retryable", err, router.ClassOf(err))
	}
	if d.Generation != 1 {
		t.Fatalf("generation = %d after a failures-only answer", d.Generation)
	}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(srv.ECS().Tasks("media")); n != 1 {
		t.Errorf("%d tasks, want 1 launched by the retry", n)
	}
}

func TestECSSink_ClassifiesOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(srv *awstest.Server)
		mod      func(*Config)
		class    router.Class
		bumped   bool
		contains string
	}{
		{"placement failure", func(srv *awstest.Server) {
			srv.ECS().FailRunTask(1, awstest.Failure{Reason: "ATTRIBUTE", Detail: "no instance has ecs.capability.gpu"})
		}, nil, router.Permanent, true, "ATTRIBUTE"},
		{"agent failure", func(srv *awstest.Server) { srv.ECS().FailRunTask(1, awstest.Failure{Reason: "AGENT"}) }, nil, router.Retryable, true, "AGENT"},
		{"throttled", func(srv *awstest.Server) { srv.FailNext("ecs:RunTask", 1, awstest.Throttled()) }, nil, router.Throttled, true, "Throttling"},
		{"server exception", func(srv *awstest.Server) {
			srv.FailNext("ecs:RunTask", 1, awstest.InternalError("ServerException"))
		}, nil, router.Retryable, false, "ServerException"},
		{"missing task definition", func(*awstest.Server) {}, func(c *Config) { c.TaskDefinition = "nope:1" }, router.Permanent, false, "ClientException"},
		{"missing cluster", func(*awstest.Server) {}, func(c *Config) { c.Cluster = "gone" }, router.Permanent, false, "ClusterNotFoundException"},
		{"unknown container", func(*awstest.Server) {}, func(c *Config) { c.ContainerOverrides[0].Name = "ghost" }, router.Permanent, false, "InvalidParameterException"},
		{"access denied", func(srv *awstest.Server) {
			srv.FailNext("ecs:RunTask", 1, awstest.Fault{Status: 400, Code: "AccessDeniedException"})
		}, nil, router.Permanent, false, "AccessDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := setup(t)
			tc.setup(srv)
			d := delivery()
			err := sink(t, srv, tc.mod).Deliver(t.Context(), d)
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if c := router.ClassOf(err); c != tc.class {
				t.Errorf("class %s, want %s: %v", c, tc.class, err)
			}
			if (d.Generation > 0) != tc.bumped {
				t.Errorf("generation %d, want bumped = %v", d.Generation, tc.bumped)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not mention %q", err, tc.contains)
			}
			if n := len(srv.ECS().Tasks(tc.name)); n != 0 {
				t.Errorf("%d tasks launched", n)
			}
		})
	}
}

func TestStartedBy(t *testing.T) {
	for in, want := range map[string]string{
		"videos":                 "switchyard/videos",
		"big.uploads v2":         "switchyard/big_uploads_v2",
		"ünïcode":                "switchyard/_n_code",
		strings.Repeat("r", 200): "switchyard/" + strings.Repeat("r", 117),
	} {
		if got := StartedBy(in); got != want || len(got) > 128 {
			t.Errorf("StartedBy(%q) = %q, want %q", in, got, want)
		}
	}
}

// The rune maps replace exactly what the rules' regular expressions reject,
// one _ for each rune (or byte of invalid UTF-8).
func TestStartedByAndTagValueAsTheRules(t *testing.T) {
	startedByBad := regexp.MustCompile(`[^A-Za-z0-9_/-]`)
	tagBad := regexp.MustCompile(`[^\p{L}\p{Z}\p{N}_.:/=+\-@]`)
	for _, in := range []string{
		"", "videos", "big.uploads v2", "ünïcode", "a\u00a0b\u2003c", "٣٤ Ⅻ ½", "日本語のタグ", "emoji 🎉!",
		"tab\there", "new\nline", "\xff\xfe bad", "\ufffd", "k=v+w-x@y:z/_", "#$%^&*()[]{}|;'\"<>,?`~",
	} {
		if got, want := StartedBy(in), "switchyard/"+startedByBad.ReplaceAllString(in, "_"); got != want {
			t.Errorf("StartedBy(%q) = %q, want %q", in, got, want)
		}
		if got, want := tagValue(in), tagBad.ReplaceAllString(in, "_"); got != want {
			t.Errorf("tagValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestECSSink_CountAndCapacityProviders(t *testing.T) {
	srv := setup(t)
	s := sink(t, srv, func(c *Config) {
		c.LaunchType = ""
		c.Count = 3
		c.CapacityProviderStrategy = []CapacityProvider{{CapacityProvider: "FARGATE_SPOT", Weight: 1}}
	})
	if err := s.Deliver(context.Background(), delivery()); err != nil {
		t.Fatal(err)
	}
	tasks := srv.ECS().Tasks("media")
	if len(tasks) != 3 || tasks[0].CapacityProviderName != "FARGATE_SPOT" {
		t.Errorf("%d tasks, capacity provider %q", len(tasks), tasks[0].CapacityProviderName)
	}
}

// The roles a target names reach ECS as the task's role overrides, and
// with no container overrides the request still carries them.
func TestECSSink_RoleOverrides(t *testing.T) {
	srv := setup(t)
	s := sink(t, srv, func(c *Config) {
		c.ContainerOverrides = nil
		c.TaskRoleARN = "arn:aws:iam::123456789012:role/transcode-task"
		c.ExecutionRoleARN = "arn:aws:iam::123456789012:role/ecs/transcode-execution"
	})
	if err := s.Deliver(t.Context(), delivery()); err != nil {
		t.Fatal(err)
	}
	tasks := srv.ECS().Tasks("media")
	if len(tasks) != 1 {
		t.Fatalf("%d tasks", len(tasks))
	}
	o := tasks[0].Overrides
	if o.TaskRoleARN != "arn:aws:iam::123456789012:role/transcode-task" || o.ExecutionRoleARN != "arn:aws:iam::123456789012:role/ecs/transcode-execution" {
		t.Errorf("overrides: task role %q, execution role %q", o.TaskRoleARN, o.ExecutionRoleARN)
	}

	// Without roles, none are sent.
	d := delivery()
	d.ID = "fedcba9876543210fedcba9876543210"
	if err := sink(t, srv, nil).Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	all := srv.ECS().Tasks("media")
	if len(all) != 2 {
		t.Fatalf("%d tasks, want 2", len(all))
	}
	for _, task := range all {
		if task.ID != tasks[0].ID && (task.Overrides.TaskRoleARN != "" || task.Overrides.ExecutionRoleARN != "") {
			t.Errorf("roles sent without being configured: %+v", task.Overrides)
		}
	}
}

func TestConfig_RoleARNs(t *testing.T) {
	base := Config{TaskDefinition: "transcode:1"}
	for _, tc := range []struct {
		name       string
		task, exec string
		want       string
	}{
		{name: "none"},
		{name: "both", task: "arn:aws:iam::123456789012:role/a", exec: "arn:aws:iam::123456789012:role/b"},
		{name: "path", task: "arn:aws:iam::123456789012:role/service/ecs/a"},
		{name: "china", exec: "arn:aws-cn:iam::123456789012:role/a"},
		{name: "name only", task: "transcode-task", want: `task_role_arn: "transcode-task" is not an IAM role ARN`},
		{name: "user", exec: "arn:aws:iam::123456789012:user/a", want: "execution_role_arn:"},
		{name: "region", task: "arn:aws:iam:us-east-1:123456789012:role/a", want: "task_role_arn:"},
		{name: "short account", task: "arn:aws:iam::1234:role/a", want: "task_role_arn:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.TaskRoleARN, c.ExecutionRoleARN = tc.task, tc.exec
			kindtest.Check(t, c, tc.want)
		})
	}
}

// The containers the target overrides get the trace context in their
// environment (X-Ray and W3C forms); a variable the config sets wins; the
// containers it does not override get nothing.
func TestECSSink_TraceInOverrides(t *testing.T) {
	srv := setup(t)
	s := sink(t, srv, func(c *Config) {
		c.ContainerOverrides[0].Environment["TRACEPARENT"] = "mine"
	})
	d := delivery()
	d.Trace = router.TraceContext{XRay: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	task := srv.ECS().Tasks("media")[0]
	for _, o := range task.Overrides.ContainerOverrides {
		env := map[string]string{}
		for _, kv := range o.Environment {
			env[kv.Name] = kv.Value
		}
		switch o.Name {
		case "transcoder":
			if env["AWS_XRAY_TRACE_ID"] != d.Trace.XRay || env["TRACEPARENT"] != "mine" {
				t.Errorf("transcoder environment %v", env)
			}
		default:
			if _, ok := env["AWS_XRAY_TRACE_ID"]; ok {
				t.Errorf("container %s, not overridden, got the trace: %v", o.Name, env)
			}
		}
	}
	d2 := delivery()
	d2.ID = "fedcba9876543210fedcba9876543210"
	d2.Message.Trace = router.TraceContext{TraceParent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"}
	if err := sink(t, srv, nil).Deliver(t.Context(), d2); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, task := range srv.ECS().Tasks("media") {
		if !slices.ContainsFunc(task.Tags, func(tg awstest.Tag) bool { return tg.Value == d2.ID }) {
			continue
		}
		found = true
		i := slices.IndexFunc(task.Overrides.ContainerOverrides, func(o awstest.ContainerOverride) bool { return o.Name == "transcoder" })
		env := map[string]string{}
		for _, kv := range task.Overrides.ContainerOverrides[i].Environment {
			env[kv.Name] = kv.Value
		}
		if env["TRACEPARENT"] != d2.Message.Trace.TraceParent || env["AWS_XRAY_TRACE_ID"] != "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1" {
			t.Errorf("environment from a W3C trace: %v", env)
		}
	}
	if !found {
		t.Error("no task launched for the second delivery")
	}
}
