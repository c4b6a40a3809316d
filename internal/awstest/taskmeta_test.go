package awstest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

// getJSON GETs url and decodes its body into a generic value.
func getJSON(t *testing.T, url string) (int, any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %d %q is not JSON: %v", url, resp.StatusCode, b, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	return resp.StatusCode, v
}

func newTaskMetadata(t *testing.T, opts awstest.TaskMetadataOptions) (*awstest.TaskMetadata, *awstest.ManualClock) {
	t.Helper()
	clk := awstest.NewManualClock(epoch)
	opts.Clock = clk
	m := awstest.NewTaskMetadataServer(t, opts)
	for _, c := range []awstest.MetadataContainer{
		{Name: "switchyard", Image: "switchyard:1"},
		{Name: "app", Image: "app:7", Essential: true, HealthCheck: true, CPU: 256, Memory: 512},
	} {
		if err := m.AddContainer(c); err != nil {
			t.Fatal(err)
		}
	}
	return m, clk
}

func TestTaskMetadata_Documents(t *testing.T) {
	t.Parallel()
	m, _ := newTaskMetadata(t, awstest.TaskMetadataOptions{Family: "web", Revision: 3, Cluster: "prod"})
	uri := m.URI("switchyard")
	if !strings.HasPrefix(uri, m.URL()+"/v4/") {
		t.Fatalf("URI %q", uri)
	}
	status, v := getJSON(t, uri)
	own := v.(map[string]any)
	if status != 200 || own["Name"] != "switchyard" || own["KnownStatus"] != "RUNNING" || own["Type"] != "NORMAL" ||
		own["DockerId"] == "" || own["ContainerARN"] == nil || own["StartedAt"] != "2026-03-01T12:00:00Z" {
		t.Fatalf("container document: %d %v", status, own)
	}
	if _, ok := own["ExitCode"]; ok {
		t.Errorf("a running container has an ExitCode: %v", own)
	}
	if _, ok := own["Health"]; ok {
		t.Errorf("a container without a health check reports Health: %v", own)
	}

	status, v = getJSON(t, uri+"/task")
	task := v.(map[string]any)
	if status != 200 || task["Cluster"] != m.ClusterARN() || task["TaskARN"] != m.TaskARN() || task["Family"] != "web" ||
		task["Revision"] != "3" || task["KnownStatus"] != "RUNNING" || task["DesiredStatus"] != "RUNNING" ||
		task["LaunchType"] != "FARGATE" || task["FaultInjectionEnabled"] != false {
		t.Fatalf("task document: %v", task)
	}
	cs := task["Containers"].([]any)
	if len(cs) != 2 {
		t.Fatalf("%d containers", len(cs))
	}
	app := cs[1].(map[string]any)
	if app["Name"] != "app" || app["Health"].(map[string]any)["status"] != "UNKNOWN" ||
		app["Limits"].(map[string]any)["CPU"] != 256.0 || app["Labels"].(map[string]any)["com.amazonaws.ecs.task-arn"] != m.TaskARN() {
		t.Fatalf("app in the task document: %v", app)
	}
	if !strings.HasPrefix(m.TaskARN(), "arn:aws:ecs:us-east-1:123456789012:task/prod/") {
		t.Fatalf("task ARN %s", m.TaskARN())
	}
}

func TestTaskMetadata_ContainerLifecycle(t *testing.T) {
	t.Parallel()
	m, clk := newTaskMetadata(t, awstest.TaskMetadataOptions{})
	clk.Advance(time.Minute)
	if err := m.SetContainerHealth("app", awstest.HealthUnhealthy, 1, "curl: (7) refused"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := m.StopContainer("app", 137); err != nil {
		t.Fatal(err)
	}
	_, v := getJSON(t, m.URI("switchyard")+"/task")
	task := v.(map[string]any)
	app := task["Containers"].([]any)[1].(map[string]any)
	h := app["Health"].(map[string]any)
	if app["KnownStatus"] != "STOPPED" || app["DesiredStatus"] != "STOPPED" || app["ExitCode"] != 137.0 ||
		app["FinishedAt"] != "2026-03-01T12:02:00Z" || h["status"] != "UNHEALTHY" || h["statusSince"] != "2026-03-01T12:01:00Z" ||
		h["exitCode"] != 1.0 || h["output"] != "curl: (7) refused" {
		t.Fatalf("stopped app: %v", app)
	}
	// An essential container stops its task.
	if task["DesiredStatus"] != "STOPPED" || task["ExecutionStoppedAt"] != "2026-03-01T12:02:00Z" {
		t.Fatalf("task after its essential container stopped: %v", task)
	}
	if own := task["Containers"].([]any)[0].(map[string]any); own["DesiredStatus"] != "STOPPED" || own["KnownStatus"] != "RUNNING" {
		t.Fatalf("sibling after the essential container stopped: %v", own)
	}
	if err := m.SetContainerHealth("switchyard", awstest.HealthHealthy, 0, ""); err == nil {
		t.Fatal("set the health of a container without a health check")
	}
}

func TestTaskMetadata_EC2HasPauseContainer(t *testing.T) {
	t.Parallel()
	m, _ := newTaskMetadata(t, awstest.TaskMetadataOptions{LaunchType: "EC2", TaskTags: map[string]string{"team": "web"}})
	_, v := getJSON(t, m.URI("app")+"/taskWithTags")
	task := v.(map[string]any)
	cs := task["Containers"].([]any)
	pause := cs[0].(map[string]any)
	if task["Cluster"] != "default" || len(cs) != 3 || pause["Type"] != "CNI_PAUSE" || pause["KnownStatus"] != "RESOURCES_PROVISIONED" {
		t.Fatalf("EC2 task: %v", task)
	}
	if tags, _ := task["TaskTags"].(map[string]any); tags["team"] != "web" {
		t.Errorf("taskWithTags has no TaskTags: %v", task)
	}
}

func TestTaskMetadata_Errors(t *testing.T) {
	t.Parallel()
	m, _ := newTaskMetadata(t, awstest.TaskMetadataOptions{})
	status, v := getJSON(t, m.URL()+"/v4/nope/task")
	if msg, _ := v.(string); status != 404 || !strings.HasPrefix(msg, "V4 task metadata handler") {
		t.Fatalf("unknown endpoint: %d %v", status, v)
	}
	m.FailNext(2, 500)
	for range 2 {
		if status, _ := getJSON(t, m.URI("app")+"/task"); status != 500 {
			t.Fatalf("scripted failure: %d", status)
		}
	}
	if status, _ := getJSON(t, m.URI("app")+"/task"); status != 200 {
		t.Fatalf("after the scripted failures: %d", status)
	}
	if n := m.Calls("task"); n != 4 {
		t.Fatalf("%d task calls", n)
	}
	resp, err := http.Post(m.URI("app"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

func TestTaskMetadata_Restart(t *testing.T) {
	t.Parallel()
	m, _ := newTaskMetadata(t, awstest.TaskMetadataOptions{})
	if err := m.AddContainer(awstest.MetadataContainer{Name: "worker", RestartPolicy: true}); err != nil {
		t.Fatal(err)
	}
	if err := m.StopContainer("worker", 1); err != nil {
		t.Fatal(err)
	}
	if err := m.RestartContainer("worker"); err != nil {
		t.Fatal(err)
	}
	_, v := getJSON(t, m.URI("worker"))
	w := v.(map[string]any)
	if w["KnownStatus"] != "RUNNING" || w["RestartCount"] != 1.0 || w["ExitCode"] != nil {
		t.Fatalf("restarted: %v", w)
	}
}
