// Package config reads switchyard's config file: YAML with ${ENV}
// expansion, decoded strictly into typed structs, defaulted, and validated
// as a whole, reporting every problem at once as file:line:col.
package config

import (
	"maps"
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/internal/backlog"
	"github.com/switchyard-dev/switchyard/internal/bus"
	"github.com/switchyard-dev/switchyard/internal/fleet"
	"github.com/switchyard-dev/switchyard/internal/ledger"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
	ecssource "github.com/switchyard-dev/switchyard/sources/ecs"
	httpsource "github.com/switchyard-dev/switchyard/sources/http"
	natssource "github.com/switchyard-dev/switchyard/sources/nats"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"

	"github.com/switchyard-dev/switchyard/sinks/ecstask"
	"github.com/switchyard-dev/switchyard/sinks/eventbridge"
	httpsink "github.com/switchyard-dev/switchyard/sinks/http"
	kinesissink "github.com/switchyard-dev/switchyard/sinks/kinesis"
	"github.com/switchyard-dev/switchyard/sinks/lambda"
	logsink "github.com/switchyard-dev/switchyard/sinks/log"
	natssink "github.com/switchyard-dev/switchyard/sinks/nats"
	snssink "github.com/switchyard-dev/switchyard/sinks/sns"
	sqssink "github.com/switchyard-dev/switchyard/sinks/sqs"
	"github.com/switchyard-dev/switchyard/sinks/stepfunctions"
)

// Config is a whole config file, decoded, defaulted and validated.
type Config struct {
	// Version is the file format's version; 1 is the only one. Required.
	Version int `yaml:"version"`
	// AWS configures the AWS clients.
	AWS AWS `yaml:"aws"`
	// NATS configures the embedded NATS server or the cluster to join.
	NATS bus.Config `yaml:"nats"`
	// Ledger configures the delivery ledger, on NATS JetStream.
	Ledger ledger.Config `yaml:"ledger"`
	// Fleet configures what instances sharing a NATS cluster share:
	// leases of singleton work, fleet-wide limits.
	Fleet fleet.Config `yaml:"fleet"`
	// Admin configures the admin endpoint.
	Admin Admin `yaml:"admin"`
	// MaxInFlight bounds the source messages being worked on at once; when
	// it is reached, sources stop receiving. Default 1000.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxInFlightBytes bounds the bytes of the bodies of the source
	// messages being worked on at once: when it is reached, sources stop
	// receiving and the HTTP source answers 429. Memory in use is a small
	// multiple of it. At least each HTTP source's max_body. Default 64MiB.
	MaxInFlightBytes size.Bytes `yaml:"max_in_flight_bytes"`
	// ShutdownGrace is how long in-flight work may take to finish after
	// SIGTERM before the rest is nacked. Default 25s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Tracing configures OpenTelemetry spans and their export.
	Tracing telemetry.TracingConfig `yaml:"tracing"`
	// Log configures the daemon's log.
	Log telemetry.LogConfig `yaml:"log"`
	// Sources are where events come from.
	Sources []Source `yaml:"sources"`
	// Targets are where deliveries go.
	Targets []Target `yaml:"targets"`
	// Policies are named delivery policies that targets refer to. A policy
	// named default is used by targets that name none; when the file does
	// not define it, policy.Default() is.
	Policies map[string]*policy.Config `yaml:"policies"`
	// Rules match events and name the targets they go to.
	Rules []Rule `yaml:"rules"`

	// File is the path the config was read from.
	File string `yaml:"-"`
}

// AWS configures the AWS SDK clients.
type AWS struct {
	// Region is the AWS region. Default: the SDK's (AWS_REGION, the
	// profile, or the instance or task metadata).
	Region string `yaml:"region"`
	// Endpoints override the endpoint of each service, for VPC endpoints
	// and tests.
	Endpoints Endpoints `yaml:"endpoints"`
}

// Endpoints are per-service endpoint URLs; empty means the SDK's default.
type Endpoints struct {
	SQS           string `yaml:"sqs"`
	Lambda        string `yaml:"lambda"`
	ECS           string `yaml:"ecs"`
	EventBridge   string `yaml:"eventbridge"`
	StepFunctions string `yaml:"stepfunctions"`
	SNS           string `yaml:"sns"`
	Kinesis       string `yaml:"kinesis"`
}

