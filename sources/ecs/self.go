package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metaTask is the task metadata endpoint v4's task document
// (GET ${ECS_CONTAINER_METADATA_URI_V4}/task), the fields the source reads.
type metaTask struct {
	Cluster          string          `json:"Cluster"`
	TaskARN          string          `json:"TaskARN"`
	Family           string          `json:"Family"`
	Revision         string          `json:"Revision"`
	DesiredStatus    string          `json:"DesiredStatus"`
	KnownStatus      string          `json:"KnownStatus"`
	AvailabilityZone string          `json:"AvailabilityZone"`
	LaunchType       string          `json:"LaunchType"`
	Containers       []metaContainer `json:"Containers"`
}

// metaContainer is a container document (GET ${ECS_CONTAINER_METADATA_URI_V4},
// and each of the task document's Containers).
type metaContainer struct {
	DockerID      string      `json:"DockerId"`
	Name          string      `json:"Name"`
	DockerName    string      `json:"DockerName"`
	Image         string      `json:"Image"`
	ImageID       string      `json:"ImageID"`
	DesiredStatus string      `json:"DesiredStatus"`
	KnownStatus   string      `json:"KnownStatus"`
	ExitCode      *int        `json:"ExitCode"`
	CreatedAt     *time.Time  `json:"CreatedAt"`
	StartedAt     *time.Time  `json:"StartedAt"`
	FinishedAt    *time.Time  `json:"FinishedAt"`
	Type          string      `json:"Type"`
	ContainerARN  string      `json:"ContainerARN"`
	Health        *metaHealth `json:"Health"`
	RestartCount  *int        `json:"RestartCount"`
}

type metaHealth struct {
	Status   string     `json:"status"`
	Since    *time.Time `json:"statusSince"`
	ExitCode *int       `json:"exitCode"`
	Output   string     `json:"output"`
}

// selfPoller reads the task metadata endpoint of switchyard's own task.
type selfPoller struct {
	uri    string
	client *http.Client
	own    metaContainer // switchyard's container, learnt by init
}

// init reads switchyard's own container, to leave it out.
func (p *selfPoller) init(ctx context.Context) error {
	if err := p.get(ctx, p.uri, &p.own); err != nil {
		return err
	}
	if p.own.DockerID == "" && p.own.Name == "" {
		return fmt.Errorf("task metadata %s: the container document names no container", p.uri)
	}
	return nil
}

