package ecs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
)

// ecsCodes classifies ECS errors for poll backoff. Permanent ones will not
// go away without someone changing the config, the cluster or IAM.
var ecsCodes = awserr.Codes{
	Throttled: []string{"ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"},
	Permanent: []string{
		"ClusterNotFoundException", "AccessDeniedException", "InvalidParameterException", "ClientException",
		"UnsupportedFeatureException", "MissingAuthenticationTokenException", "UnrecognizedClientException",
		"InvalidSignatureException",
	},
	Retryable: []string{"ServerException", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException", "ExpiredTokenException"},
}

// classify returns err as a router.DeliveryError whose Class says how
// the next poll should wait: by the AWS error code, then HTTP status.
func classify(err error) error { return awserr.Classify(err, ecsCodes) }

// clusterPoller lists and describes a cluster's tasks.
type clusterPoller struct {
	cfg Config
	api API
}

func (p *clusterPoller) init(context.Context) error { return nil }

// check makes one small ListTasks call.
func (p *clusterPoller) check(ctx context.Context) error {
	_, err := p.api.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(p.cfg.Cluster), MaxResults: aws.Int32(1)})
	if err != nil {
		return classify(err)
	}
	return nil
}

// changed: a task is emitted when its lastStatus changes.
func (p *clusterPoller) changed(prev Seen, ok bool, next Seen) bool {
	return !ok || prev.Status != next.Status
}