// Admin configures the admin endpoint (/metrics, /healthz, /readyz,
// /status, POST /reload).
type Admin struct {
	// Listen is its address, or none for no endpoint. Default
	// 127.0.0.1:9090.
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on
	// the admin endpoint, for profiling a running daemon. Default false:
	// they reveal internals and cost CPU while a profile is taken.
	Pprof bool `yaml:"pprof"`
}

// Kind is the configuration of one source or target type: the struct that
// the type's package owns.
type Kind interface {
	// SetDefaults fills zero fields with defaults.
	SetDefaults()
	// Validate checks the fields on their own, returning router.FieldErrors.
	Validate() error
}

// SourceTypes and TargetTypes are the values of `type:` the file accepts.
func SourceTypes() []string { return slices.Sorted(maps.Keys(sourceKinds)) }

// TargetTypes: see SourceTypes.
func TargetTypes() []string { return slices.Sorted(maps.Keys(targetKinds)) }

// sourceKinds and targetKinds map `type:` to a new, empty Kind.
var (
	sourceKinds = map[string]func() Kind{
		"sqs":  func() Kind { return new(sqssource.Config) },
		"http": func() Kind { return new(httpsource.Config) },
		"ecs":  func() Kind { return new(ecssource.Config) },
		"nats": func() Kind { return new(natssource.Config) },
	}
	targetKinds = map[string]func() Kind{
		"lambda":        func() Kind { return new(lambda.Config) },
		"ecs_task":      func() Kind { return new(ecstask.Config) },
		"http":          func() Kind { return new(httpsink.Config) },
		"nats":          func() Kind { return new(natssink.Config) },
		"sqs":           func() Kind { return new(sqssink.Config) },
		"log":           func() Kind { return new(logsink.Config) },
		"sns":           func() Kind { return new(snssink.Config) },
		"kinesis":       func() Kind { return new(kinesissink.Config) },
		"stepfunctions": func() Kind { return new(stepfunctions.Config) },
		"eventbridge":   func() Kind { return new(eventbridge.Config) },
	}
)

// Source is one entry of `sources`.
type Source struct {
	// Name identifies the source in rules, logs and metrics. Required.
	Name string
	// Type is sqs, http, ecs or nats. Required.
	Type string
	// Config is the type's own settings: *sqs.Config for sqs, and so on.
	Config Kind
}

// Target is one entry of `targets`.
type Target struct {
	// Name identifies the target in rules, logs and metrics. Required.
	Name string
	// Type is lambda, ecs_task, stepfunctions, http, nats, sqs, sns, kinesis,
	// eventbridge or log. Required.
	Type string
	// Policy names the delivery policy. Default: default.
	Policy string
	// Backlog is where the target's deliveries go while it cannot take
	// them. Default: none (they wait in memory, holding their messages).
	Backlog *backlog.Config
	// Config is the type's own settings: *lambda.Config for lambda, and so on.
	Config Kind
}

// Rule is one entry of `rules`.
type Rule struct {
	// Name identifies the rule. Required.
	Name string `yaml:"name"`
	// Sources restricts the rule to events from these sources. Default: all.
	Sources []string `yaml:"sources"`
	// Pattern is an EventBridge event pattern, as YAML or as a JSON string.
	// Required.
	Pattern Pattern `yaml:"pattern"`
	// Input transforms the event into each target's payload, as
	// EventBridge's input transformer does. Default: the whole event.
	Input *Input `yaml:"input"`
	// Targets are where matching events go. Required.
	Targets []string `yaml:"targets"`
}

// Pattern is a rule's compiled event pattern.
type Pattern struct {
	*router.Pattern
	// JSON is the pattern as JSON.
	JSON []byte
}