func (p *selfPoller) get(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("task metadata: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("task metadata: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("task metadata: GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The agent answers errors with a JSON string.
		msg := strings.TrimSpace(string(body))
		var s string
		if json.Unmarshal(body, &s) == nil {
			msg = s
		}
		return fmt.Errorf("task metadata: GET %s: %s: %s", url, resp.Status, msg)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("task metadata: GET %s: %w", url, err)
	}
	return nil
}

// changed: a container is emitted when its status, its health or its
// restart count changes.
func (p *selfPoller) changed(prev Seen, ok bool, next Seen) bool {
	return !ok || prev != next
}

// poll reads the task document and makes an event of every sibling: every
// container of type NORMAL (the task definition's; not the agent's own,
// such as the CNI pause container) but switchyard's. It cannot tell what
// is gone: containers stay in the document until the task ends.
func (p *selfPoller) poll(ctx context.Context, now time.Time) ([]*event, map[string]bool, error) {
	var t metaTask
	if err := p.get(ctx, strings.TrimSuffix(p.uri, "/")+"/task", &t); err != nil {
		return nil, nil, err
	}
	if t.TaskARN == "" {
		return nil, nil, fmt.Errorf("task metadata: the task document has no TaskARN")
	}
	var events []*event
	for i := range t.Containers {
		c := &t.Containers[i]
		if c.Type != "" && c.Type != "NORMAL" || p.isOwn(c) {
			continue
		}
		ev, err := containerEvent(&t, c, now)
		if err != nil {
			return nil, nil, err
		}
		events = append(events, ev)
	}
	return events, nil, nil
}

func (p *selfPoller) isOwn(c *metaContainer) bool {
	if p.own.DockerID != "" && c.DockerID != "" {
		return c.DockerID == p.own.DockerID
	}
	return c.Name == p.own.Name
}

// containerDetail is the detail of an "ECS Container State Change" event,
// named as the containers[] of "ECS Task State Change" events are.
type containerDetail struct {
	ClusterArn        string           `json:"clusterArn"`
	TaskArn           string           `json:"taskArn"`
	TaskDefinitionArn string           `json:"taskDefinitionArn,omitempty"`
	ContainerArn      string           `json:"containerArn,omitempty"`
	Name              string           `json:"name"`
	RuntimeID         string           `json:"runtimeId,omitempty"`
	Image             string           `json:"image,omitempty"`
	LastStatus        string           `json:"lastStatus"`
	DesiredStatus     string           `json:"desiredStatus,omitempty"`
	ExitCode          *int             `json:"exitCode,omitempty"`
	HealthStatus      string           `json:"healthStatus,omitempty"`
	Health            *containerHealth `json:"health,omitempty"`
	RestartCount      *int             `json:"restartCount,omitempty"`
	CreatedAt         string           `json:"createdAt,omitempty"`
	StartedAt         string           `json:"startedAt,omitempty"`
	FinishedAt        string           `json:"finishedAt,omitempty"`
	TaskLastStatus    string           `json:"taskLastStatus,omitempty"`
	TaskDesiredStatus string           `json:"taskDesiredStatus,omitempty"`
	UpdatedAt         string           `json:"updatedAt"`
}

type containerHealth struct {
	Status      string `json:"status"`
	StatusSince string `json:"statusSince,omitempty"`
	ExitCode    *int   `json:"exitCode,omitempty"`
	Output      string `json:"output,omitempty"`
}

// containerEvent builds the "ECS Container State Change" event of c in t.
// Its id is derived from (task ARN, container name, status, health,
// restart count); its time is the container's latest timestamp.
func containerEvent(t *metaTask, c *metaContainer, now time.Time) (*event, error) {
	partition, region, account := arnParts(t.TaskARN)
	cluster := t.Cluster
	if cluster != "" && !strings.HasPrefix(cluster, "arn:") {
		cluster = "arn:" + partition + ":ecs:" + region + ":" + account + ":cluster/" + cluster
	}
	d := containerDetail{
		ClusterArn: cluster, TaskArn: t.TaskARN, ContainerArn: c.ContainerARN, Name: c.Name, RuntimeID: c.DockerID,
		Image: c.Image, LastStatus: c.KnownStatus, DesiredStatus: c.DesiredStatus, ExitCode: c.ExitCode,
		RestartCount: c.RestartCount, CreatedAt: iso(c.CreatedAt), StartedAt: iso(c.StartedAt), FinishedAt: iso(c.FinishedAt),
		TaskLastStatus: t.KnownStatus, TaskDesiredStatus: t.DesiredStatus,
	}
	if t.Family != "" && t.Revision != "" {
		d.TaskDefinitionArn = "arn:" + partition + ":ecs:" + region + ":" + account + ":task-definition/" + t.Family + ":" + t.Revision
	}
	seen := Seen{Status: c.KnownStatus}
	if c.RestartCount != nil {
		seen.Version = int64(*c.RestartCount)
	}
	var updated time.Time
	for _, x := range []*time.Time{c.CreatedAt, c.StartedAt, c.FinishedAt} {
		if x != nil && x.After(updated) {
			updated = *x
		}
	}
	if h := c.Health; h != nil {
		d.HealthStatus = h.Status
		d.Health = &containerHealth{Status: h.Status, StatusSince: iso(h.Since), ExitCode: h.ExitCode, Output: h.Output}
		seen.Health = h.Status
		if h.Since != nil && h.Since.After(updated) {
			updated = *h.Since
		}
	}
	if updated.IsZero() {
		updated = now
	}
	d.UpdatedAt = iso(&updated)

	key := t.TaskARN + "/" + c.Name
	version := strconv.FormatInt(seen.Version, 10)
	id := eventID("ecs-container", t.TaskARN, c.Name, seen.Status, seen.Health, version)
	resource := c.ContainerARN
	if resource == "" {
		resource = t.TaskARN
	}
	body, err := marshal(envelope{
		Version: "0", ID: id, DetailType: DetailTypeContainer, Source: EventSource, Account: account,
		Time: updated.UTC().Format(time.RFC3339), Region: region, Resources: []string{resource}, Detail: d,
	})
	if err != nil {
		return nil, err
	}
	return &event{
		key: key, id: id, seen: seen, json: body, group: key,
		system: map[string]string{"TaskArn": t.TaskARN, "ContainerName": c.Name, "LastStatus": seen.Status, "HealthStatus": seen.Health},
	}, nil
}
