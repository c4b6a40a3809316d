package ecs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/sourcetest"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// start is where every manual clock starts.
var start = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

const interval = 10 * time.Second

type fixture struct {
	srv *awstest.Server
	clk *awstest.ManualClock
	api *awsecs.Client
}

func newFixture(t *testing.T, opts ...func(*awstest.Options)) *fixture {
	t.Helper()
	clk := awstest.NewManualClock(start)
	o := awstest.Options{Clock: clk}
	for _, fn := range opts {
		fn(&o)
	}
	srv := awstest.NewTestServer(t, o)
	for _, td := range []awstest.TaskDefinition{
		{Family: "transcode", Containers: []awstest.ContainerDefinition{{Name: "app", Image: "app:1"}, {Name: "sidecar", Image: "sc:1"}},
			RequiresCompatibilities: []string{"FARGATE"}, CPU: "256", Memory: "512", Tags: []awstest.Tag{{Key: "team", Value: "media"}}},
		{Family: "thumbs", Containers: []awstest.ContainerDefinition{{Name: "app", Image: "thumbs:1"}}, RequiresCompatibilities: []string{"FARGATE"}},
	} {
		if _, err := srv.ECS().RegisterTaskDefinition(td); err != nil {
			t.Fatal(err)
		}
	}
	srv.ECS().CreateCluster("jobs")
	api := srv.ECSClient()
	return &fixture{srv: srv, clk: clk, api: api}
}

type sourceOpts struct {
	cfg    func(*Config)
	state  State
	log    *slog.Logger
	leader Leader
}

func (f *fixture) source(t *testing.T, o sourceOpts) *Source {
	t.Helper()
	cfg := Config{Cluster: "jobs", Interval: interval}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := o.log
	if log == nil {
		log = quiet
	}
	s, err := New("tasks", cfg, Options{API: f.api, State: o.state, Clock: f.clk, Logger: log, Leader: o.leader})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// run launches n Fargate tasks of family, started by startedBy (if set),
// and returns their ARNs.
func (f *fixture) run(t *testing.T, family, startedBy string, n int) []string {
	t.Helper()
	var arns []string
	for n > 0 {
		c := min(n, 10)
		in := &awsecs.RunTaskInput{
			Cluster: aws.String("jobs"), TaskDefinition: aws.String(family), LaunchType: ecstypes.LaunchTypeFargate, Count: aws.Int32(int32(c)),
			NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}},
			Tags:                 []ecstypes.Tag{{Key: aws.String("event"), Value: aws.String("e-1")}},
			PropagateTags:        ecstypes.PropagateTagsTaskDefinition,
		}
		if startedBy != "" {
			in.StartedBy = aws.String(startedBy)
		}
		out, err := f.api.RunTask(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range out.Tasks {
			arns = append(arns, aws.ToString(task.TaskArn))
		}
		n -= c
	}
	return arns
}

// receive receives until it has want messages, failing after 10s or on
// more. The caller moves the clock to when they are due.
func receive(t *testing.T, s *Source, want int) []*router.Message {
	t.Helper()
	var got []*router.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want {
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages, want %d", len(got), want)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		ms, err := s.Receive(ctx, 100)
		cancel()
		if err != nil && ctx.Err() == nil {
			t.Fatalf("Receive: %v", err)
		}
		got = append(got, ms...)
	}
	if len(got) != want {
		t.Fatalf("received %d messages, want %d", len(got), want)
	}
	return got
}

// next moves the clock to the next poll and receives want messages.
func (f *fixture) next(t *testing.T, s *Source, want int) []*router.Message {
	t.Helper()
	f.clk.Advance(interval)
	return receive(t, s, want)
}

// nothing moves the clock to the next poll, lets it happen and checks that
// it hands out nothing.
func (f *fixture) nothing(t *testing.T, s *Source) {
	t.Helper()
	f.clk.Advance(interval)
	nothing(t, s, f.clk, func() int { return f.srv.Calls("ecs:ListTasks") })
}

