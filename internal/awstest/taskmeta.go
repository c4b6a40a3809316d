package awstest

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ECS container statuses (KnownStatus and DesiredStatus of the task
// metadata endpoint), as the ECS container agent names them.
const (
	ContainerNone                 = "NONE"
	ContainerPulled               = "PULLED"
	ContainerCreated              = "CREATED"
	ContainerRunning              = "RUNNING"
	ContainerResourcesProvisioned = "RESOURCES_PROVISIONED"
	ContainerStopped              = "STOPPED"
)

// Container health statuses (Health.status).
const (
	HealthUnknown   = "UNKNOWN"
	HealthHealthy   = "HEALTHY"
	HealthUnhealthy = "UNHEALTHY"
)

// TaskMetadataOptions configure a TaskMetadata endpoint. The zero value is
// a Fargate task of family "app", revision 1, in cluster "default".
type TaskMetadataOptions struct {
	// Clock stamps the documents' timestamps. Default RealClock.
	Clock Clock
	// Region and AccountID appear in ARNs. Defaults DefaultRegion and
	// DefaultAccountID.
	Region, AccountID string
	// Cluster is the cluster's name. Default "default".
	Cluster string
	// Family and Revision name the task definition. Defaults "app" and 1.
	Family   string
	Revision int
	// LaunchType is "FARGATE" (the default) or "EC2". Fargate reports the
	// cluster as an ARN, container DockerIds as "<task id>-<digits>" and
	// ClockDrift, EphemeralStorageMetrics and VPCID; an EC2 task (awsvpc)
	// reports the cluster's short name, 64-hex DockerIds and its CNI pause
	// container ("~internal~ecs~pause", Type CNI_PAUSE).
	LaunchType string
	// AvailabilityZone, default Region + "a".
	AvailabilityZone string
	// TaskTags are served by taskWithTags.
	TaskTags map[string]string
}

// MetadataContainer describes a container of the task.
type MetadataContainer struct {
	// Name is the container's name in the task definition. Required,
	// unique in the task.
	Name string
	// Image, default Name + ":latest".
	Image string
	// Status is the first KnownStatus (and DesiredStatus): RUNNING by
	// default, with CreatedAt and StartedAt stamped now.
	Status string
	// Essential containers stop their task: when one stops, the task's
	// DesiredStatus (and that of its other containers) becomes STOPPED.
	Essential bool
	// HealthCheck makes the container report Health, UNKNOWN until
	// SetContainerHealth.
	HealthCheck bool
	// RestartPolicy makes the container report RestartCount (0 at first),
	// as the agent does for containers with a restart policy.
	RestartPolicy bool
	// CPU (units) and Memory (MiB) are the container's Limits.
	CPU    float64
	Memory int64
}

// TaskMetadata serves the Amazon ECS task metadata endpoint version 4 for
// one task, as the ECS container agent does: for each container an
// endpoint URI (what ECS_CONTAINER_METADATA_URI_V4 holds in it), where
//
//	GET ${URI}              the container's document
//	GET ${URI}/task         the task's document, with every container's
//	GET ${URI}/taskWithTags the same, with TaskTags
//
// Documents carry the agent's field names (DockerId, KnownStatus, ExitCode,
// Health{status, statusSince, exitCode, output}, ...) with timestamps in
// RFC 3339 with nanoseconds; absent values are left out as the agent leaves
// them out. An unknown endpoint id is a 404 whose body is a JSON string, as
// the agent answers; paths the agent serves but this does not (stats) are
// a plain 404; methods other than GET a 405.
//
// Tests move the containers through their lifecycle with SetContainerStatus,
// StopContainer, SetContainerHealth and RestartContainer. Every method is
// safe for concurrent use.
type TaskMetadata struct {
	opts  TaskMetadataOptions
	clock Clock

	taskID, taskARN, clusterField string

	mu                 sync.Mutex
	desired, known     string
	pullStartedAt      time.Time
	pullStoppedAt      time.Time
	executionStoppedAt time.Time
	containers         []*metaContainerState
	byEndpoint         map[string]*metaContainerState
	failNext           int
	failStatus         int
	calls              map[string]int
	ts                 *httptest.Server
	closed             bool
}

type metaContainerState struct {
	spec          MetadataContainer
	endpoint      string
	dockerID      string
	dockerName    string
	imageID       string
	containerARN  string
	typ           string
	desired       string
	known         string
	exitCode      *int
	createdAt     time.Time
	startedAt     time.Time
	finishedAt    time.Time
	health        *metaHealthDoc
	restartCount  int
	pause         bool
	healthChecked bool
}

// NewTaskMetadata returns an endpoint for a new task, RUNNING, with no
// containers; it listens nowhere until Start.
func NewTaskMetadata(opts TaskMetadataOptions) *TaskMetadata {
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.Cluster == "" {
		opts.Cluster = "default"
	}
	if opts.Family == "" {
		opts.Family = "app"
	}
	if opts.Revision == 0 {
		opts.Revision = 1
	}
	if opts.LaunchType == "" {
		opts.LaunchType = "FARGATE"
	}
	if opts.AvailabilityZone == "" {
		opts.AvailabilityZone = opts.Region + "a"
	}
	m := &TaskMetadata{
		opts: opts, clock: opts.Clock, taskID: randomHex(16),
		desired: ContainerRunning, known: ContainerRunning,
		byEndpoint: map[string]*metaContainerState{}, calls: map[string]int{},
	}
	m.taskARN = m.arn("task/" + opts.Cluster + "/" + m.taskID)
	m.clusterField = opts.Cluster
	if m.fargate() {
		m.clusterField = m.arn("cluster/" + opts.Cluster)
	}
	now := m.clock.Now()
	m.pullStartedAt, m.pullStoppedAt = now, now
	if !m.fargate() {
		// The agent's CNI pause container, holding the awsvpc network.
		m.containers = append(m.containers, &metaContainerState{
			spec: MetadataContainer{Name: "~internal~ecs~pause", Image: "amazon/amazon-ecs-pause:0.1.0"},
			typ:  "CNI_PAUSE", desired: ContainerResourcesProvisioned, known: ContainerResourcesProvisioned,
			dockerID: randomHex(32), createdAt: now, startedAt: now, pause: true, endpoint: newID(),
		})
		p := m.containers[0]
		p.dockerName = "ecs-" + opts.Family + "-" + strconv.Itoa(opts.Revision) + "-internalecspause-" + randomHex(10)
		m.byEndpoint[p.endpoint] = p
	}
	return m
}

// NewTaskMetadataServer returns a started endpoint that tb's cleanup closes.
func NewTaskMetadataServer(tb testing.TB, opts TaskMetadataOptions) *TaskMetadata {
	tb.Helper()
	m := NewTaskMetadata(opts)
	if err := m.Start(); err != nil {
		tb.Fatalf("awstest: task metadata: start: %v", err)
	}
	tb.Cleanup(m.Close)
	return m
}

func (m *TaskMetadata) fargate() bool { return m.opts.LaunchType == "FARGATE" }

func (m *TaskMetadata) arn(resource string) string {
	return "arn:aws:ecs:" + m.opts.Region + ":" + m.opts.AccountID + ":" + resource
}

// Start listens on 127.0.0.1 on a free port and serves. It fails if the
// endpoint was started or closed before.
func (m *TaskMetadata) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("awstest: task metadata: closed")
	}
	if m.ts != nil {
		return errors.New("awstest: task metadata: already started")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("awstest: task metadata: listen: %w", err)
	}
	ts := httptest.NewUnstartedServer(m)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Start()
	m.ts = ts
	return nil
}

