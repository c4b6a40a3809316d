package ecs

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/router"
)

type selfFixture struct {
	meta *awstest.TaskMetadata
	clk  *awstest.ManualClock
}

// newSelfFixture is a task of switchyard, an essential app container with
// a health check, and a worker with a restart policy.
func newSelfFixture(t *testing.T, launchType string) *selfFixture {
	t.Helper()
	clk := awstest.NewManualClock(start)
	meta := awstest.NewTaskMetadataServer(t, awstest.TaskMetadataOptions{Clock: clk, Cluster: "web", Family: "shop", Revision: 4, LaunchType: launchType})
	for _, c := range []awstest.MetadataContainer{
		{Name: "switchyard", Image: "switchyard:1"},
		{Name: "app", Image: "shop:9", Essential: true, HealthCheck: true},
		{Name: "worker", Image: "shop:9", RestartPolicy: true},
	} {
		if err := meta.AddContainer(c); err != nil {
			t.Fatal(err)
		}
	}
	return &selfFixture{meta: meta, clk: clk}
}

func (f *selfFixture) source(t *testing.T, state State) *Source {
	t.Helper()
	cfg := Config{Task: "self", Interval: interval}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New("me", cfg, Options{MetadataURI: f.meta.URI("switchyard"), State: state, Clock: f.clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func (f *selfFixture) next(t *testing.T, s *Source, want int) []*router.Message {
	t.Helper()
	f.clk.Advance(interval)
	return receive(t, s, want)
}

func (f *selfFixture) nothing(t *testing.T, s *Source) {
	t.Helper()
	f.clk.Advance(interval)
	nothing(t, s, f.clk, func() int { return f.meta.Calls("task") })
}

// containerDetailKeys are the names an "ECS Container State Change" detail
// may use.
var containerDetailKeys = []string{
	"clusterArn", "taskArn", "taskDefinitionArn", "containerArn", "name", "runtimeId", "image", "lastStatus", "desiredStatus",
	"exitCode", "healthStatus", "health", "restartCount", "createdAt", "startedAt", "finishedAt", "taskLastStatus",
	"taskDesiredStatus", "updatedAt",
}

func checkContainerEvent(t *testing.T, f *selfFixture, m *router.Message, name, status string) map[string]any {
	t.Helper()
	ev := decode(t, m)
	if ev["version"] != "0" || ev["detail-type"] != "ECS Container State Change" || ev["source"] != "aws.ecs" ||
		ev["account"] != awstest.DefaultAccountID || ev["region"] != awstest.DefaultRegion || !isoSecRE.MatchString(ev["time"].(string)) ||
		!uuidRE.MatchString(ev["id"].(string)) || ev["id"] != m.ID {
		t.Errorf("envelope %v", ev)
	}
	d := ev["detail"].(map[string]any)
	for k := range d {
		if !slices.Contains(containerDetailKeys, k) {
			t.Errorf("detail has %q", k)
		}
	}
	for _, k := range []string{"createdAt", "startedAt", "finishedAt", "updatedAt"} {
		if v, ok := d[k].(string); ok && !isoMillisRE.MatchString(v) {
			t.Errorf("detail.%s = %q", k, v)
		}
	}
	rs := ev["resources"].([]any)
	if d["name"] != name || d["lastStatus"] != status || d["taskArn"] != f.meta.TaskARN() || d["clusterArn"] != f.meta.ClusterARN() ||
		d["taskDefinitionArn"] != "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:4" || len(rs) != 1 || rs[0] != d["containerArn"] ||
		!strings.HasPrefix(d["containerArn"].(string), "arn:aws:ecs:us-east-1:123456789012:container/web/") || d["runtimeId"] == "" {
		t.Errorf("detail %v", d)
	}
	return d
}

// Sibling containers' status and health changes are events; switchyard's
// own container and the agent's pause container are not.
func TestECSSource_SelfReportsSiblings(t *testing.T) {
	for _, lt := range []string{"FARGATE", "EC2"} {
		t.Run(lt, func(t *testing.T) {
			t.Parallel()
			f := newSelfFixture(t, lt)
			state := &MemoryState{}
			s := f.source(t, state)

			ms := receive(t, s, 2)
			byName := map[string]*router.Message{}
			for _, m := range ms {
				byName[m.System["ContainerName"]] = m
			}
			d := checkContainerEvent(t, f, byName["app"], "app", "RUNNING")
			if d["healthStatus"] != "UNKNOWN" || d["startedAt"] != "2026-11-20T12:00:00.000Z" || d["taskLastStatus"] != "RUNNING" {
				t.Errorf("app detail %v", d)
			}
			if _, ok := d["exitCode"]; ok {
				t.Errorf("a running container has an exit code")
			}
			d = checkContainerEvent(t, f, byName["worker"], "worker", "RUNNING")
			if d["restartCount"] != 0.0 {
				t.Errorf("worker detail %v", d)
			}
			ack(t, ms...)

			// Health: UNKNOWN → HEALTHY → UNHEALTHY, one event each.
			f.meta.SetContainerHealth("app", awstest.HealthHealthy, 0, "")
			m := f.next(t, s, 1)[0]
			if d := checkContainerEvent(t, f, m, "app", "RUNNING"); d["healthStatus"] != "HEALTHY" {
				t.Errorf("detail %v", d)
			}
			ack(t, m)
			f.clk.Advance(interval)
			f.meta.SetContainerHealth("app", awstest.HealthUnhealthy, 1, "curl: (7) Failed to connect")
			m = f.next(t, s, 1)[0]
			d = checkContainerEvent(t, f, m, "app", "RUNNING")
			h, _ := d["health"].(map[string]any)
			if d["healthStatus"] != "UNHEALTHY" || h["status"] != "UNHEALTHY" || h["exitCode"] != 1.0 || h["output"] != "curl: (7) Failed to connect" ||
				h["statusSince"] != "2026-11-20T12:00:20.000Z" || d["updatedAt"] != "2026-11-20T12:00:20.000Z" {
				t.Errorf("unhealthy detail %v", d)
			}
			ack(t, m)

			// The app is killed; switchyard's own container stopping is
			// not reported.
			f.meta.StopContainer("app", 137)
			f.meta.StopContainer("switchyard", 0)
			m = f.next(t, s, 1)[0]
			d = checkContainerEvent(t, f, m, "app", "STOPPED")
			if d["exitCode"] != 137.0 || d["desiredStatus"] != "STOPPED" || d["finishedAt"] == nil || d["taskDesiredStatus"] != "STOPPED" {
				t.Errorf("stopped detail %v", d)
			}
			ack(t, m)
			f.nothing(t, s)

			// A restart is a change too, even back to the same status.
			f.meta.StopContainer("worker", 1)
			f.meta.RestartContainer("worker")
			m = f.next(t, s, 1)[0]
			if d := checkContainerEvent(t, f, m, "worker", "RUNNING"); d["restartCount"] != 1.0 {
				t.Errorf("restarted detail %v", d)
			}
			ack(t, m)

			// A new source with the same state emits nothing.
			s.Close(t.Context())
			s2 := f.source(t, state)
			f.nothing(t, s2)
			st, _ := state.Load(t.Context())
			if st[f.meta.TaskARN()+"/app"] != (Seen{Status: "STOPPED", Health: "UNHEALTHY"}) || len(st) != 2 {
				t.Errorf("state %v", st)
			}
		})
	}
}

func TestECSSource_SelfNackAndErrors(t *testing.T) {
	f := newSelfFixture(t, "FARGATE")
	f.meta.FailNext(1, 500)
	s, err := New("me", Config{Task: "self", Interval: interval}, Options{MetadataURI: f.meta.URI("switchyard"), Clock: f.clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	if err := s.Open(t.Context()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("Open with the endpoint failing: %v", err)
	}
	f.meta.FailNext(1, 500)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.Receive(ctx, 10); err == nil || !strings.Contains(err.Error(), "failed to get") {
		t.Fatalf("Receive with the endpoint failing: %v", err)
	}
	f.clk.Advance(interval)
	ms := receive(t, s, 2)
	if err := ms[0].Handle.Nack(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	again := receive(t, s, 1)[0]
	if again.ID != ms[0].ID {
		t.Fatalf("redelivered %s, want %s", again.ID, ms[0].ID)
	}
	ack(t, again, ms[1])
	f.nothing(t, s)
}