// poll lists the tasks whose desired status is RUNNING, then those whose
// desired status is STOPPED (in that order: a task moves only from the
// first list to the second, so one that exists throughout is in at least
// one of them), and describes them, with their tags, 100 at a time.
//
// ListTasks takes startedBy only as its sole filter, so with both family
// and started_by the family is checked here, from the task definition ARN.
func (p *clusterPoller) poll(ctx context.Context, now time.Time) ([]*event, map[string]bool, error) {
	listed := map[string]bool{}
	var arns []string
	for _, status := range []ecstypes.DesiredStatus{ecstypes.DesiredStatusRunning, ecstypes.DesiredStatusStopped} {
		in := &ecs.ListTasksInput{Cluster: aws.String(p.cfg.Cluster), DesiredStatus: status, MaxResults: aws.Int32(100)}
		if p.cfg.StartedBy != "" {
			in.StartedBy = aws.String(p.cfg.StartedBy)
		} else if p.cfg.Family != "" {
			in.Family = aws.String(p.cfg.Family)
		}
		for {
			out, err := p.api.ListTasks(ctx, in)
			if err != nil {
				return nil, nil, err
			}
			for _, arn := range out.TaskArns {
				if !listed[arn] {
					listed[arn] = true
					arns = append(arns, arn)
				}
			}
			if aws.ToString(out.NextToken) == "" {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	var events []*event
	for len(arns) > 0 {
		n := min(len(arns), 100)
		out, err := p.api.DescribeTasks(ctx, &ecs.DescribeTasksInput{
			Cluster: aws.String(p.cfg.Cluster), Tasks: arns[:n], Include: []ecstypes.TaskField{ecstypes.TaskFieldTags},
		})
		if err != nil {
			return nil, nil, err
		}
		arns = arns[n:]
		// failures[] (MISSING) are tasks gone between the two calls: they
		// are listed, so nothing is forgotten; the next poll sees.
		for i := range out.Tasks {
			t := &out.Tasks[i]
			if p.cfg.Family != "" && familyOf(aws.ToString(t.TaskDefinitionArn)) != p.cfg.Family {
				continue
			}
			ev, err := taskEvent(t, now)
			if err != nil {
				return nil, nil, err
			}
			events = append(events, ev)
		}
	}
	return events, listed, nil
}

// familyOf returns the family of a task definition ARN
// (arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION).
func familyOf(tdARN string) string {
	_, rest, ok := strings.Cut(tdARN, ":task-definition/")
	if !ok {
		return ""
	}
	family, _, _ := strings.Cut(rest, ":")
	return family
}

// arnParts returns the partition, region and account of an ARN.
func arnParts(arn string) (partition, region, account string) {
	p := strings.SplitN(arn, ":", 6)
	if len(p) < 6 || p[0] != "arn" {
		return "aws", "", ""
	}
	return p[1], p[3], p[4]
}

// eventID derives a stable, UUID-shaped event id from parts.
func eventID(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s + ";"))
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8: custom
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// isoTime is how ECS events write timestamps: UTC, milliseconds.
const isoTime = "2006-01-02T15:04:05.000Z"

func iso(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(isoTime)
}

// envelope is an EventBridge event.
type envelope struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     any      `json:"detail"`
}

// marshal writes v as JSON without escaping <, > and &, as AWS does.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// taskDetail is the detail of an "ECS Task State Change" event: the task
// as DescribeTasks describes it, with ISO-8601 timestamps, plus updatedAt.
// Health is left out, as ECS leaves it out of these events.
type taskDetail struct {
	Attachments          []attachment      `json:"attachments,omitempty"`
	Attributes           []attribute       `json:"attributes,omitempty"`
	AvailabilityZone     string            `json:"availabilityZone,omitempty"`
	CapacityProviderName string            `json:"capacityProviderName,omitempty"`
	ClusterArn           string            `json:"clusterArn"`
	Connectivity         string            `json:"connectivity,omitempty"`
	ConnectivityAt       string            `json:"connectivityAt,omitempty"`
	ContainerInstanceArn string            `json:"containerInstanceArn,omitempty"`
	Containers           []container       `json:"containers"`
	CPU                  string            `json:"cpu,omitempty"`
	CreatedAt            string            `json:"createdAt,omitempty"`
	DesiredStatus        string            `json:"desiredStatus"`
	EnableExecuteCommand bool              `json:"enableExecuteCommand"`
	EphemeralStorage     *ephemeralStorage `json:"ephemeralStorage,omitempty"`
	ExecutionStoppedAt   string            `json:"executionStoppedAt,omitempty"`
	Group                string            `json:"group,omitempty"`
	LastStatus           string            `json:"lastStatus"`
	LaunchType           string            `json:"launchType,omitempty"`
	Memory               string            `json:"memory,omitempty"`
	Overrides            overrides         `json:"overrides"`
	PlatformFamily       string            `json:"platformFamily,omitempty"`
	PlatformVersion      string            `json:"platformVersion,omitempty"`
	PullStartedAt        string            `json:"pullStartedAt,omitempty"`
	PullStoppedAt        string            `json:"pullStoppedAt,omitempty"`
	StartedAt            string            `json:"startedAt,omitempty"`
	StartedBy            string            `json:"startedBy,omitempty"`
	StopCode             string            `json:"stopCode,omitempty"`
	StoppedAt            string            `json:"stoppedAt,omitempty"`
	StoppedReason        string            `json:"stoppedReason,omitempty"`
	StoppingAt           string            `json:"stoppingAt,omitempty"`
	Tags                 []tag             `json:"tags,omitempty"`
	TaskArn              string            `json:"taskArn"`
	TaskDefinitionArn    string            `json:"taskDefinitionArn"`
	UpdatedAt            string            `json:"updatedAt"`
	Version              int64             `json:"version"`
}

type attachment struct {
	ID      string         `json:"id,omitempty"`
	Type    string         `json:"type,omitempty"`
	Status  string         `json:"status,omitempty"`
	Details []keyValuePair `json:"details"`
}

type keyValuePair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type attribute struct {
	Name       string `json:"name"`
	Value      string `json:"value,omitempty"`
	TargetType string `json:"targetType,omitempty"`
	TargetID   string `json:"targetId,omitempty"`
}

type container struct {
	ContainerArn      string             `json:"containerArn,omitempty"`
	CPU               string             `json:"cpu,omitempty"`
	ExitCode          *int32             `json:"exitCode,omitempty"`
	GpuIDs            []string           `json:"gpuIds,omitempty"`
	Image             string             `json:"image,omitempty"`
	ImageDigest       string             `json:"imageDigest,omitempty"`
	LastStatus        string             `json:"lastStatus,omitempty"`
	ManagedAgents     []managedAgent     `json:"managedAgents,omitempty"`
	Memory            string             `json:"memory,omitempty"`
	MemoryReservation string             `json:"memoryReservation,omitempty"`
	Name              string             `json:"name"`
	NetworkBindings   []networkBinding   `json:"networkBindings,omitempty"`
	NetworkInterfaces []networkInterface `json:"networkInterfaces,omitempty"`
	Reason            string             `json:"reason,omitempty"`
	RuntimeID         string             `json:"runtimeId,omitempty"`
	TaskArn           string             `json:"taskArn"`
}

type managedAgent struct {
	LastStartedAt string `json:"lastStartedAt,omitempty"`
	LastStatus    string `json:"lastStatus,omitempty"`
	Name          string `json:"name,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

type networkBinding struct {
	BindIP             string `json:"bindIP,omitempty"`
	ContainerPort      *int32 `json:"containerPort,omitempty"`
	ContainerPortRange string `json:"containerPortRange,omitempty"`
	HostPort           *int32 `json:"hostPort,omitempty"`
	HostPortRange      string `json:"hostPortRange,omitempty"`
	Protocol           string `json:"protocol,omitempty"`
}

type networkInterface struct {
	AttachmentID       string `json:"attachmentId,omitempty"`
	PrivateIpv4Address string `json:"privateIpv4Address,omitempty"`
	Ipv6Address        string `json:"ipv6Address,omitempty"`
}

type ephemeralStorage struct {
	SizeInGiB int32 `json:"sizeInGiB"`
}

type overrides struct {
	ContainerOverrides []containerOverride `json:"containerOverrides"`
	CPU                string              `json:"cpu,omitempty"`
	EphemeralStorage   *ephemeralStorage   `json:"ephemeralStorage,omitempty"`
	ExecutionRoleArn   string              `json:"executionRoleArn,omitempty"`
	Memory             string              `json:"memory,omitempty"`
	TaskRoleArn        string              `json:"taskRoleArn,omitempty"`
}

type containerOverride struct {
	Command              []string              `json:"command,omitempty"`
	CPU                  *int32                `json:"cpu,omitempty"`
	Environment          []keyValuePair        `json:"environment,omitempty"`
	EnvironmentFiles     []typeValue           `json:"environmentFiles,omitempty"`
	Memory               *int32                `json:"memory,omitempty"`
	MemoryReservation    *int32                `json:"memoryReservation,omitempty"`
	Name                 string                `json:"name"`
	ResourceRequirements []resourceRequirement `json:"resourceRequirements,omitempty"`
}

type typeValue struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type resourceRequirement struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// taskEvent builds the "ECS Task State Change" event of t. Its id is
// derived from (taskArn, lastStatus, version); its time is the task's
// latest timestamp (updatedAt) to the second, or now when it has none.
func taskEvent(t *ecstypes.Task, now time.Time) (*event, error) {
	arn := aws.ToString(t.TaskArn)
	status := aws.ToString(t.LastStatus)
	d := taskDetail{
		AvailabilityZone:     aws.ToString(t.AvailabilityZone),
		CapacityProviderName: aws.ToString(t.CapacityProviderName),
		ClusterArn:           aws.ToString(t.ClusterArn),
		Connectivity:         string(t.Connectivity),
		ConnectivityAt:       iso(t.ConnectivityAt),
		ContainerInstanceArn: aws.ToString(t.ContainerInstanceArn),
		Containers:           []container{},
		CPU:                  aws.ToString(t.Cpu),
		CreatedAt:            iso(t.CreatedAt),
		DesiredStatus:        aws.ToString(t.DesiredStatus),
		EnableExecuteCommand: t.EnableExecuteCommand,
		ExecutionStoppedAt:   iso(t.ExecutionStoppedAt),
		Group:                aws.ToString(t.Group),
		LastStatus:           status,
		LaunchType:           string(t.LaunchType),
		Memory:               aws.ToString(t.Memory),
		Overrides:            overrides{ContainerOverrides: []containerOverride{}},
		PlatformFamily:       aws.ToString(t.PlatformFamily),
		PlatformVersion:      aws.ToString(t.PlatformVersion),
		PullStartedAt:        iso(t.PullStartedAt),
		PullStoppedAt:        iso(t.PullStoppedAt),
		StartedAt:            iso(t.StartedAt),
		StartedBy:            aws.ToString(t.StartedBy),
		StopCode:             string(t.StopCode),
		StoppedAt:            iso(t.StoppedAt),
		StoppedReason:        aws.ToString(t.StoppedReason),
		StoppingAt:           iso(t.StoppingAt),
		TaskArn:              arn,
		TaskDefinitionArn:    aws.ToString(t.TaskDefinitionArn),
		Version:              t.Version,
	}
	for _, a := range t.Attachments {
		x := attachment{ID: aws.ToString(a.Id), Type: aws.ToString(a.Type), Status: aws.ToString(a.Status), Details: []keyValuePair{}}
		for _, kv := range a.Details {
			x.Details = append(x.Details, keyValuePair{aws.ToString(kv.Name), aws.ToString(kv.Value)})
		}
		d.Attachments = append(d.Attachments, x)
	}
	for _, a := range t.Attributes {
		d.Attributes = append(d.Attributes, attribute{aws.ToString(a.Name), aws.ToString(a.Value), string(a.TargetType), aws.ToString(a.TargetId)})
	}
	for _, c := range t.Containers {
		x := container{
			ContainerArn: aws.ToString(c.ContainerArn), CPU: aws.ToString(c.Cpu), ExitCode: c.ExitCode, GpuIDs: c.GpuIds,
			Image: aws.ToString(c.Image), ImageDigest: aws.ToString(c.ImageDigest), LastStatus: aws.ToString(c.LastStatus),
			Memory: aws.ToString(c.Memory), MemoryReservation: aws.ToString(c.MemoryReservation), Name: aws.ToString(c.Name),
			Reason: aws.ToString(c.Reason), RuntimeID: aws.ToString(c.RuntimeId), TaskArn: aws.ToString(c.TaskArn),
		}
		for _, m := range c.ManagedAgents {
			x.ManagedAgents = append(x.ManagedAgents, managedAgent{iso(m.LastStartedAt), aws.ToString(m.LastStatus), string(m.Name), aws.ToString(m.Reason)})
		}
		for _, b := range c.NetworkBindings {
			x.NetworkBindings = append(x.NetworkBindings, networkBinding{aws.ToString(b.BindIP), b.ContainerPort,
				aws.ToString(b.ContainerPortRange), b.HostPort, aws.ToString(b.HostPortRange), string(b.Protocol)})
		}
		for _, n := range c.NetworkInterfaces {
			x.NetworkInterfaces = append(x.NetworkInterfaces, networkInterface{aws.ToString(n.AttachmentId), aws.ToString(n.PrivateIpv4Address), aws.ToString(n.Ipv6Address)})
		}
		d.Containers = append(d.Containers, x)
	}
	if t.EphemeralStorage != nil {
		d.EphemeralStorage = &ephemeralStorage{t.EphemeralStorage.SizeInGiB}
	}
	if o := t.Overrides; o != nil {
		d.Overrides.CPU, d.Overrides.Memory = aws.ToString(o.Cpu), aws.ToString(o.Memory)
		d.Overrides.ExecutionRoleArn, d.Overrides.TaskRoleArn = aws.ToString(o.ExecutionRoleArn), aws.ToString(o.TaskRoleArn)
		if o.EphemeralStorage != nil {
			d.Overrides.EphemeralStorage = &ephemeralStorage{o.EphemeralStorage.SizeInGiB}
		}
		for _, c := range o.ContainerOverrides {
			x := containerOverride{Command: c.Command, CPU: c.Cpu, Memory: c.Memory, MemoryReservation: c.MemoryReservation, Name: aws.ToString(c.Name)}
			for _, kv := range c.Environment {
				x.Environment = append(x.Environment, keyValuePair{aws.ToString(kv.Name), aws.ToString(kv.Value)})
			}
			for _, f := range c.EnvironmentFiles {
				x.EnvironmentFiles = append(x.EnvironmentFiles, typeValue{string(f.Type), aws.ToString(f.Value)})
			}
			for _, r := range c.ResourceRequirements {
				x.ResourceRequirements = append(x.ResourceRequirements, resourceRequirement{string(r.Type), aws.ToString(r.Value)})
			}
			d.Overrides.ContainerOverrides = append(d.Overrides.ContainerOverrides, x)
		}
	}
	for _, tg := range t.Tags {
		d.Tags = append(d.Tags, tag{aws.ToString(tg.Key), aws.ToString(tg.Value)})
	}

	// DescribeTasks has no updatedAt: the latest of the task's timestamps
	// is when it last changed as far as they tell.
	var updated time.Time
	for _, x := range []*time.Time{t.CreatedAt, t.PullStartedAt, t.PullStoppedAt, t.StartedAt, t.ConnectivityAt,
		t.StoppingAt, t.ExecutionStoppedAt, t.StoppedAt} {
		if x != nil && x.After(updated) {
			updated = *x
		}
	}
	if updated.IsZero() {
		updated = now
	}
	d.UpdatedAt = iso(&updated)

	_, region, account := arnParts(arn)
	version := strconv.FormatInt(t.Version, 10)
	id := eventID("ecs-task", arn, status, version)
	body, err := marshal(envelope{
		Version: "0", ID: id, DetailType: DetailTypeTask, Source: EventSource, Account: account,
		Time: updated.UTC().Format(time.RFC3339), Region: region, Resources: []string{arn}, Detail: d,
	})
	if err != nil {
		return nil, err
	}
	return &event{
		key: arn, id: id, seen: Seen{Status: status, Version: t.Version}, json: body, group: arn,
		system: map[string]string{"TaskArn": arn, "LastStatus": status, "Version": version, "ClusterArn": d.ClusterArn},
	}, nil
}
