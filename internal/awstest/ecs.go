package awstest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ECS task statuses (lastStatus and desiredStatus).
const (
	TaskProvisioning   = "PROVISIONING"
	TaskPending        = "PENDING"
	TaskRunning        = "RUNNING"
	TaskDeprovisioning = "DEPROVISIONING"
	TaskStopped        = "STOPPED"
)

// ECSOptions configure the ECS endpoint.
type ECSOptions struct {
	// StartRunning puts launched tasks straight into RUNNING (for load
	// tests); otherwise they start PROVISIONING (awsvpc) or PENDING and move
	// only when a test advances them.
	StartRunning bool
	// FargatePlatformVersion is what Fargate tasks launched with LATEST (or
	// no platformVersion) report. Default "1.4.0".
	FargatePlatformVersion string
}

// TaskDefinition is a task definition registered with
// ECS.RegisterTaskDefinition (RegisterTaskDefinition is not served on the wire).
type TaskDefinition struct {
	Family string
	// Revision is assigned (latest + 1) when zero.
	Revision int
	// Containers must name at least one container.
	Containers []ContainerDefinition
	// NetworkMode is "awsvpc" (the default), "bridge", "host" or "none".
	NetworkMode string
	// RequiresCompatibilities, e.g. ["FARGATE"], picks the launch type when
	// a RunTask call names neither a launch type nor a capacity provider.
	RequiresCompatibilities []string
	CPU, Memory             string
	Tags                    []Tag
	// Inactive makes RunTask refuse the revision (ClientException).
	Inactive bool
}

// ContainerDefinition is a container of a TaskDefinition.
type ContainerDefinition struct {
	Name  string
	Image string
}

// Tag is an ECS resource tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// KeyValuePair is an environment variable of a container override.
type KeyValuePair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ContainerOverride is one entry of overrides.containerOverrides.
type ContainerOverride struct {
	Name              string         `json:"name"`
	Command           []string       `json:"command,omitempty"`
	Environment       []KeyValuePair `json:"environment,omitempty"`
	CPU               *int32         `json:"cpu,omitempty"`
	Memory            *int32         `json:"memory,omitempty"`
	MemoryReservation *int32         `json:"memoryReservation,omitempty"`
}

// TaskOverride is a task's overrides.
type TaskOverride struct {
	ContainerOverrides []ContainerOverride `json:"containerOverrides"`
	CPU                string              `json:"cpu,omitempty"`
	Memory             string              `json:"memory,omitempty"`
	TaskRoleARN        string              `json:"taskRoleArn,omitempty"`
	ExecutionRoleARN   string              `json:"executionRoleArn,omitempty"`
}

// Container is a task's container as DescribeTasks reports it.
type Container struct {
	ContainerARN string `json:"containerArn"`
	TaskARN      string `json:"taskArn"`
	Name         string `json:"name"`
	Image        string `json:"image,omitempty"`
	LastStatus   string `json:"lastStatus"`
	ExitCode     *int   `json:"exitCode,omitempty"`
	Reason       string `json:"reason,omitempty"`
	CPU          string `json:"cpu,omitempty"`
	Memory       string `json:"memory,omitempty"`
}

// Attachment is a task attachment (the awsvpc network interface).
type Attachment struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Status  string         `json:"status"`
	Details []KeyValuePair `json:"details"`
}

