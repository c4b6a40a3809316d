// Package bus is switchyard's NATS: an embedded nats-server with JetStream
// when no cluster is configured, or a connection to an existing cluster.
// Sources, targets and stores that need NATS share one Bus.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/redact"
)

// Bus is an open NATS connection, and the embedded server behind it if
// there is one.
type Bus struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	srv     *server.Server
	log     *slog.Logger
	closing atomic.Bool
}

// Open starts the embedded server (cfg.URL empty) or connects to the
// cluster. A cluster that cannot be reached fails Open; once connected,
// lost connections (auth errors included) are retried for ever, and
// logged.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "nats")
	b := &Bus{log: log}
	opts := []nats.Option{
		nats.Name(connName()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// Retry through auth errors too (a rotated password, an expired
		// JWT being renewed): the client otherwise gives up on the second.
		nats.IgnoreAuthErrorAbort(),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if !b.closing.Load() {
				log.Error("NATS connection closed for good: NATS sources and targets fail until switchyard restarts", "error", nc.LastError())
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", redact.URL(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("NATS subscription error", "subject", sub.Subject, "error", err)
				return
			}
			log.Warn("NATS error", "error", err)
		}),
	}
	url := cfg.URL
	if cfg.Embedded() {
		srv, err := startServer(cfg, log)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		url = srv.ClientURL()
		opts = append(opts, nats.InProcessServer(srv))
	} else {
		auth, err := authOptions(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, auth...)
	}
	nc, err := connect(ctx, url, opts)
	if err != nil {
		b.shutdownServer()
		if cfg.Embedded() {
			return nil, fmt.Errorf("nats: connect to the embedded server: %w", err)
		}
		return nil, fmt.Errorf("nats: connect to %s: %w", redact.URLs(cfg.URL), err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close(ctx)
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	b.js = js
	if b.srv != nil {
		log.Info("embedded NATS server started", "store_dir", cfg.StoreDir, "listen", listenAddr(b.srv, cfg))
	} else {
		log.Info("connected to NATS", "server", redact.URL(nc.ConnectedUrl()))
	}
	return b, nil
}

// connect dials, giving up when ctx ends.
func connect(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(max(time.Until(dl), time.Millisecond)))
	}
	return nats.Connect(url, opts...)
}

func connName() string {
	host, _ := os.Hostname()
	if host == "" {
		return "switchyard"
	}
	return "switchyard@" + host
}

// startServer starts an embedded server with JetStream on cfg.StoreDir.
func startServer(cfg Config, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "switchyard",
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoLog:      true,
		NoSigs:     true,
		// The HTTP monitoring port and clustering stay off.
		HTTPPort: 0,
	}
	if cfg.Listen == ListenNone {
		opts.DontListen = true
	} else {
		host, portStr, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats.listen %q: %w", cfg.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("nats.listen %q: bad port", cfg.Listen)
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, port
		// Fail before starting when the port is taken: the server itself
		// would only log it.
		if port != server.RANDOM_PORT {
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return nil, fmt.Errorf("nats.listen %s: %w (another NATS server? set nats.listen to a free port, to none, or nats.url to join it)", cfg.Listen, err)
			}
			ln.Close()
		}
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("nats.store_dir: %w", err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	fatal := make(chan string, 1)
	srv.SetLoggerV2(serverLogger{log, fatal}, false, false, false)
	srv.Start()
	for deadline := time.Now().Add(30 * time.Second); !srv.ReadyForConnections(100 * time.Millisecond); {
		var why string
		select {
		case why = <-fatal:
		default:
			if time.Now().After(deadline) {
				why = "it did not start within 30s"
			}
		}
		if why != "" {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("nats: embedded server: %s", why)
		}
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("nats: the embedded server could not enable JetStream on %s (see the log above)", cfg.StoreDir)
	}
	return srv, nil
}

func listenAddr(srv *server.Server, cfg Config) string {
	if cfg.Listen == ListenNone {
		return "in-process only"
	}
	if addr := srv.Addr(); addr != nil {
		return addr.String()
	}
	return cfg.Listen
}

// authOptions turns the credentials and TLS settings into nats.go options.
func authOptions(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.Credentials != "":
		if _, err := os.Stat(cfg.Credentials); err != nil {
			return nil, fmt.Errorf("nats.credentials: %w", err)
		}
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	case cfg.NKey != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey: %w", err)
		}
		opts = append(opts, o)
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLS.CAFile != "" {
		if _, err := os.Stat(cfg.TLS.CAFile); err != nil {
			return nil, fmt.Errorf("nats.tls.ca_file: %w", err)
		}
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	return opts, nil
}

// Conn is the NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream context on the connection.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Close flushes what was published and closes the connection within ctx,
// then shuts the embedded server down.
func (b *Bus) Close(ctx context.Context) error {
	b.closing.Store(true)
	var err error
	if b.nc != nil && !b.nc.IsClosed() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
		}
		// A connection that is down has nothing to flush to: what it
		// buffered is lost either way, and waiting would only hold the
		// shutdown up.
		if !b.nc.IsConnected() {
			b.log.Warn("closing while disconnected from NATS: publishes buffered since are dropped")
		} else if ferr := b.nc.FlushWithContext(ctx); ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("nats: flush: %w", ferr)
		}
		b.nc.Close()
	}
	b.shutdownServer()
	return err
}

func (b *Bus) shutdownServer() {
	if b.srv == nil {
		return
	}
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
	b.log.Info("embedded NATS server stopped")
}

// serverLogger sends the embedded server's log to slog: notices at debug
// level (they narrate the start), warnings and errors as they are. The
// first fatal error also goes to fatal, which startServer watches.
type serverLogger struct {
	log   *slog.Logger
	fatal chan string
}

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
func (l serverLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any) {}
