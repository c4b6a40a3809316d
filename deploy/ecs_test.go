package deploy

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/config"
)

// taskDefinition is the part of ECS's RegisterTaskDefinition input that
// the deploy files use; decoding is strict, so a misspelt field fails.
type taskDefinition struct {
	Family                  string                `json:"family"`
	NetworkMode             string                `json:"networkMode"`
	RequiresCompatibilities []string              `json:"requiresCompatibilities"`
	RuntimePlatform         map[string]string     `json:"runtimePlatform"`
	CPU                     string                `json:"cpu"`
	Memory                  string                `json:"memory"`
	TaskRoleARN             string                `json:"taskRoleArn"`
	ExecutionRoleARN        string                `json:"executionRoleArn"`
	Volumes                 []volume              `json:"volumes"`
	ContainerDefinitions    []containerDefinition `json:"containerDefinitions"`
}

type containerDefinition struct {
	Name                   string            `json:"name"`
	Image                  string            `json:"image"`
	Essential              *bool             `json:"essential"`
	Command                []string          `json:"command"`
	User                   string            `json:"user"`
	ReadonlyRootFilesystem bool              `json:"readonlyRootFilesystem"`
	Privileged             bool              `json:"privileged"`
	LinuxParameters        *linuxParameters  `json:"linuxParameters"`
	Ulimits                []ulimit          `json:"ulimits"`
	CPU                    int               `json:"cpu"`
	MemoryReservation      int               `json:"memoryReservation"`
	PortMappings           []portMapping     `json:"portMappings"`
	Environment            []nameValue       `json:"environment"`
	Secrets                []secret          `json:"secrets"`
	MountPoints            []mountPoint      `json:"mountPoints"`
	DependsOn              []dependency      `json:"dependsOn"`
	HealthCheck            *healthCheck      `json:"healthCheck"`
	StartTimeout           int               `json:"startTimeout"`
	StopTimeout            int               `json:"stopTimeout"`
	RestartPolicy          *restartPolicy    `json:"restartPolicy"`
	LogConfiguration       *logConfiguration `json:"logConfiguration"`
}

type volume struct {
	Name string `json:"name"`
}

type linuxParameters struct {
	Capabilities struct {
		Drop []string `json:"drop"`
	} `json:"capabilities"`
}

type ulimit struct {
	Name      string `json:"name"`
	SoftLimit int    `json:"softLimit"`
	HardLimit int    `json:"hardLimit"`
}

type portMapping struct {
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

type nameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type secret struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom"`
}

type mountPoint struct {
	SourceVolume  string `json:"sourceVolume"`
	ContainerPath string `json:"containerPath"`
	ReadOnly      bool   `json:"readOnly"`
}

type dependency struct {
	ContainerName string `json:"containerName"`
	Condition     string `json:"condition"`
}

type healthCheck struct {
	Command     []string `json:"command"`
	Interval    int      `json:"interval"`
	Timeout     int      `json:"timeout"`
	Retries     int      `json:"retries"`
	StartPeriod int      `json:"startPeriod"`
}

type restartPolicy struct {
	Enabled              bool  `json:"enabled"`
	IgnoredExitCodes     []int `json:"ignoredExitCodes"`
	RestartAttemptPeriod int   `json:"restartAttemptPeriod"`
}

type logConfiguration struct {
	LogDriver string            `json:"logDriver"`
	Options   map[string]string `json:"options"`
}

// The image's binary, user and data directory (Dockerfile), which the task
// definitions must agree with.
const (
	imageBinary  = "/usr/local/bin/switchyard"
	imageUser    = "65532:65532"
	imageDataDir = "/var/lib/switchyard"
	// minStartPeriod is the least healthCheck startPeriod: startup waits
	// out a dependency's transient outage (trying again with backoff up to
	// 30s), and failed checks within the start period do not count, so two
	// minutes of it at startup do not get the task replaced.
	minStartPeriod = 120
	// fargateMaxStopTimeout is the longest stopTimeout Fargate allows.
	fargateMaxStopTimeout = 120
)

func loadTaskDefinition(t *testing.T, p string) *taskDefinition {
	t.Helper()
	var td taskDefinition
	if err := decodeJSONStrict(readRepoFile(t, p), &td); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return &td
}