// Failure is an entry of failures[] in RunTask and DescribeTasks.
type Failure struct {
	ARN    string `json:"arn,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Task is an ECS task: the document RunTask, DescribeTasks and StopTask
// return (timestamps as epoch seconds), plus the fields the server keeps for
// itself.
type Task struct {
	TaskARN              string       `json:"taskArn"`
	ClusterARN           string       `json:"clusterArn"`
	TaskDefinitionARN    string       `json:"taskDefinitionArn"`
	LastStatus           string       `json:"lastStatus"`
	DesiredStatus        string       `json:"desiredStatus"`
	Containers           []Container  `json:"containers"`
	Attachments          []Attachment `json:"attachments,omitempty"`
	StartedBy            string       `json:"startedBy,omitempty"`
	Group                string       `json:"group,omitempty"`
	LaunchType           string       `json:"launchType,omitempty"`
	CapacityProviderName string       `json:"capacityProviderName,omitempty"`
	PlatformVersion      string       `json:"platformVersion,omitempty"`
	PlatformFamily       string       `json:"platformFamily,omitempty"`
	AvailabilityZone     string       `json:"availabilityZone,omitempty"`
	Connectivity         string       `json:"connectivity,omitempty"`
	CPU                  string       `json:"cpu,omitempty"`
	Memory               string       `json:"memory,omitempty"`
	Overrides            TaskOverride `json:"overrides"`
	Tags                 []Tag        `json:"tags,omitempty"`
	EnableExecuteCommand bool         `json:"enableExecuteCommand"`
	StopCode             string       `json:"stopCode,omitempty"`
	StoppedReason        string       `json:"stoppedReason,omitempty"`
	Version              int64        `json:"version"`

	CreatedAt          time.Time `json:"-"`
	PullStartedAt      time.Time `json:"-"`
	PullStoppedAt      time.Time `json:"-"`
	StartedAt          time.Time `json:"-"`
	ConnectivityAt     time.Time `json:"-"`
	StoppingAt         time.Time `json:"-"`
	ExecutionStoppedAt time.Time `json:"-"`
	StoppedAt          time.Time `json:"-"`

	// ID is the last part of TaskARN; Cluster the cluster's name; Family
	// and Revision the task definition's; ClientToken the RunTask token.
	ID          string `json:"-"`
	Cluster     string `json:"-"`
	Family      string `json:"-"`
	Revision    int    `json:"-"`
	ClientToken string `json:"-"`
}

// MarshalJSON writes the task as ECS does, timestamps as epoch seconds.
func (t Task) MarshalJSON() ([]byte, error) {
	type plain Task
	epoch := func(x time.Time) *float64 {
		if x.IsZero() {
			return nil
		}
		f := float64(x.UnixMilli()) / 1000
		return &f
	}
	return json.Marshal(struct {
		plain
		CreatedAt          *float64 `json:"createdAt,omitempty"`
		PullStartedAt      *float64 `json:"pullStartedAt,omitempty"`
		PullStoppedAt      *float64 `json:"pullStoppedAt,omitempty"`
		StartedAt          *float64 `json:"startedAt,omitempty"`
		ConnectivityAt     *float64 `json:"connectivityAt,omitempty"`
		StoppingAt         *float64 `json:"stoppingAt,omitempty"`
		ExecutionStoppedAt *float64 `json:"executionStoppedAt,omitempty"`
		StoppedAt          *float64 `json:"stoppedAt,omitempty"`
	}{plain(t), epoch(t.CreatedAt), epoch(t.PullStartedAt), epoch(t.PullStoppedAt), epoch(t.StartedAt),
		epoch(t.ConnectivityAt), epoch(t.StoppingAt), epoch(t.ExecutionStoppedAt), epoch(t.StoppedAt)})
}

func (t *Task) clone() Task {
	c := *t
	c.Containers = make([]Container, len(t.Containers))
	for i, x := range t.Containers {
		if x.ExitCode != nil {
			v := *x.ExitCode
			x.ExitCode = &v
		}
		c.Containers[i] = x
	}
	c.Attachments = append([]Attachment(nil), t.Attachments...)
	c.Tags = append([]Tag(nil), t.Tags...)
	c.Overrides.ContainerOverrides = append([]ContainerOverride(nil), t.Overrides.ContainerOverrides...)
	return c
}

// ECS is the ECS endpoint (AWS JSON 1.1, X-Amz-Target
// "AmazonEC2ContainerServiceV20141113.<Op>"): RunTask, DescribeTasks,
// ListTasks and StopTask, plus helpers to register task definitions and
// clusters and to move tasks through their lifecycle. The cluster "default"
// exists from the start. Its methods are safe for concurrent use.
//
// Choices where AWS documents a range of behaviour:
//   - clientToken: per cluster, kept for the server's lifetime. A RunTask
//     with a token already used in the cluster and the same parameters
//     launches nothing and answers with the first call's tasks (in their
//     current state) and failures, even when that first call launched
//     nothing; with different parameters it is an InvalidParameterException.
//     A call that failed with an error records no token.
//   - When a call names neither launchType nor capacityProviderStrategy the
//     task runs on FARGATE if its definition requires FARGATE, else EC2.
//   - ListTasks returns tasks oldest first; stopped tasks stay listed.
type ECS struct {
	s    *Server
	opts ECSOptions

	mu       sync.Mutex
	clusters map[string]*ecsCluster
	taskDefs map[string][]*TaskDefinition // family → revisions, index = revision-1
	failNext int
	failWith Failure
}

type ecsCluster struct {
	name, arn string
	tasks     []*Task
	byID      map[string]*Task
	tokens    map[string]*tokenEntry
}

type tokenEntry struct {
	fingerprint string
	taskIDs     []string
	failures    []Failure
}

func newECS(s *Server, opts ECSOptions) *ECS {
	if opts.FargatePlatformVersion == "" {
		opts.FargatePlatformVersion = "1.4.0"
	}
	e := &ECS{s: s, opts: opts, clusters: map[string]*ecsCluster{}, taskDefs: map[string][]*TaskDefinition{}}
	e.CreateCluster("default")
	return e
}

func (e *ECS) arn(resource string) string {
	return "arn:aws:ecs:" + e.s.region + ":" + e.s.account + ":" + resource
}

// CreateCluster creates cluster name if it does not exist and returns its ARN.
func (e *ECS) CreateCluster(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.clusters[name]; c != nil {
		return c.arn
	}
	c := &ecsCluster{name: name, arn: e.arn("cluster/" + name), byID: map[string]*Task{}, tokens: map[string]*tokenEntry{}}
	e.clusters[name] = c
	return c.arn
}

var familyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// RegisterTaskDefinition adds a revision of td.Family and returns its ARN.
func (e *ECS) RegisterTaskDefinition(td TaskDefinition) (string, error) {
	if !familyRE.MatchString(td.Family) {
		return "", fmt.Errorf("awstest: invalid task definition family %q", td.Family)
	}
	if len(td.Containers) == 0 {
		return "", fmt.Errorf("awstest: task definition %s has no containers", td.Family)
	}
	if td.NetworkMode == "" {
		td.NetworkMode = "awsvpc"
	}
	td.Containers = append([]ContainerDefinition(nil), td.Containers...)
	e.mu.Lock()
	defer e.mu.Unlock()
	revs := e.taskDefs[td.Family]
	if td.Revision == 0 {
		td.Revision = len(revs) + 1
	}
	if td.Revision != len(revs)+1 {
		return "", fmt.Errorf("awstest: task definition %s: next revision is %d, not %d", td.Family, len(revs)+1, td.Revision)
	}
	e.taskDefs[td.Family] = append(revs, &td)
	return e.tdARN(&td), nil
}

func (e *ECS) tdARN(td *TaskDefinition) string {
	return e.arn("task-definition/" + td.Family + ":" + strconv.Itoa(td.Revision))
}

// resolveTD reads family, family:revision or an ARN; without a revision the
// latest active one.
func (e *ECS) resolveTD(ref string) *TaskDefinition {
	if rest, ok := strings.CutPrefix(ref, "arn:"); ok {
		p := strings.SplitN(rest, ":", 5)
		if len(p) != 5 || p[1] != "ecs" || p[2] != e.s.region || p[3] != e.s.account {
			return nil
		}
		ref, ok = strings.CutPrefix(p[4], "task-definition/")
		if !ok {
			return nil
		}
	}
	family, rev, hasRev := strings.Cut(ref, ":")
	revs := e.taskDefs[family]
	if !hasRev {
		for i := len(revs) - 1; i >= 0; i-- {
			if !revs[i].Inactive {
				return revs[i]
			}
		}
		return nil
	}
	n, err := strconv.Atoi(rev)
	if err != nil || n < 1 || n > len(revs) {
		return nil
	}
	return revs[n-1]
}

// clusterFor reads a cluster name or ARN; "" is "default".
func (e *ECS) clusterFor(ref string) (*ecsCluster, *APIError) {
	name := ref
	if name == "" {
		name = "default"
	}
	if rest, ok := strings.CutPrefix(ref, e.arn("cluster/")); ok {
		name = rest
	}
	c := e.clusters[name]
	if c == nil {
		return nil, apiErr("ClusterNotFoundException", "Cluster not found.")
	}
	return c, nil
}

// ecsResource names the cluster a request is about, for fault matching.
func ecsResource(body []byte) string {
	var in struct {
		Cluster string `json:"cluster"`
	}
	_ = json.Unmarshal(body, &in)
	if in.Cluster == "" {
		return "default"
	}
	if i := strings.LastIndexByte(in.Cluster, '/'); i >= 0 && strings.HasPrefix(in.Cluster, "arn:") {
		return in.Cluster[i+1:]
	}
	return in.Cluster
}

func (e *ECS) serve(w http.ResponseWriter, c *call) {
	var out any
	var err *APIError
	switch c.op {
	case "RunTask":
		out, err = e.runTask(c)
	case "DescribeTasks":
		out, err = e.describeTasks(c)
	case "ListTasks":
		out, err = e.listTasks(c)
	case "StopTask":
		out, err = e.stopTask(c)
	default:
		err = apiErr("UnknownOperationException", "awstest: ECS operation %q is not implemented", c.op)
	}
	if err != nil {
		writeAPIError(w, "ecs", err)
		return
	}
	writeJSON(w, http.StatusOK, contentJSON11, out)
}

func invalidParam(format string, args ...any) *APIError {
	return apiErr("InvalidParameterException", format, args...)
}

type capacityProviderItem struct {
	CapacityProvider string `json:"capacityProvider"`
	Weight           *int32 `json:"weight,omitempty"`
	Base             *int32 `json:"base,omitempty"`
}

type runTaskInput struct {
	Cluster                  string                 `json:"cluster,omitempty"`
	TaskDefinition           string                 `json:"taskDefinition,omitempty"`
	Count                    *int32                 `json:"count,omitempty"`
	LaunchType               string                 `json:"launchType,omitempty"`
	CapacityProviderStrategy []capacityProviderItem `json:"capacityProviderStrategy,omitempty"`
	NetworkConfiguration     *struct {
		AwsvpcConfiguration *struct {
			Subnets        []string `json:"subnets"`
			SecurityGroups []string `json:"securityGroups,omitempty"`
			AssignPublicIP string   `json:"assignPublicIp,omitempty"`
		} `json:"awsvpcConfiguration,omitempty"`
	} `json:"networkConfiguration,omitempty"`
	Overrides            *TaskOverride     `json:"overrides,omitempty"`
	StartedBy            *string           `json:"startedBy,omitempty"`
	Group                *string           `json:"group,omitempty"`
	Tags                 []Tag             `json:"tags,omitempty"`
	PropagateTags        string            `json:"propagateTags,omitempty"`
	EnableExecuteCommand bool              `json:"enableExecuteCommand,omitempty"`
	EnableECSManagedTags bool              `json:"enableECSManagedTags,omitempty"`
	PlatformVersion      string            `json:"platformVersion,omitempty"`
	ClientToken          *string           `json:"clientToken,omitempty"`
	PlacementConstraints []json.RawMessage `json:"placementConstraints,omitempty"`
	PlacementStrategy    []json.RawMessage `json:"placementStrategy,omitempty"`
	ReferenceID          *string           `json:"referenceId,omitempty"`
	VolumeConfigurations []json.RawMessage `json:"volumeConfigurations,omitempty"`
}

var startedByRE = regexp.MustCompile(`^[A-Za-z0-9_/-]{1,128}$`)

type runTaskOutput struct {
	Tasks    []Task    `json:"tasks"`
	Failures []Failure `json:"failures"`
}

func (e *ECS) runTask(c *call) (any, *APIError) {
	var in runTaskInput
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cl, err := e.clusterFor(in.Cluster)
	if err != nil {
		return nil, err
	}
	token := deref(in.ClientToken)
	if in.ClientToken != nil {
		if len(token) == 0 || len(token) > 64 || strings.IndexFunc(token, func(r rune) bool { return r < 33 || r > 126 }) >= 0 {
			return nil, invalidParam("clientToken must be 1 to 64 ASCII characters in the range 33-126.")
		}
	}
	fp := fingerprint(in)
	if t := cl.tokens[token]; token != "" && t != nil {
		if t.fingerprint != fp {
			return nil, invalidParam("The clientToken %s was already used with different parameters.", token)
		}
		out := runTaskOutput{Tasks: []Task{}, Failures: append([]Failure{}, t.failures...)}
		for _, id := range t.taskIDs {
			out.Tasks = append(out.Tasks, cl.byID[id].clone())
		}
		return out, nil
	}
	if in.TaskDefinition == "" {
		return nil, invalidParam("TaskDefinition can not be blank.")
	}
	td := e.resolveTD(in.TaskDefinition)
	if td == nil {
		return nil, apiErr("ClientException", "TaskDefinition not found.")
	}
	if td.Inactive {
		return nil, apiErr("ClientException", "TaskDefinition is inactive")
	}
	count := 1
	if in.Count != nil {
		count = int(*in.Count)
		if count < 1 || count > 10 {
			return nil, invalidParam("Count must be between 1 and 10.")
		}
	}
	if in.LaunchType != "" && len(in.CapacityProviderStrategy) > 0 {
		return nil, invalidParam("Specifying both a launch type and capacity provider strategy is not supported.")
	}
	launchType, capacityProvider := in.LaunchType, ""
	switch launchType {
	case "", "EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES":
	default:
		return nil, invalidParam("Launch type %s is not valid.", launchType)
	}
	if len(in.CapacityProviderStrategy) > 20 {
		return nil, invalidParam("A capacity provider strategy can contain a maximum of 20 capacity providers.")
	}
	for _, it := range in.CapacityProviderStrategy {
		if it.CapacityProvider == "" {
			return nil, invalidParam("The capacity provider strategy is missing a capacity provider.")
		}
		if it.Weight != nil && (*it.Weight < 0 || *it.Weight > 1000) || it.Base != nil && (*it.Base < 0 || *it.Base > 100000) {
			return nil, invalidParam("Capacity provider strategy weight must be 0 to 1000 and base 0 to 100000.")
		}
		if capacityProvider == "" && (it.Weight == nil || *it.Weight > 0 || it.Base != nil && *it.Base > 0) {
			capacityProvider = it.CapacityProvider
		}
	}
	if len(in.CapacityProviderStrategy) > 0 {
		if capacityProvider == "" {
			capacityProvider = in.CapacityProviderStrategy[0].CapacityProvider
		}
		launchType = "EC2"
		if capacityProvider == "FARGATE" || capacityProvider == "FARGATE_SPOT" {
			launchType = "FARGATE"
		}
	}
	if launchType == "" {
		launchType = "EC2"
		for _, c := range td.RequiresCompatibilities {
			if c == "FARGATE" {
				launchType = "FARGATE"
			}
		}
	}
	awsvpc := td.NetworkMode == "awsvpc" || launchType == "FARGATE"
	var subnet string
	if awsvpc {
		if in.NetworkConfiguration == nil || in.NetworkConfiguration.AwsvpcConfiguration == nil {
			return nil, invalidParam("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
		}
		vpc := in.NetworkConfiguration.AwsvpcConfiguration
		if len(vpc.Subnets) == 0 {
			return nil, invalidParam("subnets can not be empty.")
		}
		if len(vpc.Subnets) > 16 || len(vpc.SecurityGroups) > 5 {
			return nil, invalidParam("At most 16 subnets and 5 security groups are allowed.")
		}
		if a := vpc.AssignPublicIP; a != "" && a != "ENABLED" && a != "DISABLED" {
			return nil, invalidParam("assignPublicIp must be ENABLED or DISABLED.")
		}
		subnet = vpc.Subnets[0]
	} else if in.NetworkConfiguration != nil {
		return nil, invalidParam("Network Configuration is not valid for the given networkMode of this task definition.")
	}
	platform := ""
	if launchType == "FARGATE" {
		platform = in.PlatformVersion
		if platform == "" || platform == "LATEST" {
			platform = e.opts.FargatePlatformVersion
		}
	} else if in.PlatformVersion != "" {
		return nil, invalidParam("The platform version must be null when specifying an EC2 launch type.")
	}
	overrides, err := e.checkOverrides(td, in.Overrides)
	if err != nil {
		return nil, err
	}
	if in.StartedBy != nil && !startedByRE.MatchString(*in.StartedBy) {
		return nil, invalidParam("startedBy can have up to 128 letters (uppercase and lowercase), numbers, hyphens, forward slashes and underscores.")
	}
	group := "family:" + td.Family
	if in.Group != nil {
		if *in.Group == "" || len(*in.Group) > 255 {
			return nil, invalidParam("group must be 1 to 255 characters.")
		}
		group = *in.Group
	}
	tags := append([]Tag(nil), in.Tags...)
	switch in.PropagateTags {
	case "", "NONE":
	case "TASK_DEFINITION":
		tags = append(tags, td.Tags...)
	case "SERVICE":
		return nil, invalidParam("The propagateTags value SERVICE is not supported when running a task.")
	default:
		return nil, invalidParam("propagateTags must be TASK_DEFINITION, SERVICE or NONE.")
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}

	out := runTaskOutput{Tasks: []Task{}, Failures: []Failure{}}
	entry := &tokenEntry{fingerprint: fp}
	if e.failNext > 0 {
		e.failNext--
		for range count {
			out.Failures = append(out.Failures, e.failWith)
		}
		entry.failures = out.Failures
	} else {
		now := e.s.clock.Now()
		for range count {
			t := e.newTask(cl, td, now)
			t.LaunchType, t.CapacityProviderName, t.PlatformVersion = launchType, capacityProvider, platform
			if launchType == "FARGATE" {
				t.PlatformFamily = "Linux"
			}
			t.StartedBy, t.Group, t.Tags = deref(in.StartedBy), group, tags
			t.EnableExecuteCommand, t.ClientToken = in.EnableExecuteCommand, token
			t.Overrides = overrides
			t.CPU, t.Memory = td.CPU, td.Memory
			if overrides.CPU != "" {
				t.CPU = overrides.CPU
			}
			if overrides.Memory != "" {
				t.Memory = overrides.Memory
			}
			for i := range t.Containers {
				for _, o := range overrides.ContainerOverrides {
					if o.Name == t.Containers[i].Name {
						if o.CPU != nil {
							t.Containers[i].CPU = strconv.Itoa(int(*o.CPU))
						}
						if o.Memory != nil {
							t.Containers[i].Memory = strconv.Itoa(int(*o.Memory))
						}
					}
				}
			}
			if awsvpc {
				t.Attachments = []Attachment{{ID: newID(), Type: "ElasticNetworkInterface", Status: "PRECREATED",
					Details: []KeyValuePair{{Name: "subnetId", Value: subnet}}}}
				t.LastStatus = TaskProvisioning
			}
			if e.opts.StartRunning {
				e.advanceTo(t, TaskRunning, now)
			}
			cl.tasks = append(cl.tasks, t)
			cl.byID[t.ID] = t
			entry.taskIDs = append(entry.taskIDs, t.ID)
			out.Tasks = append(out.Tasks, t.clone())
		}
	}
	if token != "" {
		cl.tokens[token] = entry
	}
	return out, nil
}

// fingerprint identifies a RunTask request's parameters, token aside.
func fingerprint(in runTaskInput) string {
	in.ClientToken = nil
	b, _ := json.Marshal(in)
	return string(b)
}

func checkTags(tags []Tag) *APIError {
	if len(tags) > 50 {
		return invalidParam("A task can have at most 50 tags.")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if t.Key == "" || len([]rune(t.Key)) > 128 || len([]rune(t.Value)) > 256 {
			return invalidParam("Tag keys must be 1 to 128 characters and values at most 256.")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return invalidParam("Tag keys may not start with aws:, which is reserved for AWS use.")
		}
		if seen[t.Key] {
			return invalidParam("Duplicate tag key %s.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// checkOverrides validates requested overrides and returns the task's:
// one container override per container of the definition, in its order,
// carrying what was asked for that container.
func (e *ECS) checkOverrides(td *TaskDefinition, in *TaskOverride) (TaskOverride, *APIError) {
	var out TaskOverride
	if in != nil {
		b, _ := json.Marshal(in.ContainerOverrides)
		if len(b) > 8192 {
			return out, invalidParam("Container Overrides length must be at most 8192")
		}
		out = *in
		out.ContainerOverrides = nil
		names := map[string]bool{}
		for _, c := range td.Containers {
			names[c.Name] = true
		}
		for _, o := range in.ContainerOverrides {
			if o.Name == "" {
				return out, invalidParam("Container override must have a name.")
			}
			if !names[o.Name] {
				return out, invalidParam("Override for container named %s is not a container in the TaskDefinition.", o.Name)
			}
			if o.CPU != nil && *o.CPU < 0 || o.Memory != nil && *o.Memory < 0 || o.MemoryReservation != nil && *o.MemoryReservation < 0 {
				return out, invalidParam("Container override cpu and memory must not be negative.")
			}
			for _, kv := range o.Environment {
				if kv.Name == "" {
					return out, invalidParam("Environment variable names must not be empty.")
				}
			}
		}
	}
	for _, c := range td.Containers {
		o := ContainerOverride{Name: c.Name}
		if in != nil {
			for _, x := range in.ContainerOverrides {
				if x.Name == c.Name {
					o = x
				}
			}
		}
		out.ContainerOverrides = append(out.ContainerOverrides, o)
	}
	return out, nil
}

func (e *ECS) newTask(cl *ecsCluster, td *TaskDefinition, now time.Time) *Task {
	id := randomHex(16)
	t := &Task{
		ID: id, Cluster: cl.name, Family: td.Family, Revision: td.Revision,
		TaskARN:           e.arn("task/" + cl.name + "/" + id),
		ClusterARN:        cl.arn,
		TaskDefinitionARN: e.tdARN(td),
		LastStatus:        TaskPending,
		DesiredStatus:     TaskRunning,
		AvailabilityZone:  e.s.region + "a",
		CreatedAt:         now,
		Version:           1,
	}
	for _, c := range td.Containers {
		t.Containers = append(t.Containers, Container{
			ContainerARN: e.arn("container/" + cl.name + "/" + id + "/" + newID()),
			TaskARN:      t.TaskARN, Name: c.Name, Image: c.Image, LastStatus: TaskPending,
		})
	}
	return t
}

// advanceTo moves t to status, stamping the timestamps AWS sets on the way.
func (e *ECS) advanceTo(t *Task, status string, now time.Time) {
	if t.LastStatus == status {
		return
	}
	switch status {
	case TaskPending:
		if t.PullStartedAt.IsZero() {
			t.PullStartedAt = now
		}
	case TaskRunning:
		if t.PullStartedAt.IsZero() {
			t.PullStartedAt = now
		}
		t.PullStoppedAt, t.StartedAt, t.ConnectivityAt, t.Connectivity = now, now, now, "CONNECTED"
		for i := range t.Containers {
			t.Containers[i].LastStatus = TaskRunning
		}
		for i := range t.Attachments {
			t.Attachments[i].Status = "ATTACHED"
		}
	case TaskDeprovisioning:
		if t.StoppingAt.IsZero() {
			t.StoppingAt = now
		}
		t.DesiredStatus = TaskStopped
		t.ExecutionStoppedAt = now
		for i := range t.Containers {
			t.Containers[i].LastStatus = TaskStopped
		}
	case TaskStopped:
		if t.StoppingAt.IsZero() {
			t.StoppingAt = now
		}
		if t.ExecutionStoppedAt.IsZero() {
			t.ExecutionStoppedAt = now
		}
		t.StoppedAt, t.DesiredStatus = now, TaskStopped
		for i := range t.Containers {
			t.Containers[i].LastStatus = TaskStopped
		}
		for i := range t.Attachments {
			t.Attachments[i].Status = "DELETED"
		}
	}
	t.LastStatus = status
	t.Version++
}

// taskIn finds a task of cl by ARN (new or old format) or id.
func (e *ECS) taskIn(cl *ecsCluster, ref string) *Task {
	id := ref
	if strings.HasPrefix(ref, "arn:") {
		rest, ok := strings.CutPrefix(ref, e.arn("task/"))
		if !ok {
			return nil
		}
		if c, i, ok := strings.Cut(rest, "/"); ok {
			if c != cl.name {
				return nil
			}
			rest = i
		}
		id = rest
	}
	return cl.byID[id]
}

func (e *ECS) describeTasks(c *call) (any, *APIError) {
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
		Include []string `json:"include"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cl, err := e.clusterFor(in.Cluster)
	if err != nil {
		return nil, err
	}
	if len(in.Tasks) == 0 {
		return nil, invalidParam("Tasks cannot be empty.")
	}
	if len(in.Tasks) > 100 {
		return nil, invalidParam("Tasks cannot be longer than 100.")
	}
	tags := false
	for _, x := range in.Include {
		if x != "TAGS" {
			return nil, invalidParam("include can only contain TAGS.")
		}
		tags = true
	}
	out := runTaskOutput{Tasks: []Task{}, Failures: []Failure{}}
	for _, ref := range in.Tasks {
		t := e.taskIn(cl, ref)
		if t == nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = e.arn("task/" + cl.name + "/" + ref)
			}
			out.Failures = append(out.Failures, Failure{ARN: arn, Reason: "MISSING"})
			continue
		}
		x := t.clone()
		if !tags {
			x.Tags = nil
		}
		out.Tasks = append(out.Tasks, x)
	}
	return out, nil
}

