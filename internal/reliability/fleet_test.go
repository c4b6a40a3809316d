package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
)

// The fleet scenarios: three `switchyard run` processes on one SQS queue,
// sharing a real three-node NATS cluster started in the test.

// fleetConfig is the config of every instance of a fleet on cluster.
func (w *world) fleetConfig(cluster *natstest.Cluster, body string) string {
	return w.config(fmt.Sprintf("nats: {url: %q}\nledger: {replicas: 3}\nfleet: {lease: 3s}\n", cluster.URLs()) + body)
}

// startFleet runs n instances on config.
func startFleet(t *testing.T, n int, config string) []*proc {
	t.Helper()
	ps := make([]*proc, n)
	for i := range n {
		ps[i] = start(t, config)
	}
	for i, p := range ps {
		p.awaitRunning(fmt.Sprintf("instance %d", i+1))
	}
	return ps
}

// awaitRunning waits until the daemon has started (its sources open),
// failing the test if it exits first.
func (p *proc) awaitRunning(what string) {
	p.t.Helper()
	deadline := time.After(time.Minute)
	for !strings.Contains(p.stderr.String(), `"msg":"switchyard running"`) {
		select {
		case err := <-p.exited:
			p.exited <- err
			p.t.Fatalf("%s exited at startup (%v):\n%s", what, err, tail(p.stderr.String(), 2048))
		case <-deadline:
			p.t.Fatalf("%s did not start within a minute", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Fleet: 30,000 messages through three instances; one instance is killed
// (kill -9) and one NATS node stopped mid-run. Every message is delivered
// at least once; duplicates stay within what the killed instance had in
// flight.
func TestReliability_Fleet(t *testing.T) {
	cluster := natstest.RunCluster(t, 3)
	w := newWorld(t)
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result { return ok })
	const total = 30_000
	w.send(total)
	cfg := w.fleetConfig(cluster, "max_in_flight: 100\n"+fmt.Sprintf(jobsSource, "5s")+
		"targets: [{name: work, type: lambda, function: work}]\n"+fmt.Sprintf(workRule, "work"))
	ps := startFleet(t, 3, cfg)

	await(t, "10,000 deliveries", 2*time.Minute, func() bool { return w.deliveredCount("work") >= 10_000 })
	inFlight := ps[0].metric("switchyard_messages_in_flight")
	ps[0].kill()
	atKill := w.deliveredCount("work")
	await(t, "20,000 deliveries", 2*time.Minute, func() bool { return w.deliveredCount("work") >= 20_000 })
	cluster.Stop(1)
	atNodeStop := w.deliveredCount("work")
	await(t, "the queue to drain", 3*time.Minute, func() bool { return w.queued("jobs") == 0 })
	cluster.Restart(1)
	for _, p := range ps[1:] {
		p.terminate(30 * time.Second)
	}
	lost, dups, maxDup := w.tally("work", total, nil)
	t.Logf("fleet: %d messages, 3 instances on a 3-node NATS cluster; instance 1 killed at %d delivered (%.0f in flight), NATS node 2 stopped at %d; lost %d, delivered twice %d (max %d times each), bound %.0f",
		total, atKill, inFlight, atNodeStop, lost, dups, maxDup, inFlight)
	if lost != 0 {
		t.Errorf("%d messages lost", lost)
	}
	if float64(dups) > inFlight || maxDup > 2 {
		t.Errorf("%d delivered twice (up to %d times), more than the %.0f in flight at the kill", dups, maxDup, inFlight)
	}
}

// FleetRate: a fleet-wide rate of 50/s holds across the three instances
// within 10% over every 5 s window, also while one is killed and started
// again.
func TestReliability_FleetRate(t *testing.T) {
	cluster := natstest.RunCluster(t, 3)
	w := newWorld(t)
	var mu sync.Mutex
	var calls []time.Time
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
		return ok
	})
	w.send(2000)
	cfg := w.fleetConfig(cluster, fmt.Sprintf(jobsSource, "30s")+
		"targets: [{name: work, type: lambda, function: work}]\n"+
		"policies: {default: {rate: 50/s, scope: fleet}}\n"+fmt.Sprintf(workRule, "work"))
	ps := startFleet(t, 3, cfg)
	begin := time.Now()
	time.Sleep(8 * time.Second)
	ps[0].kill()
	killed := time.Now()
	time.Sleep(6 * time.Second)
	ps[0] = start(t, cfg)
	restarted := time.Now()
	time.Sleep(9 * time.Second)
	end := time.Now()
	for _, p := range ps {
		p.terminate(30 * time.Second)
	}

	mu.Lock()
	defer mu.Unlock()
	// Every 5 s window, a second apart, from 2 s after the start (the
	// instances' first tokens) to the end.
	var counts []int
	for from := begin.Add(2 * time.Second); !from.Add(5 * time.Second).After(end); from = from.Add(time.Second) {
		to := from.Add(5 * time.Second)
		n := 0
		for _, c := range calls {
			if !c.Before(from) && c.Before(to) {
				n++
			}
		}
		counts = append(counts, n)
	}
	lo, hi := slices.Min(counts), slices.Max(counts)
	perSecond := make([]int, int(end.Sub(begin).Seconds())+1)
	for _, c := range calls {
		if i := int(c.Sub(begin).Seconds()); i >= 0 && i < len(perSecond) {
			perSecond[i]++
		}
	}
	t.Logf("fleet rate: calls per second from the start: %v", perSecond)
	t.Logf("fleet rate: 50/s shared by 3 instances; instance 1 killed at %v and started again at %v; calls per 5 s window (want 250 ± 25): lowest %d, highest %d, over %d windows: %v",
		killed.Sub(begin).Round(time.Second), restarted.Sub(begin).Round(time.Second), lo, hi, len(counts), counts)
	if lo < 225 || hi > 275 {
		t.Errorf("a 5 s window had %d to %d calls, want 250 within 10%%", lo, hi)
	}
}

// FleetLeader: three instances watch one ECS cluster; one polls it (the
// lease's holder). Its task state changes are emitted once each; the
// leader is killed, and another takes over within the documented bound.
func TestReliability_FleetLeader(t *testing.T) {
	cluster := natstest.RunCluster(t, 3)
	w := newWorld(t)
	ecs := w.srv.ECS()
	ecs.CreateCluster("jobs")
	if _, err := ecs.RegisterTaskDefinition(awstest.TaskDefinition{Family: "work", Containers: []awstest.ContainerDefinition{{Name: "app"}}, RequiresCompatibilities: []string{"FARGATE"}, CPU: "256", Memory: "512"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	emitted := map[string]int{} // task/status → times
	var lastAt time.Time
	w.srv.Lambda().Register(awstest.Function{Name: "events", Handler: func(ctx context.Context, inv awstest.Invocation) awstest.Result {
		var ev struct {
			Detail struct{ TaskArn, LastStatus string } `json:"detail"`
		}
		json.Unmarshal(inv.Payload, &ev)
		mu.Lock()
		emitted[ev.Detail.TaskArn+" "+ev.Detail.LastStatus]++
		lastAt = time.Now()
		mu.Unlock()
		return ok
	}})
	cfg := strings.Replace(w.fleetConfig(cluster, `sources: [{name: tasks, type: ecs, cluster: jobs, interval: 1s}]
targets: [{name: events, type: lambda, function: events}]
rules: [{name: all, pattern: {source: [aws.ecs]}, targets: [events]}]
`), "lambda: ", "ecs: \"{{URL}}\", lambda: ", 1)
	cfg = strings.ReplaceAll(cfg, "{{URL}}", w.srv.URL())
	ps := startFleet(t, 3, cfg)

	api := w.srv.ECSClient()
	var arns []string
	launch := func(n int) {
		out, err := api.RunTask(t.Context(), &awsecs.RunTaskInput{Cluster: aws.String("jobs"), TaskDefinition: aws.String("work"), LaunchType: ecstypes.LaunchTypeFargate,
			Count: aws.Int32(int32(n)), NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range out.Tasks {
			arns = append(arns, aws.ToString(task.TaskArn))
		}
	}
	want := map[string]bool{} // task/status the source must emit, once each
	note := func() {
		for _, arn := range arns {
			if task, err := ecs.Task(arn); err == nil {
				want[arn+" "+task.LastStatus] = true
			}
		}
	}
	advance := func() {
		for _, arn := range arns {
			ecs.AdvanceTask(arn)
		}
		note()
	}
	caughtUp := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for k := range want {
			if emitted[k] == 0 {
				return false
			}
		}
		return true
	}
	count := func() (distinct, twice int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range emitted {
			distinct++
			if n > 1 {
				twice++
			}
		}
		return distinct, twice
	}
	launch(5)
	note()
	await(t, "the first changes", time.Minute, caughtUp)
	advance()
	await(t, "the next changes", time.Minute, caughtUp)

	// The leader: the instance that took the lease and has not lost it.
	leader := -1
	for i, p := range ps {
		if strings.Contains(p.stderr.String(), `"msg":"lease taken: this instance leads"`) && !strings.Contains(p.stderr.String(), `"msg":"lease lost`) {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no instance says it leads")
	}
	time.Sleep(2 * time.Second) // what was emitted is acked and saved: a quiet moment
	ps[leader].kill()
	killed := time.Now()
	advance() // RUNNING, while no one leads
	await(t, "a new leader to emit the changes made after the kill", time.Minute, caughtUp)
	mu.Lock()
	takeover := lastAt.Sub(killed)
	mu.Unlock()
	// `switchyard status`, asked of any instance, shows the fleet from
	// the cluster: the two live instances, and the one that leads now.
	other := (leader + 1) % 3
	var table string
	await(t, "status to show the two live instances", time.Minute, func() bool {
		table = fleetTable(ps[other].status())
		return strings.Count(table, "\n") == 3 // the header and two rows
	})
	t.Logf("switchyard status after the takeover:\n%s", table)
	if n := strings.Count(table, " ecs:tasks "); n != 1 {
		t.Errorf("%d instances hold the lease ecs:tasks in the status, want 1:\n%s", n, table)
	}
	for l := range strings.SplitSeq(table, "\n") {
		if strings.Contains(l, "(this)") && strings.Contains(l, "ecs:tasks") != strings.Contains(ps[other].stderr.String(), `"msg":"lease taken: this instance leads"`) {
			t.Errorf("the status of instance %d says it leads %v, its log disagrees:\n%s", other+1, strings.Contains(l, "ecs:tasks"), table)
		}
	}
	for _, arn := range arns[:2] {
		ecs.StopTask(arn, awstest.StopOptions{})
	}
	for range 3 {
		advance()
		await(t, "the changes", time.Minute, caughtUp)
	}
	time.Sleep(2 * time.Second) // time for anything emitted twice to show
	for i, p := range ps {
		if i != leader {
			p.terminate(30 * time.Second)
		}
	}
	distinct, twice := count()
	changes := len(want)
	t.Logf("fleet leader: 3 instances, one ECS cluster polled every 1s; %d task state changes, emitted %d, %d of them twice; leader (instance %d) killed, the changes made meanwhile emitted %v after the kill (lease 3s)",
		changes, distinct, twice, leader+1, takeover.Round(100*time.Millisecond))
	if distinct != changes || twice != 0 {
		t.Errorf("%d of %d changes emitted, %d twice; want each once", distinct, changes, twice)
	}
	// Within about a lease and a third (4s), plus a poll (1s) and its
	// delivery.
	if takeover > 7*time.Second {
		t.Errorf("taken over after %v, want within 7s", takeover)
	}
}

// FleetConsumerMismatch: instances share a JetStream durable consumer; one
// started with another max_ack_pending fails at startup, naming the
// setting and both values, and leaves the consumer as it was; one with the
// same settings joins.
func TestReliability_FleetConsumerMismatch(t *testing.T) {
	cluster := natstest.RunCluster(t, 3)
	w := newWorld(t)
	w.function("work", 0, func(ctx context.Context, n int) awstest.Result { return ok })
	source := `sources: [{name: orders, type: nats, subject: "orders.>", stream: ORDERS, max_ack_pending: %d}]
targets: [{name: work, type: lambda, function: work}]
` + fmt.Sprintf(workRule, "work")
	first := start(t, w.fleetConfig(cluster, fmt.Sprintf(source, 100)))
	first.awaitRunning("the first instance")

	second := start(t, w.fleetConfig(cluster, fmt.Sprintf(source, 200)))
	var err error
	select {
	case err = <-second.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the instance with another max_ack_pending did not exit within 30s")
	}
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	line := ""
	for l := range strings.SplitSeq(second.stderr.String(), "\n") {
		if strings.Contains(l, "max_ack_pending") {
			line = l
		}
	}
	t.Logf("fleet consumer mismatch: the second instance exited %d: %s", code, line)
	if code != 1 || !strings.Contains(line, "durable consumer orders on stream ORDERS has max_ack_pending 100 where this instance's config asks for 200") {
		t.Fatalf("want exit 1 naming max_ack_pending and both values; exit %d, log:\n%s", code, tail(second.stderr.String(), 2048))
	}

	js := cluster.JetStream()
	c, err := js.Consumer(context.Background(), "ORDERS", "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config.MaxAckPending; got != 100 {
		t.Fatalf("the consumer's max_ack_pending is %d after the refused instance, want 100", got)
	}
	third := start(t, w.fleetConfig(cluster, fmt.Sprintf(source, 100)))
	third.awaitRunning("the third instance")
	for i := range 20 {
		if _, err := js.Publish(context.Background(), fmt.Sprintf("orders.%d", i), fmt.Appendf(nil, `{"source":"load","detail-type":"job","detail":{"n":%d}}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "20 deliveries", 30*time.Second, func() bool { return w.deliveredCount("work") >= 20 })
	first.terminate(30 * time.Second)
	third.terminate(30 * time.Second)
}

// fleetTable is the INSTANCE table of `switchyard status`'s output.
func fleetTable(status string) string {
	i := strings.Index(status, "INSTANCE ")
	if i < 0 {
		return ""
	}
	table, _, _ := strings.Cut(status[i:], "\n\n")
	return strings.TrimRight(table, "\n") + "\n"
}