func (td *taskDefinition) container(name string) *containerDefinition {
	for i := range td.ContainerDefinitions {
		if td.ContainerDefinitions[i].Name == name {
			return &td.ContainerDefinitions[i]
		}
	}
	return nil
}

func TestTaskDefinitions(t *testing.T) {
	t.Parallel()
	cfn := loadTemplate(t)
	// The JSON files log where a stack of the template named switchyard
	// does.
	logGroup := cfn.defaultLogGroup(t, "switchyard")
	tests := []struct {
		name   string
		file   string
		config string
		// configSource is where SWITCHYARD_CONFIG_YAML comes from, and
		// maxConfig the largest value that source holds.
		configSource string
		maxConfig    int
		containers   []string
	}{
		{"sidecar", sidecarTaskDef, sidecarConfig, "arn:aws:ssm:", 4096, []string{"app", "switchyard"}},
		{"standalone", standaloneTaskDef, ec2Config, "arn:aws:secretsmanager:", 65536, []string{"switchyard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			td := loadTaskDefinition(t, tt.file)
			raw := readRepoFile(t, tt.config)
			cfg := loadConfig(t, tt.config)

			if td.NetworkMode != "awsvpc" || !slices.Contains(td.RequiresCompatibilities, "FARGATE") {
				t.Errorf("networkMode %q, requiresCompatibilities %v: want awsvpc on FARGATE", td.NetworkMode, td.RequiresCompatibilities)
			}
			for _, arn := range []string{td.TaskRoleARN, td.ExecutionRoleARN} {
				if !strings.HasPrefix(arn, "arn:aws:iam::") || !strings.Contains(arn, ":role/") {
					t.Errorf("role %q is not an IAM role ARN", arn)
				}
			}
			var names []string
			for _, c := range td.ContainerDefinitions {
				if slices.Contains(names, c.Name) {
					t.Errorf("container %q defined twice", c.Name)
				}
				names = append(names, c.Name)
			}
			if !slices.Equal(names, tt.containers) {
				t.Errorf("containers %v, want %v", names, tt.containers)
			}
			checkDependencies(t, td)

			sy := td.container("switchyard")
			if sy == nil {
				t.Fatal("no switchyard container")
			}
			// A crashed router stops the task, so that the service replaces
			// it (after the restart policy's in-place restarts).
			if sy.Essential == nil || !*sy.Essential {
				t.Error("switchyard is not essential")
			}
			if sy.RestartPolicy == nil || !sy.RestartPolicy.Enabled || !slices.Equal(sy.RestartPolicy.IgnoredExitCodes, []int{0}) ||
				sy.RestartPolicy.RestartAttemptPeriod < 60 || sy.RestartPolicy.RestartAttemptPeriod > 1800 {
				t.Errorf("restartPolicy %+v: want enabled, exit 0 ignored, a period of 60 to 1800 s", sy.RestartPolicy)
			}
			if !slices.Equal(sy.Command, []string{"run"}) {
				t.Errorf("command %q, want [run]", sy.Command)
			}
			if strings.HasSuffix(sy.Image, ":latest") || !strings.Contains(sy.Image, "switchyard:") {
				t.Errorf("image %q: want a pinned switchyard tag", sy.Image)
			}
			checkHealthCheck(t, sy.HealthCheck, cfg)
			checkStopTimeout(t, "stopTimeout", time.Duration(sy.StopTimeout)*time.Second, cfg.ShutdownGrace)
			if sy.StopTimeout > fargateMaxStopTimeout {
				t.Errorf("stopTimeout %d exceeds Fargate's maximum of %d", sy.StopTimeout, fargateMaxStopTimeout)
			}
			checkHardening(t, sy)
			checkStoreVolume(t, td, sy, cfg)
			checkLogs(t, td, logGroup)

			// The config arrives whole in SWITCHYARD_CONFIG_YAML, and every
			// ${VAR} it names is given to the container.
			var from string
			for _, s := range sy.Secrets {
				if s.Name == "SWITCHYARD_CONFIG_YAML" {
					from = s.ValueFrom
				}
			}
			if !strings.HasPrefix(from, tt.configSource) {
				t.Errorf("SWITCHYARD_CONFIG_YAML from %q, want a secret from %s...", from, tt.configSource)
			}
			if len(raw) > tt.maxConfig {
				t.Errorf("%s is %d bytes; %s holds at most %d", tt.config, len(raw), tt.configSource, tt.maxConfig)
			}
			for _, v := range envRefs(raw) {
				if !hasVar(sy, v) {
					t.Errorf("%s uses ${%s}, which the switchyard container is not given", tt.config, v)
				}
			}
			for _, e := range sy.Environment {
				if !slices.Contains(envRefs(raw), e.Name) {
					t.Errorf("environment %s is not used by %s", e.Name, tt.config)
				}
			}
		})
	}
}