func (e *ECS) listTasks(c *call) (any, *APIError) {
	var in struct {
		Cluster           string `json:"cluster"`
		ContainerInstance string `json:"containerInstance"`
		Family            string `json:"family"`
		NextToken         string `json:"nextToken"`
		MaxResults        *int32 `json:"maxResults"`
		StartedBy         string `json:"startedBy"`
		ServiceName       string `json:"serviceName"`
		DesiredStatus     string `json:"desiredStatus"`
		LaunchType        string `json:"launchType"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cl, err := e.clusterFor(in.Cluster)
	if err != nil {
		return nil, err
	}
	if in.Family != "" && in.ServiceName != "" {
		return nil, invalidParam("Family and serviceName cannot both be specified.")
	}
	if in.StartedBy != "" && (in.Family != "" || in.ServiceName != "" || in.ContainerInstance != "" || in.LaunchType != "") {
		return nil, invalidParam("startedBy must be the only filter when it is specified.")
	}
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, invalidParam("maxResults must be between 1 and 100.")
		}
		limit = int(*in.MaxResults)
	}
	status := in.DesiredStatus
	if status == "" {
		status = TaskRunning
	}
	switch status {
	case TaskRunning, TaskPending, TaskStopped:
	default:
		return nil, invalidParam("desiredStatus must be RUNNING, PENDING or STOPPED.")
	}
	start := 0
	if in.NextToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), cl.name+"|"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(raw), cl.name+"|") || n < 0 || n > len(cl.tasks) {
			return nil, invalidParam("Invalid nextToken.")
		}
		start = n
	}
	arns := []string{}
	next := ""
	for i := start; i < len(cl.tasks); i++ {
		t := cl.tasks[i]
		if t.DesiredStatus != status ||
			in.Family != "" && t.Family != in.Family ||
			in.ServiceName != "" && t.Group != "service:"+in.ServiceName ||
			in.StartedBy != "" && t.StartedBy != in.StartedBy ||
			in.LaunchType != "" && t.LaunchType != in.LaunchType ||
			in.ContainerInstance != "" {
			continue
		}
		if len(arns) == limit {
			next = base64.RawURLEncoding.EncodeToString([]byte(cl.name + "|" + strconv.Itoa(i)))
			break
		}
		arns = append(arns, t.TaskARN)
	}
	out := map[string]any{"taskArns": arns}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func (e *ECS) stopTask(c *call) (any, *APIError) {
	var in struct {
		Cluster string `json:"cluster"`
		Task    string `json:"task"`
		Reason  string `json:"reason"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cl, err := e.clusterFor(in.Cluster)
	if err != nil {
		return nil, err
	}
	if in.Task == "" {
		return nil, invalidParam("Task can not be blank.")
	}
	t := e.taskIn(cl, in.Task)
	if t == nil {
		return nil, invalidParam("The referenced task was not found.")
	}
	if t.DesiredStatus != TaskStopped {
		t.DesiredStatus = TaskStopped
		t.StoppingAt = e.s.clock.Now()
		t.StopCode = "UserInitiated"
		t.StoppedReason = in.Reason
		if t.StoppedReason == "" {
			t.StoppedReason = "Task stopped by user"
		}
		t.Version++
	}
	return map[string]any{"task": t.clone()}, nil
}

// ---- test helpers ----

func (e *ECS) findTask(ref string) (*Task, error) {
	for _, cl := range e.clusters {
		if t := e.taskIn(cl, ref); t != nil {
			return t, nil
		}
	}
	return nil, fmt.Errorf("awstest: no task %s", ref)
}

// Task returns a copy of the task with ARN or id ref.
func (e *ECS) Task(ref string) (Task, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.findTask(ref)
	if err != nil {
		return Task{}, err
	}
	return t.clone(), nil
}

// Tasks returns copies of cluster's tasks ("" for "default"), oldest first.
func (e *ECS) Tasks(cluster string) []Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	cl, err := e.clusterFor(cluster)
	if err != nil {
		return nil
	}
	out := make([]Task, 0, len(cl.tasks))
	for _, t := range cl.tasks {
		out = append(out, t.clone())
	}
	return out
}