// Input is a rule's input transformer. It is written in switchyard's
// keys (paths and template) or in EventBridge's, as an EventBridge
// target has them (InputPathsMap and InputTemplate, alone or inside
// InputTransformer; InputPath; Input), one spelling and one form at a
// time; each renders as the same transformer in switchyard's keys would.
type Input struct {
	// Paths maps placeholder names to JSON paths into the event.
	Paths map[string]string `yaml:"paths"`
	// Template is the payload with <name> placeholders. Required.
	Template string `yaml:"template"`

	// InputPathsMap is EventBridge's name for paths.
	InputPathsMap map[string]string `yaml:"InputPathsMap"`
	// InputTemplate is EventBridge's name for template.
	InputTemplate string `yaml:"InputTemplate"`
	// InputTransformer holds InputPathsMap and InputTemplate, as an
	// EventBridge target (put-targets, CloudFormation) has them.
	InputTransformer *InputTransformer `yaml:"InputTransformer"`
	// InputPath is a JSON path into the event: the payload is what it
	// finds, as paths {v: PATH} with template <v> render it.
	InputPath string `yaml:"InputPath"`
	// Input is constant JSON text: every payload is it, as written.
	Input string `yaml:"Input"`

	// Transformer is the compiled form.
	Transformer *router.Transformer `yaml:"-"`
}

// InputTransformer is an EventBridge target's InputTransformer.
type InputTransformer struct {
	// InputPathsMap maps placeholder names to JSON paths into the event.
	InputPathsMap map[string]string `yaml:"InputPathsMap"`
	// InputTemplate is the payload with <name> placeholders. Required.
	InputTemplate string `yaml:"InputTemplate"`
}

// setDefaults fills the file-level defaults.
func (c *Config) setDefaults() {
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1000
	}
	if c.MaxInFlightBytes == 0 {
		c.MaxInFlightBytes = 64 * size.MiB
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 25 * time.Second
	}
	if c.NATS.Embedded() && c.NATS.Listen == "" {
		// The embedded server takes NATS clients only when the config has
		// a NATS source or target for them to talk to; state alone (the
		// ledger, backlogs) needs no port.
		c.NATS.Listen = bus.ListenNone
		if c.natsEndpoints() {
			c.NATS.Listen = bus.DefaultListen
		}
	}
	c.NATS.SetDefaults()
	c.Ledger.SetDefaults()
	c.Fleet.SetDefaults()
	c.Tracing.SetDefaults()
	c.Log.SetDefaults()
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:9090"
	}
	for _, s := range c.Sources {
		if s.Config != nil {
			s.Config.SetDefaults()
		}
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Policy == "" {
			t.Policy = "default"
		}
		if t.Backlog != nil {
			t.Backlog.SetDefaults()
			if t.Backlog.MaxWaiting == 0 {
				t.Backlog.MaxWaiting = max(1, c.MaxInFlight/10)
			}
		}
		if t.Config != nil {
			t.Config.SetDefaults()
		}
	}
	if c.Policies == nil {
		c.Policies = map[string]*policy.Config{}
	}
	for name, p := range c.Policies {
		if p == nil { // "name:" with no value: all defaults
			p = &policy.Config{}
			c.Policies[name] = p
		}
		p.SetDefaults()
	}
	if c.Policies["default"] == nil {
		d := policy.Default()
		c.Policies["default"] = &d
	}
}

// Notes are what a valid config means that its author may not expect:
// `validate` prints them, `run` logs them.
func (c *Config) Notes() []string {
	var notes []string
	if !slices.ContainsFunc(c.Targets, func(t Target) bool { return t.Backlog != nil }) {
		notes = append(notes, "no target has a backlog: while a target is down its deliveries wait in memory, holding their messages, "+
			"and a long outage of one target fills max_in_flight and holds back the others (see Backlogs in docs/config.md)")
	}
	if !c.Ledger.On() {
		notes = append(notes, "the ledger is off: a message that comes back is delivered again to every target, and its attempts start over")
	}
	return notes
}

// natsEndpoints reports whether the config has a NATS source or target.
func (c *Config) natsEndpoints() bool {
	return slices.ContainsFunc(c.Sources, func(s Source) bool { return s.Type == "nats" }) ||
		slices.ContainsFunc(c.Targets, func(t Target) bool { return t.Type == "nats" })
}

// RouterRules returns the rules in the form router.NewTable takes.
func (c *Config) RouterRules() []router.Rule {
	rules := make([]router.Rule, len(c.Rules))
	for i, r := range c.Rules {
		rules[i] = router.Rule{Name: r.Name, Sources: r.Sources, Pattern: r.Pattern.Pattern, Targets: r.Targets}
		if r.Input != nil {
			rules[i].Input = r.Input.Transformer
		}
	}
	return rules
}