func hasVar(c *containerDefinition, name string) bool {
	for _, e := range c.Environment {
		if e.Name == name {
			return true
		}
	}
	for _, s := range c.Secrets {
		if s.Name == name {
			return true
		}
	}
	return false
}

// checkDependencies checks that dependsOn names containers of the task,
// with valid conditions, without cycles, and that the sidecar's app waits
// for switchyard to be ready (its events have nowhere to go before).
func checkDependencies(t *testing.T, td *taskDefinition) {
	t.Helper()
	essential := 0
	for _, c := range td.ContainerDefinitions {
		if c.Essential == nil || *c.Essential {
			essential++
		}
		for _, d := range c.DependsOn {
			dep := td.container(d.ContainerName)
			switch {
			case dep == nil:
				t.Errorf("%s depends on %q, which is not a container of the task", c.Name, d.ContainerName)
			case d.ContainerName == c.Name:
				t.Errorf("%s depends on itself", c.Name)
			case d.Condition == "HEALTHY" && dep.HealthCheck == nil:
				t.Errorf("%s waits for %s to be HEALTHY, which has no healthCheck", c.Name, dep.Name)
			}
			if !slices.Contains([]string{"START", "COMPLETE", "SUCCESS", "HEALTHY"}, d.Condition) {
				t.Errorf("%s: dependsOn condition %q", c.Name, d.Condition)
			}
		}
	}
	if essential == 0 {
		t.Error("no essential container")
	}
	// No cycles: ECS could start none of them.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string)
	visit = func(name string, path []string) {
		switch state[name] {
		case 1:
			t.Errorf("dependsOn cycle: %s", strings.Join(append(path, name), " → "))
			return
		case 2:
			return
		}
		state[name] = 1
		if c := td.container(name); c != nil {
			for _, d := range c.DependsOn {
				visit(d.ContainerName, append(path, name))
			}
		}
		state[name] = 2
	}
	for _, c := range td.ContainerDefinitions {
		visit(c.Name, nil)
	}
	if app := td.container("app"); app != nil {
		if !slices.Contains(app.DependsOn, dependency{"switchyard", "HEALTHY"}) {
			t.Errorf("app dependsOn %v: want switchyard HEALTHY", app.DependsOn)
		}
		if app.Essential == nil || !*app.Essential {
			t.Error("app is not essential")
		}
	}
}

// checkHealthCheck checks the container health check: `switchyard health`
// (no shell in the image), within ECS's bounds. It asks /healthz, whether
// switchyard has started and works, not /readyz (--ready), whether its
// sources receive now: an outage of SQS must make it not ready, never get
// the task replaced. And it asks where the config's admin.listen says,
// reading the config from SWITCHYARD_CONFIG_YAML as run does, so it needs
// no --addr that could disagree with the config.
func checkHealthCheck(t *testing.T, hc *healthCheck, cfg *config.Config) {
	t.Helper()
	if hc == nil {
		t.Error("switchyard has no healthCheck")
		return
	}
	if want := []string{"CMD", imageBinary, "health"}; !slices.Equal(hc.Command, want) {
		t.Errorf("healthCheck command %q, want %q: liveness, at the config's admin.listen", hc.Command, want)
	}
	if cfg.Admin.Listen == "none" {
		t.Error("admin.listen is none: the health check has nothing to ask")
	}
	if hc.StartPeriod < minStartPeriod {
		t.Errorf("healthCheck startPeriod %d: want at least %d, so that startup can wait out a dependency's outage", hc.StartPeriod, minStartPeriod)
	}
	if hc.Interval < 5 || hc.Interval > 300 || hc.Timeout < 2 || hc.Timeout > 60 || hc.Timeout >= hc.Interval ||
		hc.Retries < 1 || hc.Retries > 10 || hc.StartPeriod < 0 || hc.StartPeriod > 300 {
		t.Errorf("healthCheck %+v: out of ECS's bounds (interval 5-300, timeout 2-60 and below interval, retries 1-10, startPeriod 0-300)", hc)
	}
}