// AdvanceTask moves a task one step along PROVISIONING → PENDING → RUNNING,
// or, once its desired status is STOPPED (StopTask), to STOPPED; it returns
// the new lastStatus. A STOPPED task stays STOPPED.
func (e *ECS) AdvanceTask(ref string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.findTask(ref)
	if err != nil {
		return "", err
	}
	now := e.s.clock.Now()
	switch {
	case t.LastStatus == TaskStopped:
	case t.DesiredStatus == TaskStopped:
		e.advanceTo(t, TaskStopped, now)
	case t.LastStatus == TaskProvisioning:
		e.advanceTo(t, TaskPending, now)
	case t.LastStatus == TaskPending:
		e.advanceTo(t, TaskRunning, now)
	}
	return t.LastStatus, nil
}

// SetTaskStatus moves a task straight to lastStatus status (PROVISIONING,
// PENDING, RUNNING, DEPROVISIONING or STOPPED), stamping the timestamps AWS
// would have set on the way.
func (e *ECS) SetTaskStatus(ref, status string) error {
	switch status {
	case TaskProvisioning, TaskPending, TaskRunning, TaskDeprovisioning, TaskStopped:
	default:
		return fmt.Errorf("awstest: unknown task status %q", status)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.findTask(ref)
	if err != nil {
		return err
	}
	now := e.s.clock.Now()
	if status == TaskStopped || status == TaskDeprovisioning {
		if t.StopCode == "" {
			t.StopCode, t.StoppedReason = "EssentialContainerExited", "Essential container in task exited"
		}
	}
	e.advanceTo(t, status, now)
	return nil
}

// StopOptions describe how a task ended.
type StopOptions struct {
	// StopCode, default "EssentialContainerExited" (see ecstypes.TaskStopCode).
	StopCode string
	// Reason is stoppedReason, default "Essential container in task exited".
	Reason string
	// ExitCodes set containers' exit codes by name.
	ExitCodes map[string]int
	// ContainerReasons set containers' reasons by name (e.g.
	// "CannotPullContainerError: ...").
	ContainerReasons map[string]string
}

// StopTask moves a task to STOPPED now, as if its containers ended.
func (e *ECS) StopTask(ref string, opts StopOptions) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.findTask(ref)
	if err != nil {
		return err
	}
	if opts.StopCode == "" {
		opts.StopCode = "EssentialContainerExited"
	}
	if opts.Reason == "" {
		opts.Reason = "Essential container in task exited"
	}
	t.StopCode, t.StoppedReason = opts.StopCode, opts.Reason
	for i := range t.Containers {
		name := t.Containers[i].Name
		if code, ok := opts.ExitCodes[name]; ok {
			t.Containers[i].ExitCode = &code
		}
		if r, ok := opts.ContainerReasons[name]; ok {
			t.Containers[i].Reason = r
		}
	}
	e.advanceTo(t, TaskStopped, e.s.clock.Now())
	return nil
}

// FailRunTask makes the next n RunTask calls launch nothing and answer
// with f in failures[] once per task asked for (e.g. Reason
// "RESOURCE:MEMORY", "AGENT", "ATTRIBUTE", or Fargate's "Capacity is
// unavailable at this time. Please try again later or in a different
// availability zone"). Calls that fail validation are not counted.
func (e *ECS) FailRunTask(n int, f Failure) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failNext, e.failWith = n, f
}

// Clusters returns the names of the clusters, sorted.
func (e *ECS) Clusters() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.clusters))
	for n := range e.clusters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