// nothing runs a Receive until it has polled (calls went up) and waits
// for the next, and checks it handed out nothing.
func nothing(t *testing.T, s *Source, clk *awstest.ManualClock, calls func() int) {
	t.Helper()
	before := calls()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		ms  []*router.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		ms, err := s.Receive(ctx, 100)
		done <- result{ms, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for calls() <= before || clk.Timers() == 0 {
		select {
		case r := <-done:
			t.Fatalf("Receive returned %d messages (%v), want none", len(r.ms), r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for a poll")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if r := <-done; len(r.ms) != 0 {
		t.Fatalf("Receive returned %d messages, want none", len(r.ms))
	}
}

func ack(t *testing.T, ms ...*router.Message) {
	t.Helper()
	for _, m := range ms {
		if err := m.Handle.Ack(t.Context()); err != nil {
			t.Fatalf("ack %s: %v", m.ID, err)
		}
	}
}

// decode returns the event of m as a map.
func decode(t *testing.T, m *router.Message) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(m.Event.JSON, &v); err != nil {
		t.Fatalf("event %s: %v", m.Event.JSON, err)
	}
	if !bytes.Equal(m.Body, m.Event.JSON) {
		t.Errorf("Body differs from the event")
	}
	return v
}

var (
	isoMillisRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	isoSecRE    = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// taskDetailKeys are the names an "ECS Task State Change" detail may use.
var taskDetailKeys = []string{
	"attachments", "attributes", "availabilityZone", "capacityProviderName", "clusterArn", "connectivity", "connectivityAt",
	"containerInstanceArn", "containers", "cpu", "createdAt", "desiredStatus", "enableExecuteCommand", "ephemeralStorage",
	"executionStoppedAt", "group", "lastStatus", "launchType", "memory", "overrides", "platformFamily", "platformVersion",
	"pullStartedAt", "pullStoppedAt", "startedAt", "startedBy", "stopCode", "stoppedAt", "stoppedReason", "stoppingAt",
	"tags", "taskArn", "taskDefinitionArn", "updatedAt", "version",
}

// checkTaskEvent checks the envelope and detail of a task event.
func checkTaskEvent(t *testing.T, ev map[string]any, arn, status string) map[string]any {
	t.Helper()
	want := map[string]any{
		"version": "0", "detail-type": "ECS Task State Change", "source": "aws.ecs",
		"account": awstest.DefaultAccountID, "region": awstest.DefaultRegion,
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("%s = %v, want %v", k, ev[k], v)
		}
	}
	if keys := slices.Sorted(mapKeys(ev)); !slices.Equal(keys, []string{"account", "detail", "detail-type", "id", "region", "resources", "source", "time", "version"}) {
		t.Errorf("envelope keys %v", keys)
	}
	if id, _ := ev["id"].(string); !uuidRE.MatchString(id) {
		t.Errorf("id %q is not a UUID", ev["id"])
	}
	if tm, _ := ev["time"].(string); !isoSecRE.MatchString(tm) {
		t.Errorf("time %q", ev["time"])
	}
	if rs, _ := ev["resources"].([]any); len(rs) != 1 || rs[0] != arn {
		t.Errorf("resources %v, want [%s]", ev["resources"], arn)
	}
	d := ev["detail"].(map[string]any)
	for k := range d {
		if !slices.Contains(taskDetailKeys, k) {
			t.Errorf("detail has %q, which ECS task events do not", k)
		}
	}
	for _, k := range []string{"createdAt", "connectivityAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt", "executionStoppedAt", "stoppedAt", "updatedAt"} {
		if v, ok := d[k]; ok && !isoMillisRE.MatchString(fmt.Sprint(v)) {
			t.Errorf("detail.%s = %v, not an ISO-8601 timestamp with milliseconds", k, v)
		}
	}
	if d["taskArn"] != arn || d["lastStatus"] != status || d["clusterArn"] != "arn:aws:ecs:us-east-1:123456789012:cluster/jobs" ||
		d["taskDefinitionArn"] != "arn:aws:ecs:us-east-1:123456789012:task-definition/transcode:1" || d["group"] != "family:transcode" ||
		d["launchType"] != "FARGATE" || d["cpu"] != "256" || d["memory"] != "512" || d["platformVersion"] != "1.4.0" {
		t.Errorf("detail %v", d)
	}
	if _, ok := d["updatedAt"]; !ok {
		t.Errorf("no updatedAt")
	}
	if ov := d["overrides"].(map[string]any)["containerOverrides"].([]any); len(ov) != 2 || ov[0].(map[string]any)["name"] != "app" {
		t.Errorf("overrides %v", d["overrides"])
	}
	cs := d["containers"].([]any)
	if len(cs) != 2 {
		t.Fatalf("containers %v", cs)
	}
	for _, c := range cs {
		c := c.(map[string]any)
		if !strings.HasPrefix(fmt.Sprint(c["containerArn"]), "arn:aws:ecs:us-east-1:123456789012:container/jobs/") || c["taskArn"] != arn || c["name"] == nil || c["lastStatus"] == nil {
			t.Errorf("container %v", c)
		}
	}
	return d
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// A task's PROVISIONING → RUNNING → STOPPED is three events, in the
// documented shape, and nothing else: not a desiredStatus-only change, not
// a poll after STOPPED.
func TestECSSource_TaskLifecycleIsThreeEvents(t *testing.T) {
	f := newFixture(t)
	state := &MemoryState{}
	s := f.source(t, sourceOpts{state: state})
	arn := f.run(t, "transcode", "rule-1", 1)[0]

	m1 := receive(t, s, 1)[0]
	d := checkTaskEvent(t, decode(t, m1), arn, "PROVISIONING")
	if d["desiredStatus"] != "RUNNING" || d["version"] != 1.0 || d["startedBy"] != "rule-1" || d["createdAt"] != "2026-11-20T12:00:00.000Z" {
		t.Errorf("PROVISIONING detail %v", d)
	}
	if _, ok := d["startedAt"]; ok {
		t.Errorf("a provisioning task has startedAt")
	}
	tags := fmt.Sprint(d["tags"])
	if !strings.Contains(tags, "key:event value:e-1") || !strings.Contains(tags, "key:team value:media") {
		t.Errorf("tags %s", tags)
	}
	if m1.ID != decode(t, m1)["id"] || m1.Group != arn || m1.Source != "tasks" || m1.System["LastStatus"] != "PROVISIONING" {
		t.Errorf("message %+v", m1)
	}
	ack(t, m1)

	f.clk.Advance(5 * time.Second)
	if err := f.srv.ECS().SetTaskStatus(arn, awstest.TaskRunning); err != nil {
		t.Fatal(err)
	}
	m2 := f.next(t, s, 1)[0]
	d = checkTaskEvent(t, decode(t, m2), arn, "RUNNING")
	if d["startedAt"] != "2026-11-20T12:00:05.000Z" || d["updatedAt"] != "2026-11-20T12:00:05.000Z" || d["connectivity"] != "CONNECTED" ||
		decode(t, m2)["time"] != "2026-11-20T12:00:05Z" || d["version"] != 2.0 {
		t.Errorf("RUNNING detail %v", d)
	}
	ack(t, m2)

	// StopTask changes desiredStatus (and version), not lastStatus: no event.
	if _, err := f.api.StopTask(t.Context(), &awsecs.StopTaskInput{Cluster: aws.String("jobs"), Task: aws.String(arn), Reason: aws.String("scaling in")}); err != nil {
		t.Fatal(err)
	}
	f.nothing(t, s)

	if err := f.srv.ECS().StopTask(arn, awstest.StopOptions{StopCode: "UserInitiated", Reason: "scaling in", ExitCodes: map[string]int{"app": 137, "sidecar": 0},
		ContainerReasons: map[string]string{"app": "OutOfMemoryError: Container killed due to memory usage"}}); err != nil {
		t.Fatal(err)
	}
	m3 := f.next(t, s, 1)[0]
	d = checkTaskEvent(t, decode(t, m3), arn, "STOPPED")
	if d["desiredStatus"] != "STOPPED" || d["stopCode"] != "UserInitiated" || d["stoppedReason"] != "scaling in" || d["stoppedAt"] == nil ||
		d["stoppingAt"] == nil || d["executionStoppedAt"] == nil || d["version"] != 4.0 {
		t.Errorf("STOPPED detail %v", d)
	}
	exits := map[any]any{}
	for _, c := range d["containers"].([]any) {
		c := c.(map[string]any)
		exits[c["name"]] = c["exitCode"]
		if c["lastStatus"] != "STOPPED" {
			t.Errorf("container %v", c)
		}
		if c["name"] == "app" && c["reason"] != "OutOfMemoryError: Container killed due to memory usage" {
			t.Errorf("app's reason %v", c["reason"])
		}
	}
	if exits["app"] != 137.0 || exits["sidecar"] != 0.0 {
		t.Errorf("exit codes %v", exits)
	}
	ack(t, m3)
	if ids := []string{m1.ID, m2.ID, m3.ID}; ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Errorf("ids %v", ids)
	}
	// A stopped task stays listed: it is not emitted again, and is kept in
	// the state until ECS forgets it.
	f.nothing(t, s)
	f.nothing(t, s)
	if m, _ := state.Load(t.Context()); m[arn] != (Seen{Status: "STOPPED", Version: 4}) {
		t.Errorf("state %v", m)
	}
}

// The shared suite, each message being a task's status. Two of its cases
// assume what this source does not do, and are skipped: NackRedelivers-
// AfterDelay checks that a message's Body is the string sent (here it is
// the event), and UnackedComesBack that a message left unsettled comes back
// after a visibility timeout (here it stays out until settled; see Extend).
// TestECSSource_NackRedeliversAfterDelay covers the first with event ids.
func TestECSSource_Conformance(t *testing.T) {
	var f *fixture
	var state *MemoryState
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T) router.Source {
			for _, c := range []string{"/NackRedeliversAfterDelay", "/UnackedComesBack"} {
				if strings.HasSuffix(t.Name(), c) {
					t.Skip("does not apply to the ecs source: see TestECSSource_Conformance")
				}
			}
			f, state = newFixture(t), &MemoryState{}
			return f.source(t, sourceOpts{state: state})
		},
		Send: func(t *testing.T, bodies ...string) { f.run(t, "transcode", "", len(bodies)) },
		Stored: func(t *testing.T) int {
			acked, _ := state.Load(t.Context())
			n := 0
			for _, task := range f.srv.ECS().Tasks("jobs") {
				if acked[task.TaskARN].Status != task.LastStatus {
					n++
				}
			}
			return n
		},
		Pass:       func(t *testing.T, d time.Duration) { f.clk.Advance(d) },
		Visibility: 30 * time.Second,
	})
}