// checkStopTimeout checks that the orchestrator waits long enough after
// SIGTERM for switchyard to drain.
func checkStopTimeout(t *testing.T, what string, stop, grace time.Duration) {
	t.Helper()
	if stop < grace+shutdownMargin {
		t.Errorf("%s %s: want at least shutdown_grace %s + %s", what, stop, grace, shutdownMargin)
	}
}

func checkHardening(t *testing.T, c *containerDefinition) {
	t.Helper()
	if c.User != imageUser {
		t.Errorf("user %q, want %q (the image's nonroot user)", c.User, imageUser)
	}
	uid, gid, _ := strings.Cut(c.User, ":")
	for _, id := range []string{uid, gid} {
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("user %q: want numeric, non-root ids", c.User)
		}
	}
	if !c.ReadonlyRootFilesystem {
		t.Error("the root file system is writable")
	}
	if c.Privileged {
		t.Error("privileged")
	}
	if c.LinuxParameters == nil || !slices.Equal(c.LinuxParameters.Capabilities.Drop, []string{"ALL"}) {
		t.Error("capabilities are not all dropped")
	}
	if !slices.ContainsFunc(c.Ulimits, func(u ulimit) bool { return u.Name == "nofile" && u.SoftLimit >= 65536 }) {
		t.Errorf("ulimits %v: want nofile of at least 65536 (one per connection and JetStream file)", c.Ulimits)
	}
}

// checkStoreVolume checks that the embedded NATS server, when the config
// uses it, can write its store despite the read-only root.
func checkStoreVolume(t *testing.T, td *taskDefinition, c *containerDefinition, cfg *config.Config) {
	t.Helper()
	if cfg.NATS.URL != "" {
		return
	}
	dir := path.Clean(cfg.NATS.StoreDir)
	var m *mountPoint
	for i := range c.MountPoints {
		p := c.MountPoints[i].ContainerPath
		if dir == p || strings.HasPrefix(dir, p+"/") {
			m = &c.MountPoints[i]
		}
	}
	if m == nil {
		t.Errorf("nats.store_dir %s is on no mount point, and the root file system is read-only", dir)
		return
	}
	if m.ReadOnly {
		t.Errorf("mount point %s is read-only", m.ContainerPath)
	}
	if m.ContainerPath != imageDataDir {
		t.Errorf("mount point %s, want the image's volume %s (owned by its user)", m.ContainerPath, imageDataDir)
	}
	if !slices.ContainsFunc(td.Volumes, func(v volume) bool { return v.Name == m.SourceVolume }) {
		t.Errorf("mount point source volume %q is not a volume of the task", m.SourceVolume)
	}
}

func checkLogs(t *testing.T, td *taskDefinition, group string) {
	t.Helper()
	prefixes := map[string]bool{}
	for _, c := range td.ContainerDefinitions {
		lc := c.LogConfiguration
		if lc == nil || lc.LogDriver != "awslogs" {
			t.Errorf("%s: logs not sent to CloudWatch (awslogs)", c.Name)
			continue
		}
		if lc.Options["awslogs-group"] != group {
			t.Errorf("%s: awslogs-group %q, want the CloudFormation log group %q", c.Name, lc.Options["awslogs-group"], group)
		}
		if lc.Options["awslogs-region"] == "" {
			t.Errorf("%s: no awslogs-region", c.Name)
		}
		p := lc.Options["awslogs-stream-prefix"]
		if p == "" || prefixes[p] {
			t.Errorf("%s: awslogs-stream-prefix %q: want one per container (Fargate requires it)", c.Name, p)
		}
		prefixes[p] = true
	}
}
