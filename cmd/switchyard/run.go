package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	awseventbridge "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/backlog"
	"github.com/switchyard-dev/switchyard/internal/bus"
	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/fleet"
	"github.com/switchyard-dev/switchyard/internal/redact"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
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
	ecssource "github.com/switchyard-dev/switchyard/sources/ecs"
	httpsource "github.com/switchyard-dev/switchyard/sources/http"
	natssource "github.com/switchyard-dev/switchyard/sources/nats"
	sqssource "github.com/switchyard-dev/switchyard/sources/sqs"
)

// cmdRun is the daemon: it runs until SIGINT or SIGTERM, then drains
// within shutdown_grace and exits 0.
func cmdRun(ctx context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "run")
	file := fs.String("c", "", configFlagUsage)
	level := fs.String("log-level", "", "log level: debug, info, warn or error (default log.level in the config, then info)")
	format := fs.String("log-format", "", "log format: json or text (default log.format in the config, then text on a terminal, json otherwise)")
	if err := parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	if _, err := newLogger(io.Discard, *level, *format); err != nil {
		return exitUsage, fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := loadConfig(ctx, e, *file)
	if err != nil {
		return exitFail, err
	}
	// The flags win over the config's log block.
	if *level == "" {
		*level = cfg.Log.Level
	}
	if *format == "" {
		*format = cfg.Log.Format
	}
	log, err := newLogger(e.stderr, *level, *format)
	if err != nil {
		return exitUsage, fmt.Errorf("%w: %v", errUsage, err)
	}
	if s, ok := log.Handler().(*telemetry.Summarizer); ok {
		defer s.Close() // the summaries of repeated warnings still pending
	}
	if e.memoryLimit != nil {
		limitMemory(log, e.memoryLimit)
	}
	eng := newEngine(e, log, func(ctx context.Context) (*config.Config, error) { return readConfig(ctx, *file) })
	return eng.run(ctx, cfg)
}

// newLogger is the daemon's logger on w (see telemetry.NewLogger): format
// "" is text when w is a terminal, JSON otherwise.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	if _, err := telemetry.ParseLevel(level); err != nil {
		return nil, fmt.Errorf("invalid -log-level %q (valid: debug, info, warn, error)", level)
	}
	if format != "" && format != "json" && format != "text" {
		return nil, fmt.Errorf("invalid -log-format %q (valid: json, text)", format)
	}
	f, ok := w.(*os.File)
	log, _, err := telemetry.NewLogger(w, level, format, ok && telemetry.IsTerminal(f))
	return log, err
}

// clients are the AWS clients, made when a source or target needs them,
// and NATS, opened when one does.
type clients struct {
	bus         *bus.Bus
	fleet       *fleet.Fleet // with bus
	maxInFlight int
	// shared is whether NATS is a cluster of its own (nats.url), where
	// other instances share the streams and consumers.
	shared bool
	// replicas is how many copies a NATS cluster keeps of delivery state
	// (ledger.replicas).
	replicas int

	awsLoaded        bool // cfg is loaded
	cfg              aws.Config
	endpoints        config.Endpoints
	sqsPoll, sqsSend *awssqs.Client
	lambdaAPI        *awslambda.Client
	ecsAPI           *awsecs.Client
	sfnAPI           *awssfn.Client
	snsAPI           *awssns.Client
	kinesisAPI       *awskinesis.Client
	eventsAPI        *awseventbridge.Client
}

func (c *clients) sqs(poll bool) *awssqs.Client {
	opt := func(o *awssqs.Options) {
		if c.endpoints.SQS != "" {
			o.BaseEndpoint = aws.String(c.endpoints.SQS)
		}
		if !poll {
			o.Retryer = aws.NopRetryer{} // the policy retries deliveries
		}
	}
	if poll {
		if c.sqsPoll == nil {
			c.sqsPoll = awssqs.NewFromConfig(c.cfg, opt)
		}
		return c.sqsPoll
	}
	if c.sqsSend == nil {
		c.sqsSend = awssqs.NewFromConfig(c.cfg, opt)
	}
	return c.sqsSend
}

func (c *clients) lambda() *awslambda.Client {
	if c.lambdaAPI == nil {
		c.lambdaAPI = awslambda.NewFromConfig(c.cfg, func(o *awslambda.Options) {
			if c.endpoints.Lambda != "" {
				o.BaseEndpoint = aws.String(c.endpoints.Lambda)
			}
			o.Retryer = aws.NopRetryer{}
		})
	}
	return c.lambdaAPI
}

func (c *clients) ecs() *awsecs.Client {
	if c.ecsAPI == nil {
		c.ecsAPI = awsecs.NewFromConfig(c.cfg, func(o *awsecs.Options) {
			if c.endpoints.ECS != "" {
				o.BaseEndpoint = aws.String(c.endpoints.ECS)
			}
			o.Retryer = aws.NopRetryer{}
		})
	}
	return c.ecsAPI
}