// Close stops listening and waits for requests to finish. It is idempotent.
func (m *TaskMetadata) Close() {
	m.mu.Lock()
	ts := m.ts
	m.ts, m.closed = nil, true
	m.mu.Unlock()
	if ts != nil {
		ts.Close()
	}
}

// URL returns the base URL ("http://127.0.0.1:port"), or "" before Start.
func (m *TaskMetadata) URL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ts == nil {
		return ""
	}
	return m.ts.URL
}

// TaskARN returns the task's ARN.
func (m *TaskMetadata) TaskARN() string { return m.taskARN }

// ClusterARN returns the ARN of the task's cluster.
func (m *TaskMetadata) ClusterARN() string { return m.arn("cluster/" + m.opts.Cluster) }

// AddContainer adds a container to the task.
func (m *TaskMetadata) AddContainer(c MetadataContainer) error {
	if c.Name == "" {
		return errors.New("awstest: task metadata: a container needs a name")
	}
	if c.Image == "" {
		c.Image = c.Name + ":latest"
	}
	if c.Status == "" {
		c.Status = ContainerRunning
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.containers {
		if x.spec.Name == c.Name {
			return fmt.Errorf("awstest: task metadata: container %s exists", c.Name)
		}
	}
	now := m.clock.Now()
	s := &metaContainerState{
		spec: c, endpoint: newID(), typ: "NORMAL", desired: c.Status, known: ContainerNone,
		imageID: "sha256:" + randomHex(32), containerARN: m.arn("container/" + m.opts.Cluster + "/" + m.taskID + "/" + newID()),
		healthChecked: c.HealthCheck,
	}
	if m.fargate() {
		s.dockerID = m.taskID + "-" + randomDigits(10)
		s.dockerName = c.Name
	} else {
		s.dockerID = randomHex(32)
		s.dockerName = "ecs-" + m.opts.Family + "-" + strconv.Itoa(m.opts.Revision) + "-" + c.Name + "-" + randomHex(10)
	}
	if c.HealthCheck {
		s.health = &metaHealthDoc{Status: HealthUnknown}
	}
	m.advance(s, c.Status, now)
	m.containers = append(m.containers, s)
	m.byEndpoint[s.endpoint] = s
	return nil
}

// URI returns the endpoint URI of the container name (its
// ECS_CONTAINER_METADATA_URI_V4), or "" if there is no such container or
// the endpoint is not started.
func (m *TaskMetadata) URI(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ts == nil {
		return ""
	}
	for _, c := range m.containers {
		if c.spec.Name == name {
			return m.ts.URL + "/v4/" + c.endpoint
		}
	}
	return ""
}

func (m *TaskMetadata) container(name string) (*metaContainerState, error) {
	for _, c := range m.containers {
		if c.spec.Name == name && !c.pause {
			return c, nil
		}
	}
	return nil, fmt.Errorf("awstest: task metadata: no container %s", name)
}

// advance moves c to status, stamping what the agent stamps on the way.
func (m *TaskMetadata) advance(c *metaContainerState, status string, now time.Time) {
	switch status {
	case ContainerCreated:
		if c.createdAt.IsZero() {
			c.createdAt = now
		}
	case ContainerRunning:
		if c.createdAt.IsZero() {
			c.createdAt = now
		}
		c.startedAt = now
	case ContainerStopped:
		if c.createdAt.IsZero() {
			c.createdAt = now
		}
		c.finishedAt, c.desired = now, ContainerStopped
	}
	c.known = status
}

// SetContainerStatus moves a container to KnownStatus status (NONE,
// PULLED, CREATED, RUNNING or STOPPED), stamping CreatedAt, StartedAt or
// FinishedAt as the agent does.
func (m *TaskMetadata) SetContainerStatus(name, status string) error {
	switch status {
	case ContainerNone, ContainerPulled, ContainerCreated, ContainerRunning, ContainerStopped:
	default:
		return fmt.Errorf("awstest: task metadata: unknown container status %q", status)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.container(name)
	if err != nil {
		return err
	}
	m.advance(c, status, m.clock.Now())
	return nil
}

// StopContainer stops a container with exitCode (137 for a SIGKILL, as
// after a stop timeout). An essential container stops its task: the task's
// DesiredStatus and its other containers' become STOPPED, and
// ExecutionStoppedAt is stamped.
func (m *TaskMetadata) StopContainer(name string, exitCode int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.container(name)
	if err != nil {
		return err
	}
	now := m.clock.Now()
	m.advance(c, ContainerStopped, now)
	c.exitCode = &exitCode
	if c.spec.Essential {
		m.desired = ContainerStopped
		if m.executionStoppedAt.IsZero() {
			m.executionStoppedAt = now
		}
		for _, x := range m.containers {
			x.desired = ContainerStopped
		}
	}
	return nil
}

// RestartContainer restarts a stopped container with a restart policy:
// RUNNING again, RestartCount one more, ExitCode cleared.
func (m *TaskMetadata) RestartContainer(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.container(name)
	if err != nil {
		return err
	}
	if !c.spec.RestartPolicy {
		return fmt.Errorf("awstest: task metadata: container %s has no restart policy", name)
	}
	c.restartCount++
	c.exitCode, c.finishedAt, c.desired = nil, time.Time{}, ContainerRunning
	m.advance(c, ContainerRunning, m.clock.Now())
	return nil
}

// SetContainerHealth sets a container's health (HEALTHY, UNHEALTHY or
// UNKNOWN); statusSince is stamped when the status changes. exitCode and
// output are the last check's (the agent leaves a zero exit code and an
// empty output out).
func (m *TaskMetadata) SetContainerHealth(name, status string, exitCode int, output string) error {
	switch status {
	case HealthHealthy, HealthUnhealthy, HealthUnknown:
	default:
		return fmt.Errorf("awstest: task metadata: unknown health status %q", status)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.container(name)
	if err != nil {
		return err
	}
	if !c.healthChecked {
		return fmt.Errorf("awstest: task metadata: container %s has no health check", name)
	}
	if c.health.Status != status || c.health.Since == nil {
		now := m.clock.Now().UTC()
		c.health.Since = &now
	}
	c.health.Status, c.health.ExitCode, c.health.Output = status, exitCode, output
	return nil
}

// SetTaskStatus sets the task's KnownStatus and DesiredStatus.
func (m *TaskMetadata) SetTaskStatus(known, desired string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.known, m.desired = known, desired
	if desired == ContainerStopped && m.executionStoppedAt.IsZero() {
		m.executionStoppedAt = m.clock.Now()
	}
}

// FailNext makes the next n requests fail with HTTP status, the body a
// JSON string as the agent writes its errors.
func (m *TaskMetadata) FailNext(n, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNext, m.failStatus = n, status
}

// Calls returns how many requests arrived for kind: "container", "task",
// "taskWithTags" (failed ones included).
func (m *TaskMetadata) Calls(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[kind]
}

// randomDigits returns n random decimal digits.
func randomDigits(n int) string {
	b := []byte(randomHex(n)[:n])
	for i, c := range b {
		b[i] = '0' + c%10
	}
	return string(b)
}

// ---- documents, as the agent's v4 handlers write them ----

type metaHealthDoc struct {
	Status   string     `json:"status,omitempty"`
	Since    *time.Time `json:"statusSince,omitempty"`
	ExitCode int        `json:"exitCode,omitempty"`
	Output   string     `json:"output,omitempty"`
}

type metaLimitsDoc struct {
	CPU    *float64 `json:"CPU,omitempty"`
	Memory *int64   `json:"Memory,omitempty"`
}

type metaNetworkDoc struct {
	NetworkMode              string   `json:"NetworkMode"`
	IPv4Addresses            []string `json:"IPv4Addresses"`
	AttachmentIndex          *int     `json:"AttachmentIndex,omitempty"`
	MACAddress               string   `json:"MACAddress,omitempty"`
	IPv4SubnetCIDRBlock      string   `json:"IPv4SubnetCIDRBlock,omitempty"`
	DomainNameServers        []string `json:"DomainNameServers,omitempty"`
	PrivateDNSName           string   `json:"PrivateDNSName,omitempty"`
	SubnetGatewayIPV4Address string   `json:"SubnetGatewayIpv4Address,omitempty"`
}

type metaContainerDoc struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        metaLimitsDoc     `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt    *time.Time        `json:"FinishedAt,omitempty"`
	Type          string            `json:"Type"`
	Health        *metaHealthDoc    `json:"Health,omitempty"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
	ContainerARN  string            `json:"ContainerARN,omitempty"`
	Networks      []metaNetworkDoc  `json:"Networks,omitempty"`
	Snapshotter   string            `json:"Snapshotter,omitempty"`
	RestartCount  *int              `json:"RestartCount,omitempty"`
}

type metaClockDriftDoc struct {
	ClockErrorBound            float64    `json:"ClockErrorBound,omitempty"`
	ReferenceTimestamp         *time.Time `json:"ReferenceTimestamp,omitempty"`
	ClockSynchronizationStatus string     `json:"ClockSynchronizationStatus,omitempty"`
}

type metaEphemeralStorageDoc struct {
	Utilized int64 `json:"Utilized"`
	Reserved int64 `json:"Reserved"`
}

type metaTaskDoc struct {
	Cluster                 string                   `json:"Cluster"`
	TaskARN                 string                   `json:"TaskARN"`
	Family                  string                   `json:"Family"`
	Revision                string                   `json:"Revision"`
	DesiredStatus           string                   `json:"DesiredStatus,omitempty"`
	KnownStatus             string                   `json:"KnownStatus"`
	Limits                  *metaLimitsDoc           `json:"Limits,omitempty"`
	PullStartedAt           *time.Time               `json:"PullStartedAt,omitempty"`
	PullStoppedAt           *time.Time               `json:"PullStoppedAt,omitempty"`
	ExecutionStoppedAt      *time.Time               `json:"ExecutionStoppedAt,omitempty"`
	AvailabilityZone        string                   `json:"AvailabilityZone,omitempty"`
	TaskTags                map[string]string        `json:"TaskTags,omitempty"`
	ContainerInstanceTags   map[string]string        `json:"ContainerInstanceTags,omitempty"`
	LaunchType              string                   `json:"LaunchType,omitempty"`
	Containers              []metaContainerDoc       `json:"Containers,omitempty"`
	VPCID                   string                   `json:"VPCID,omitempty"`
	ClockDrift              *metaClockDriftDoc       `json:"ClockDrift,omitempty"`
	EphemeralStorageMetrics *metaEphemeralStorageDoc `json:"EphemeralStorageMetrics,omitempty"`
	FaultInjectionEnabled   bool                     `json:"FaultInjectionEnabled"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (m *TaskMetadata) containerDoc(c *metaContainerState) metaContainerDoc {
	d := metaContainerDoc{
		DockerID: c.dockerID, Name: c.spec.Name, DockerName: c.dockerName, Image: c.spec.Image, ImageID: c.imageID,
		Labels: map[string]string{
			"com.amazonaws.ecs.cluster":                 m.clusterField,
			"com.amazonaws.ecs.container-name":          c.spec.Name,
			"com.amazonaws.ecs.task-arn":                m.taskARN,
			"com.amazonaws.ecs.task-definition-family":  m.opts.Family,
			"com.amazonaws.ecs.task-definition-version": strconv.Itoa(m.opts.Revision),
		},
		DesiredStatus: c.desired, KnownStatus: c.known, Type: c.typ,
		CreatedAt: timePtr(c.createdAt), StartedAt: timePtr(c.startedAt), FinishedAt: timePtr(c.finishedAt),
		ContainerARN: c.containerARN,
		Networks: []metaNetworkDoc{{
			NetworkMode: "awsvpc", IPv4Addresses: []string{"10.0.2.100"}, AttachmentIndex: new(int),
			MACAddress: "0e:9e:32:c7:48:85", IPv4SubnetCIDRBlock: "10.0.2.0/24",
			PrivateDNSName: "ip-10-0-2-100." + m.opts.Region + ".compute.internal", SubnetGatewayIPV4Address: "10.0.2.1/24",
		}},
	}
	if c.exitCode != nil {
		v := *c.exitCode
		d.ExitCode = &v
	}
	cpu, mem := c.spec.CPU, c.spec.Memory
	d.Limits = metaLimitsDoc{CPU: &cpu}
	if mem != 0 || !m.fargate() {
		d.Limits.Memory = &mem
	}
	if c.health != nil {
		h := *c.health
		d.Health = &h
	}
	if c.pause {
		d.ImageID, d.ContainerARN = "", ""
		return d
	}
	d.LogDriver = "awslogs"
	d.LogOptions = map[string]string{
		"awslogs-create-group": "true", "awslogs-group": "/ecs/" + m.opts.Family,
		"awslogs-region": m.opts.Region, "awslogs-stream": "ecs/" + c.spec.Name + "/" + m.taskID,
	}
	if m.fargate() {
		d.Snapshotter = "overlayfs"
	}
	if c.spec.RestartPolicy {
		n := c.restartCount
		d.RestartCount = &n
	}
	return d
}

func (m *TaskMetadata) taskDoc(tags bool) metaTaskDoc {
	d := metaTaskDoc{
		Cluster: m.clusterField, TaskARN: m.taskARN, Family: m.opts.Family, Revision: strconv.Itoa(m.opts.Revision),
		DesiredStatus: m.desired, KnownStatus: m.known,
		PullStartedAt: timePtr(m.pullStartedAt), PullStoppedAt: timePtr(m.pullStoppedAt), ExecutionStoppedAt: timePtr(m.executionStoppedAt),
		AvailabilityZone: m.opts.AvailabilityZone, LaunchType: m.opts.LaunchType,
	}
	for _, c := range m.containers {
		d.Containers = append(d.Containers, m.containerDoc(c))
	}
	if m.fargate() {
		cpu, mem := 0.25, int64(512)
		d.Limits = &metaLimitsDoc{CPU: &cpu, Memory: &mem}
		d.VPCID = "vpc-0123456789abcdef0"
		d.ClockDrift = &metaClockDriftDoc{ClockErrorBound: 0.5, ReferenceTimestamp: timePtr(m.clock.Now()), ClockSynchronizationStatus: "SYNCHRONIZED"}
		d.EphemeralStorageMetrics = &metaEphemeralStorageDoc{Utilized: 261, Reserved: 20496}
	}
	if tags {
		d.TaskTags = map[string]string{}
		for k, v := range m.opts.TaskTags {
			d.TaskTags[k] = v
		}
		if !m.fargate() {
			d.ContainerInstanceTags = map[string]string{}
		}
	}
	return d
}

// ServeHTTP answers the v4 paths.
func (m *TaskMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v4/")
	if !ok || rest == "" {
		http.NotFound(w, r)
		return
	}
	id, sub, _ := strings.Cut(rest, "/")
	kind := ""
	switch sub {
	case "":
		kind = "container"
	case "task":
		kind = "task"
	case "taskWithTags":
		kind = "taskWithTags"
	default:
		http.NotFound(w, r) // stats and the rest are not served
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	m.mu.Lock()
	m.calls[kind]++
	if m.failNext > 0 {
		m.failNext--
		status := m.failStatus
		m.mu.Unlock()
		writeJSON(w, status, contentJSON, "failed to get "+kind+" metadata")
		return
	}
	c := m.byEndpoint[id]
	if c == nil {
		m.mu.Unlock()
		prefix := "V4 container metadata handler"
		if kind != "container" {
			prefix = "V4 task metadata handler"
		}
		writeJSON(w, http.StatusNotFound, contentJSON, prefix+": unable to get task arn from request: unable to get task Arn from v3 endpoint ID: "+id)
		return
	}
	var doc any
	if kind == "container" {
		doc = m.containerDoc(c)
	} else {
		doc = m.taskDoc(kind == "taskWithTags")
	}
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, contentJSON, doc)
}
