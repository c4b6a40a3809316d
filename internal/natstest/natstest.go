// Package natstest runs a real nats-server with JetStream for tests, on a
// loopback port and a temporary store, and can restart it in place; or a
// cluster of them (RunCluster).
package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is a running test server.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// Run starts a server with JetStream; it stops when the test ends. mods
// change its options before it starts (users, limits).
func Run(t testing.TB, mods ...func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		ServerName: "test",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}}
	for _, m := range mods {
		m(&s.opts)
	}
	s.run()
	return s
}

// run starts the server for the first time, pins its client port for
// restarts and stops it when the test ends.
func (s *Server) run() {
	s.t.Helper()
	s.start()
	// Restarts keep the port, so clients reconnect to the same URL.
	_, port, _ := net.SplitHostPort(s.srv.Addr().String())
	s.opts.Port, _ = strconv.Atoi(port)
	s.t.Cleanup(s.Stop)
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats server did not start")
	}
	s.srv = srv
}

// URL is the client URL.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Stop shuts the server down; it is idempotent.
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Reload changes the running server's options, as a config reload does.
func (s *Server) Reload(mod func(*server.Options)) {
	s.t.Helper()
	mod(&s.opts)
	opts := s.opts
	if err := s.srv.ReloadOptions(&opts); err != nil {
		s.t.Fatalf("nats server reload: %v", err)
	}
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Connect returns a client connection closed when the test ends.
func (s *Server) Connect() *nats.Conn {
	s.t.Helper()
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection.
func (s *Server) JetStream() jetstream.JetStream {
	s.t.Helper()
	js, err := jetstream.New(s.Connect())
	if err != nil {
		s.t.Fatal(err)
	}
	return js
}