// The event id depends on (taskArn, lastStatus, version) only.
func TestECSSource_EventIDIsStable(t *testing.T) {
	a := eventID("ecs-task", "arn:aws:ecs:us-east-1:1:task/c/x", "RUNNING", "3")
	if a != eventID("ecs-task", "arn:aws:ecs:us-east-1:1:task/c/x", "RUNNING", "3") || !uuidRE.MatchString(a) {
		t.Fatalf("id %s", a)
	}
	for _, b := range []string{
		eventID("ecs-task", "arn:aws:ecs:us-east-1:1:task/c/x", "RUNNING", "4"),
		eventID("ecs-task", "arn:aws:ecs:us-east-1:1:task/c/x", "STOPPED", "3"),
		eventID("ecs-task", "arn:aws:ecs:us-east-1:1:task/c/y", "RUNNING", "3"),
	} {
		if a == b {
			t.Fatalf("ids collide: %s", a)
		}
	}
}

// Acked statuses are not emitted again by a new source with the same
// State; an unacked one is, with the same id.
func TestECSSource_RestartDoesNotReemit(t *testing.T) {
	f := newFixture(t)
	state := &MemoryState{}
	arns := f.run(t, "transcode", "", 3)
	if err := f.srv.ECS().StopTask(arns[2], awstest.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	s1 := f.source(t, sourceOpts{state: state})
	ms := receive(t, s1, 3)
	var unacked *router.Message
	for _, m := range ms {
		if m.System["TaskArn"] == arns[1] {
			unacked = m
			continue
		}
		ack(t, m)
	}
	if err := s1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	s2 := f.source(t, sourceOpts{state: state})
	again := receive(t, s2, 1)[0]
	if again.ID != unacked.ID || !bytes.Equal(again.Body, unacked.Body) {
		t.Fatalf("re-emitted %s, want the unacked %s", again.Body, unacked.Body)
	}
	ack(t, again)
	f.nothing(t, s2)

	// A change after the restart is emitted.
	if err := f.srv.ECS().SetTaskStatus(arns[0], awstest.TaskRunning); err != nil {
		t.Fatal(err)
	}
	m := f.next(t, s2, 1)[0]
	if m.System["TaskArn"] != arns[0] || m.System["LastStatus"] != "RUNNING" {
		t.Fatalf("got %v", m.System)
	}
}

// With no State the first poll emits every task's current status, stopped
// ones included, once.
func TestECSSource_NoStateEmitsCurrentStatusOnce(t *testing.T) {
	f := newFixture(t)
	arns := f.run(t, "transcode", "", 3)
	f.srv.ECS().SetTaskStatus(arns[1], awstest.TaskRunning)
	f.srv.ECS().StopTask(arns[2], awstest.StopOptions{ExitCodes: map[string]int{"app": 1}})
	s := f.source(t, sourceOpts{})
	got := map[string]string{}
	for _, m := range receive(t, s, 3) {
		got[m.System["TaskArn"]] = m.System["LastStatus"]
		ack(t, m)
	}
	want := map[string]string{arns[0]: "PROVISIONING", arns[1]: "RUNNING", arns[2]: "STOPPED"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	f.nothing(t, s)
}

// A nacked event comes back, the same, after its delay and not before; a
// task has one event out at a time, so its next status waits for the ack.
func TestECSSource_NackRedeliversAfterDelay(t *testing.T) {
	f := newFixture(t)
	state := &MemoryState{}
	s := f.source(t, sourceOpts{state: state})
	arn := f.run(t, "transcode", "", 1)[0]
	m := receive(t, s, 1)[0]
	if err := m.Handle.Nack(t.Context(), 25*time.Second); err != nil {
		t.Fatal(err)
	}
	// The task moves on meanwhile; polls at 10s and 20s hand out nothing.
	f.srv.ECS().SetTaskStatus(arn, awstest.TaskRunning)
	f.nothing(t, s)
	f.nothing(t, s)
	f.clk.Advance(5 * time.Second)
	again := receive(t, s, 1)[0]
	if again.ID != m.ID || !bytes.Equal(again.Body, m.Body) {
		t.Fatalf("redelivered %s, want %s", again.Body, m.Body)
	}
	// First settlement wins: acking the nacked handle commits nothing.
	ack(t, m)
	if st, _ := state.Load(t.Context()); len(st) != 0 {
		t.Fatalf("acking a nacked handle saved %v", st)
	}
	// Nack 0: back at once.
	if err := again.Handle.Nack(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	third := receive(t, s, 1)[0]
	if third.ID != m.ID {
		t.Fatalf("got %s", third.ID)
	}
	ack(t, third)
	// Acked: the newer status is handed out now, without waiting for a poll.
	next := receive(t, s, 1)[0]
	if next.System["LastStatus"] != "RUNNING" {
		t.Fatalf("after the ack got %v", next.System)
	}
	ack(t, next)
	if st, _ := state.Load(t.Context()); st[arn].Status != "RUNNING" {
		t.Fatalf("state %v", st)
	}
}

func TestECSSource_Filters(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		want []string // "family/startedBy" of the tasks emitted
	}{
		{"none", nil, []string{"thumbs/", "thumbs/rule-a", "transcode/", "transcode/rule-a", "transcode/rule-b"}},
		{"family", func(c *Config) { c.Family = "transcode" }, []string{"transcode/", "transcode/rule-a", "transcode/rule-b"}},
		{"started_by", func(c *Config) { c.StartedBy = "rule-a" }, []string{"thumbs/rule-a", "transcode/rule-a"}},
		{"both", func(c *Config) { c.Family, c.StartedBy = "transcode", "rule-a" }, []string{"transcode/rule-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			byARN := map[string]string{}
			for _, x := range []struct{ family, by string }{{"transcode", ""}, {"transcode", "rule-a"}, {"transcode", "rule-b"}, {"thumbs", ""}, {"thumbs", "rule-a"}} {
				byARN[f.run(t, x.family, x.by, 1)[0]] = x.family + "/" + x.by
			}
			s := f.source(t, sourceOpts{cfg: tt.cfg})
			var got []string
			for _, m := range receive(t, s, len(tt.want)) {
				got = append(got, byARN[m.System["TaskArn"]])
				ack(t, m)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			f.nothing(t, s)
		})
	}
}

// More than 100 tasks: ListTasks is paginated, DescribeTasks batched by 100.
func TestECSSource_Pagination(t *testing.T) {
	f := newFixture(t)
	arns := f.run(t, "transcode", "", 230)
	for _, arn := range arns[:30] {
		if err := f.srv.ECS().StopTask(arn, awstest.StopOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s := f.source(t, sourceOpts{})
	f.srv.ResetStats()
	ms := receive(t, s, 230)
	seen := map[string]bool{}
	for _, m := range ms {
		seen[m.System["TaskArn"]] = true
	}
	if len(seen) != 230 {
		t.Fatalf("%d distinct tasks", len(seen))
	}
	// RUNNING: 200 in 2 pages (+1 empty-token check is not made); STOPPED: 1 page.
	if l, d := f.srv.Calls("ecs:ListTasks"), f.srv.Calls("ecs:DescribeTasks"); l != 3 || d != 3 {
		t.Fatalf("%d ListTasks and %d DescribeTasks calls, want 3 and 3", l, d)
	}
}

// Failed polls back off, doubling from the interval, are logged once per
// streak and classified by error code; the source recovers by itself.
func TestECSSource_PollErrorsBackOffAndRecover(t *testing.T) {
	f := newFixture(t)
	var logs syncbuf.Buffer
	s := f.source(t, sourceOpts{log: slog.New(slog.NewTextHandler(&logs, nil))})
	f.run(t, "transcode", "", 2)
	f.srv.FailNext("ecs:ListTasks", 3, awstest.Throttled())
	calls := func() int { return f.srv.Calls("ecs:ListTasks") }

	poll := func() error {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		ms, err := s.Receive(ctx, 10)
		if len(ms) != 0 {
			t.Fatalf("a failed poll returned %d messages", len(ms))
		}
		return err
	}
	notYet := func() {
		t.Helper()
		before := calls()
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if ms, _ := s.Receive(ctx, 10); len(ms) != 0 || calls() != before {
			t.Fatalf("polled during the backoff")
		}
	}
	err := poll()
	if router.ClassOf(err) != router.Throttled || awserr.Code(err) != "ThrottlingException" {
		t.Fatalf("error %v: class %v, code %q", err, router.ClassOf(err), awserr.Code(err))
	}
	// Backoff after n failures: uniformly in [d/2, d], d = interval<<(n-1).
	for n, d := range []time.Duration{interval, 2 * interval} {
		f.clk.Advance(d/2 - time.Millisecond)
		notYet()
		f.clk.Advance(d/2 + time.Millisecond)
		if err := poll(); router.ClassOf(err) != router.Throttled {
			t.Fatalf("failure %d: %v", n+2, err)
		}
	}
	if n := calls(); n != 1+3 { // Open's check and three polls
		t.Fatalf("%d ListTasks calls", n)
	}
	f.clk.Advance(4 * interval)
	receive(t, s, 2)
	out := logs.String()
	if strings.Count(out, "poll failed") != 1 || strings.Count(out, "poll recovered") != 1 || !strings.Contains(out, "failures=3") || !strings.Contains(out, "class=throttled") {
		t.Fatalf("logs:\n%s", out)
	}
}

// Errors that will not go away by themselves are permanent, and Open
// reports them.
func TestECSSource_ErrorClasses(t *testing.T) {
	f := newFixture(t)
	s, err := New("tasks", Config{Cluster: "nope", Interval: interval}, Options{API: f.api, Clock: f.clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	err = s.Open(t.Context())
	var nf *ecstypes.ClusterNotFoundException
	if !errors.As(err, &nf) || router.ClassOf(err) != router.Permanent {
		t.Fatalf("Open on a missing cluster: %v (class %v)", err, router.ClassOf(err))
	}
	for _, tt := range []struct {
		fault awstest.Fault
		want  router.Class
	}{
		{awstest.InternalError("ServerException"), router.Retryable},
		{awstest.Unavailable(), router.Retryable},
		{awstest.Fault{Code: "AccessDeniedException", Status: 400}, router.Permanent},
		{awstest.Throttled(), router.Throttled},
	} {
		f.srv.FailNext("ecs:ListTasks", 1, tt.fault)
		_, err := f.api.ListTasks(t.Context(), &awsecs.ListTasksInput{Cluster: aws.String("jobs")})
		if got := router.ClassOf(classify(err)); got != tt.want {
			t.Errorf("%+v: class %v, want %v", tt.fault, got, tt.want)
		}
	}
}

// A state that refuses saves: the ack still holds in memory (nothing is
// emitted again) and the save is retried at the next poll.
type flakyState struct {
	MemoryState
	mu    sync.Mutex
	fails int
}

func (s *flakyState) Save(ctx context.Context, key string, seen Seen) error {
	s.mu.Lock()
	if s.fails > 0 {
		s.fails--
		s.mu.Unlock()
		return errors.New("kv: no responders")
	}
	s.mu.Unlock()
	return s.MemoryState.Save(ctx, key, seen)
}

func TestECSSource_FailedSaveIsRetried(t *testing.T) {
	f := newFixture(t)
	state := &flakyState{fails: 1}
	s := f.source(t, sourceOpts{state: state})
	arn := f.run(t, "transcode", "", 1)[0]
	ack(t, receive(t, s, 1)...)
	if st, _ := state.Load(t.Context()); len(st) != 0 {
		t.Fatalf("state %v", st)
	}
	f.nothing(t, s)
	if st, _ := state.Load(t.Context()); st[arn].Status != "PROVISIONING" {
		t.Fatalf("the failed save was not retried: %v", st)
	}
}

// What ECS no longer lists is deleted from the state.
func TestECSSource_ForgetsTasksNoLongerListed(t *testing.T) {
	f := newFixture(t)
	gone := "arn:aws:ecs:us-east-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef"
	state := &MemoryState{}
	state.Save(t.Context(), gone, Seen{Status: "STOPPED", Version: 5})
	arn := f.run(t, "transcode", "", 1)[0]
	state.Save(t.Context(), arn, Seen{Status: "PROVISIONING", Version: 1})
	s := f.source(t, sourceOpts{state: state})
	f.nothing(t, s)
	st, _ := state.Load(t.Context())
	if _, ok := st[gone]; ok || st[arn].Status != "PROVISIONING" {
		t.Fatalf("state %v", st)
	}
}

// An older view of a task than one already acked (DescribeTasks is
// eventually consistent) is not emitted.
func TestECSSource_IgnoresStaleViews(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, sourceOpts{})
	ev := func(status string, version int64) *event {
		return &event{key: "k", id: status, seen: Seen{Status: status, Version: version}, json: []byte(`{}`)}
	}
	s.apply([]*event{ev("RUNNING", 3)}, nil)
	ms := receive(t, s, 1)
	ack(t, ms...)
	s.apply([]*event{ev("PENDING", 2)}, nil)
	s.mu.Lock()
	n := len(s.ready)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("a stale view was queued")
	}
}

func TestECSSource_ReceiveHonoursMax(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, sourceOpts{})
	f.run(t, "transcode", "", 5)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ms, err := s.Receive(ctx, 2)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Receive(2): %d, %v", len(ms), err)
	}
	rest := receive(t, s, 3)
	ack(t, append(ms, rest...)...)
	if ms, _ := s.Receive(ctx, 0); len(ms) != 0 {
		t.Fatal("Receive(0) returned messages")
	}
}

// Extend does nothing, and an event out is never handed out again while it
// is out, however long.
func TestECSSource_ExtendKeepsOut(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, sourceOpts{})
	f.run(t, "transcode", "", 1)
	m := receive(t, s, 1)[0]
	for range 3 {
		if err := m.Handle.Extend(t.Context(), time.Second); err != nil {
			t.Fatal(err)
		}
		f.nothing(t, s)
	}
	ack(t, m)
	ack(t, m) // a second ack is a no-op
}

func TestECSSource_ReceiveHonoursContextAndClose(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, sourceOpts{})
	receiveIn := func(ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := s.Receive(ctx, 1)
			done <- err
		}()
		return done
	}
	waitErr := func(done chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Receive did not return")
			return nil
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := receiveIn(ctx)
	cancel()
	if err := waitErr(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
	done = receiveIn(t.Context())
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(done); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Receive(t.Context(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
}

func TestNew_Wiring(t *testing.T) {
	t.Setenv(MetadataEnv, "")
	if _, err := New("x", Config{Cluster: "c", Interval: interval}, Options{}); err == nil {
		t.Error("cluster mode without an API")
	}
	if _, err := New("x", Config{Task: "self", Interval: interval}, Options{}); err == nil || !strings.Contains(err.Error(), MetadataEnv) {
		t.Errorf("task: self without a metadata URI: %v", err)
	}
	t.Setenv(MetadataEnv, "http://169.254.170.2/v4/abc")
	s, err := New("x", Config{Task: "self", Interval: interval}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.poller.(*selfPoller).uri != "http://169.254.170.2/v4/abc" {
		t.Error("the metadata URI is not read from the environment")
	}
	s.Close(t.Context())
}

// flag is a Leader a test sets.
type flag struct {
	mu      sync.Mutex
	leading bool
	changed chan struct{}
}

func newFlag(leading bool) *flag { return &flag{leading: leading, changed: make(chan struct{})} }

func (f *flag) Leading() (bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leading, f.changed
}

func (f *flag) set(leading bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leading = leading
	close(f.changed)
	f.changed = make(chan struct{})
}

// Two instances share the State; only the one that leads polls. When the
// lease passes, the new leader starts from what the first acked: each
// change is emitted once, by whoever led when it happened.
func TestECSSource_OnlyTheLeaderPollsAndTheStatePassesOn(t *testing.T) {
	f := newFixture(t)
	state := &MemoryState{}
	l1, l2 := newFlag(true), newFlag(false)
	s1 := f.source(t, sourceOpts{state: state, leader: l1})
	s2 := f.source(t, sourceOpts{state: state, leader: l2})
	arns := f.run(t, "transcode", "", 2)
	ack(t, receive(t, s1, 2)...)

	// The follower polls nothing and hands out nothing.
	calls := f.srv.Calls("ecs:ListTasks")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	if ms, _ := s2.Receive(ctx, 100); len(ms) != 0 {
		t.Errorf("the follower handed out %d events", len(ms))
	}
	cancel()
	if f.srv.Calls("ecs:ListTasks") != calls {
		t.Error("the follower polled")
	}

	// The lease passes; a change happens; the new leader emits it alone,
	// and not what the first leader acked.
	l1.set(false)
	l2.set(true)
	if err := f.srv.ECS().SetTaskStatus(arns[0], awstest.TaskRunning); err != nil {
		t.Fatal(err)
	}
	got := f.next(t, s2, 1)
	if got[0].System["TaskArn"] != arns[0] || got[0].System["LastStatus"] != "RUNNING" {
		t.Fatalf("the new leader emitted %v", got[0].System)
	}
	ack(t, got...)
	f.nothing(t, s2)
	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	if ms, _ := s1.Receive(ctx, 100); len(ms) != 0 {
		t.Errorf("the old leader handed out %d events after losing the lease", len(ms))
	}
	cancel()
}