// sfn is the Step Functions client. With an endpoint of its own
// (aws.endpoints.stepfunctions, or the SDK's AWS_ENDPOINT_URL*), every
// call goes to that endpoint as written: the SDK would send
// StartSyncExecution to sync-<host>, AWS's sync-states endpoint, which a
// VPC endpoint, LocalStack or a test server is not.
func (c *clients) sfn() *awssfn.Client {
	if c.sfnAPI == nil {
		c.sfnAPI = awssfn.NewFromConfig(c.cfg, func(o *awssfn.Options) {
			if c.endpoints.StepFunctions != "" {
				o.BaseEndpoint = aws.String(c.endpoints.StepFunctions)
			}
			if o.BaseEndpoint != nil {
				o.APIOptions = append(o.APIOptions, noHostPrefix)
			}
			o.Retryer = aws.NopRetryer{}
		})
	}
	return c.sfnAPI
}

// noHostPrefix turns off the endpoint host prefixes of a client's calls.
func noHostPrefix(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("SwitchyardNoHostPrefix",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			return next.HandleInitialize(smithyhttp.DisableEndpointHostPrefix(ctx, true), in)
		}), middleware.Before)
}

func (c *clients) sns() *awssns.Client {
	if c.snsAPI == nil {
		c.snsAPI = awssns.NewFromConfig(c.cfg, func(o *awssns.Options) {
			if c.endpoints.SNS != "" {
				o.BaseEndpoint = aws.String(c.endpoints.SNS)
			}
			o.Retryer = aws.NopRetryer{}
		})
	}
	return c.snsAPI
}

func (c *clients) kinesis() *awskinesis.Client {
	if c.kinesisAPI == nil {
		c.kinesisAPI = awskinesis.NewFromConfig(c.cfg, func(o *awskinesis.Options) {
			if c.endpoints.Kinesis != "" {
				o.BaseEndpoint = aws.String(c.endpoints.Kinesis)
			}
			o.Retryer = aws.NopRetryer{}
		})
	}
	return c.kinesisAPI
}

func (c *clients) eventbridge() *awseventbridge.Client {
	if c.eventsAPI == nil {
		c.eventsAPI = awseventbridge.NewFromConfig(c.cfg, func(o *awseventbridge.Options) {
			if c.endpoints.EventBridge != "" {
				o.BaseEndpoint = aws.String(c.endpoints.EventBridge)
			}
			o.Retryer = aws.NopRetryer{}
		})
	}
	return c.eventsAPI
}

// sourceKinds and sinkKinds build each type's source or sink.
var (
	sourceKinds = map[string]func(ctx context.Context, s config.Source, c *clients, log *slog.Logger) (router.Source, error){
		"sqs": func(ctx context.Context, s config.Source, c *clients, log *slog.Logger) (router.Source, error) {
			src := sqssource.New(s.Name, *s.Config.(*sqssource.Config), c.sqs(true), log)
			octx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			return src, src.Open(octx)
		},
		"nats": func(ctx context.Context, s config.Source, c *clients, log *slog.Logger) (router.Source, error) {
			cfg := *s.Config.(*natssource.Config)
			if cfg.JetStream() && cfg.MaxAckPending == 0 {
				cfg.MaxAckPending = c.maxInFlight
			}
			cfg.Shared = c.shared
			octx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			return natssource.Open(octx, s.Name, cfg, c.bus.Conn(), c.bus.JetStream(), log)
		},
		"ecs": func(ctx context.Context, s config.Source, c *clients, log *slog.Logger) (router.Source, error) {
			cfg := *s.Config.(*ecssource.Config)
			octx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			// What was emitted is kept in NATS KV; a watched task's
			// containers are forgotten a week after they last changed.
			var ttl time.Duration
			if cfg.Task == "self" {
				ttl = 7 * 24 * time.Hour
			}
			state, err := ecssource.OpenKVState(octx, c.bus.JetStream(), ecssource.BucketFor(s.Name), ttl, c.replicas)
			if err != nil {
				return nil, fmt.Errorf("ecs source %s: %w", s.Name, err)
			}
			opts := ecssource.Options{State: state, Logger: log}
			if cfg.Cluster != "" {
				opts.API = c.ecs()
				// One instance of a fleet polls each source's cluster.
				opts.Leader = c.fleet.Lease("ecs:" + s.Name)
			}
			src, err := ecssource.New(s.Name, cfg, opts)
			if err != nil {
				return nil, err
			}
			return src, src.Open(octx)
		},
		"http": func(ctx context.Context, s config.Source, c *clients, log *slog.Logger) (router.Source, error) {
			cfg := *s.Config.(*httpsource.Config)
			cfg.MaxInFlight, cfg.Shared = c.maxInFlight, c.shared
			var js jetstream.JetStream
			if c.bus != nil {
				js = c.bus.JetStream()
			}
			octx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			src, err := httpsource.Open(octx, s.Name, cfg, js, log)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return src, nil
		},
	}
	sinkKinds = map[string]func(t config.Target, c *clients, e *env) (router.Sink, error){
		"lambda": func(t config.Target, c *clients, _ *env) (router.Sink, error) {
			return lambda.New(t.Name, *t.Config.(*lambda.Config), c.lambda()), nil
		},
		"ecs_task": func(t config.Target, c *clients, _ *env) (router.Sink, error) {
			return ecstask.New(t.Name, *t.Config.(*ecstask.Config), c.ecs()), nil
		},
		"sqs": func(t config.Target, c *clients, _ *env) (router.Sink, error) {
			return sqssink.New(t.Name, *t.Config.(*sqssink.Config), c.sqs(false)), nil
		},
		"stepfunctions": func(t config.Target, c *clients, _ *env) (router.Sink, error) {
			return stepfunctions.New(t.Name, *t.Config.(*stepfunctions.Config), c.sfn()), nil
		},
		"log": func(t config.Target, _ *clients, e *env) (router.Sink, error) {
			return logsink.New(t.Name, logsink.Config{}, e.stdout), nil
		},
		"nats": func(t config.Target, c *clients, _ *env) (router.Sink, error) {
			return natssink.New(t.Name, *t.Config.(*natssink.Config), c.bus.Conn(), c.bus.JetStream()), nil
		},
		"sns": func(t config.Target, c *clients, _ *env) (router.Sink, error) {
			return snssink.New(t.Name, *t.Config.(*snssink.Config), c.sns()), nil
		},
		"kinesis": func(t config.Target, c *clients, _ *env) (router.Sink, error) {
			return kinesissink.New(t.Name, *t.Config.(*kinesissink.Config), c.kinesis()), nil
		},
		"eventbridge": func(t config.Target, c *clients, _ *env) (router.Sink, error) {
			return eventbridge.New(t.Name, *t.Config.(*eventbridge.Config), c.eventbridge()), nil
		},
		"http": func(t config.Target, _ *clients, _ *env) (router.Sink, error) {
			s, err := httpsink.New(t.Name, *t.Config.(*httpsink.Config))
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return s, nil
		},
	}
	// awsKinds are the types that call AWS.
	awsKinds = []string{"sqs", "lambda", "ecs_task", "sns", "kinesis", "stepfunctions", "eventbridge"}
)

// needsNATS reports whether a source or target uses NATS: NATS sources and
// targets, HTTP sources that persist to JetStream, and ECS sources (their
// state is kept in NATS KV).
func needsNATS(cfg *config.Config) bool {
	if cfg.Ledger.On() {
		return true
	}
	for _, p := range cfg.Policies {
		if p.Scope == policy.ScopeFleet {
			return true
		}
	}
	for _, t := range cfg.Targets {
		if t.Backlog != nil && t.Backlog.Type == backlog.TypeJetStream {
			return true
		}
	}
	for _, s := range cfg.Sources {
		switch c := s.Config.(type) {
		case *natssource.Config, *ecssource.Config:
			return true
		case *httpsource.Config:
			if c.Ack == httpsource.AckPersisted {
				return true
			}
		}
	}
	for _, t := range cfg.Targets {
		if t.Type == "nats" {
			return true
		}
	}
	return false
}

func needsAWS(cfg *config.Config) bool {
	for _, s := range cfg.Sources {
		if slices.Contains(awsKinds, s.Type) {
			return true
		}
		// An ECS source polls the ECS API in cluster mode; with task: self
		// it reads only the task metadata endpoint.
		if c, ok := s.Config.(*ecssource.Config); ok && c.Cluster != "" {
			return true
		}
	}
	for _, t := range cfg.Targets {
		if slices.Contains(awsKinds, t.Type) || t.Backlog != nil && t.Backlog.Type == backlog.TypeSQS {
			return true
		}
	}
	return false
}

// checkEndpoints fails when configured endpoints cannot be reached, naming
// each of them (startup tries again when each failure may pass:
// unreachableForNow).
func checkEndpoints(ctx context.Context, ep config.Endpoints) error {
	var errs []error
	for _, e := range []struct{ name, url string }{{"sqs", ep.SQS}, {"lambda", ep.Lambda}, {"ecs", ep.ECS}, {"eventbridge", ep.EventBridge},
		{"stepfunctions", ep.StepFunctions}, {"sns", ep.SNS}, {"kinesis", ep.Kinesis}} {
		name, u := e.name, e.url
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil {
			// url.Error quotes the URL whole: keep only what is wrong.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			errs = append(errs, fmt.Errorf("aws.endpoints.%s: %s: %w", name, redact.URL(u), err))
			continue
		}
		host := p.Host
		if p.Port() == "" {
			port := "443"
			if p.Scheme == "http" {
				port = "80"
			}
			host = net.JoinHostPort(p.Hostname(), port)
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", host)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("aws.endpoints.%s: %s is unreachable: %w", name, redact.URL(u), err))
			continue
		}
		conn.Close()
	}
	return errors.Join(errs...)
}

func closeAll(closers []any, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Last made, first closed: sources before the sinks they feed, and
	// NATS after everything that uses it.
	for _, c := range slices.Backward(closers) {
		if cl, ok := c.(router.Closer); ok {
			if err := cl.Close(ctx); err != nil {
				log.Warn("close failed", "error", err)
			}
		}
	}
}
