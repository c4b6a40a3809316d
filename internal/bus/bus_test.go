package bus

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/kindtest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

func open(t *testing.T, cfg Config, log *slog.Logger) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

// The embedded server has JetStream on the store dir, and keeps streams
// across a restart of switchyard.
func TestEmbedded_JetStreamPersists(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{StoreDir: dir, Listen: ListenNone}
	ctx := context.Background()

	b, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.srv.Addr() != nil {
		t.Errorf("listen: none, but the server listens on %v", b.srv.Addr())
	}
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JetStream().Publish(ctx, "keep.one", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	b = open(t, cfg, nil)
	st, err := b.JetStream().Stream(ctx, "KEEP")
	if err != nil {
		t.Fatalf("stream gone after restart: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages after restart, want 1", info.State.Msgs)
	}
}

// With a listen address, other clients (nats CLI, the app container)
// reach the embedded server.
func TestEmbedded_Listens(t *testing.T) {
	b := open(t, Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}, nil)
	url := b.srv.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ClientURL %q", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("hello")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	if err := b.Conn().Publish("hello", []byte("world")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "world" {
		t.Fatalf("got %v, %v", m, err)
	}
}

// A taken port fails at once, and says what to do.
func TestEmbedded_PortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Open(context.Background(), Config{StoreDir: t.TempDir(), Listen: ln.Addr().String()}, nil)
	if err == nil || !strings.Contains(err.Error(), "nats.listen "+ln.Addr().String()) || !strings.Contains(err.Error(), "nats.url") {
		t.Fatalf("err = %v", err)
	}
}

// A store dir that cannot be created fails at once.
func TestEmbedded_BadStoreDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := writeFile(file); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{StoreDir: filepath.Join(file, "nats"), Listen: ListenNone}, nil)
	if err == nil || !strings.Contains(err.Error(), "nats.store_dir") {
		t.Fatalf("err = %v", err)
	}
}

// With nats.url, switchyard joins the cluster; when the server goes away
// and comes back, the connection is re-established and both are logged.
func TestCluster_ReconnectsAndLogs(t *testing.T) {
	srv := natstest.Run(t)
	var logs syncbuf.Buffer
	b := open(t, Config{URL: srv.URL()}, slog.New(slog.NewTextHandler(&logs, nil)))
	if b.srv != nil || b.nc.ConnectedUrl() != srv.URL() {
		t.Errorf("connected to %q (embedded server %v), want %q", b.nc.ConnectedUrl(), b.srv != nil, srv.URL())
	}
	if !strings.Contains(logs.String(), "connected to NATS") {
		t.Errorf("log: %s", logs.String())
	}
	srv.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logs.String(), "reconnected to NATS") {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect logged: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "disconnected from NATS") {
		t.Errorf("no disconnect logged: %s", logs.String())
	}
	if err := b.Conn().Publish("after", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Conn().FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// An unreachable cluster fails Open with the URL in the error.
func TestCluster_Unreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Open(ctx, Config{URL: url}, nil)
	if err == nil || !strings.Contains(err.Error(), "nats: connect to "+url) {
		t.Fatalf("err = %v", err)
	}
}

// Missing credential files are named.
func TestCluster_MissingCredentials(t *testing.T) {
	srv := natstest.Run(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: srv.URL(), Credentials: "/nonexistent/user.creds"}, "nats.credentials"},
		{Config{URL: srv.URL(), NKey: "/nonexistent/seed.nk"}, "nats.nkey"},
		{Config{URL: srv.URL(), TLS: TLS{CAFile: "/nonexistent/ca.pem"}}, "nats.tls.ca_file"},
	} {
		_, err := Open(context.Background(), tc.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want it to name %s", tc.cfg, err, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	kindtest.Check(t, Config{}, "")
	kindtest.Check(t, Config{Listen: "none"}, "")
	kindtest.Check(t, Config{Listen: "4222"}, "listen: want host:port")
	kindtest.Check(t, Config{Listen: "0.0.0.0:4222"}, "listen: the embedded server has no authentication")
	kindtest.Check(t, Config{Listen: "10.0.0.5:4222"}, "listen: the embedded server has no authentication")
	kindtest.Check(t, Config{Listen: "[::1]:4222"}, "")
	kindtest.Check(t, Config{Listen: "localhost:4222"}, "")
	kindtest.Check(t, Config{URL: "nats://a:4222, nats://b:4222"}, "")
	kindtest.Check(t, Config{URL: "http://a:4222"}, "url: want nats://")
	kindtest.Check(t, Config{URL: "nats://a:4222", Listen: "127.0.0.1:4222"}, "listen: only used by the embedded server")
	kindtest.Check(t, Config{Token: "x"}, "token: only used with nats.url")
	kindtest.Check(t, Config{URL: "nats://a", User: "u"}, "password: user and password go together")
	kindtest.Check(t, Config{URL: "nats://a", User: "u", Password: "p", Token: "t"}, "give one of")
	kindtest.Check(t, Config{URL: "nats://a", TLS: TLS{KeyFile: "k"}}, "tls: cert_file and key_file go together")
}

func writeFile(path string) error { return os.WriteFile(path, []byte("x"), 0o600) }

// Credentials rotated on the server before they are on the client: the
// connection keeps retrying through the auth errors, and is back once the
// credentials match again.
func TestCluster_RetriesThroughAuthErrors(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) { o.Username, o.Password = "switchyard", "old" })
	var logs syncbuf.Buffer
	b := open(t, Config{URL: srv.URL(), User: "switchyard", Password: "old"}, slog.New(slog.NewTextHandler(&logs, nil)))
	srv.Reload(func(o *server.Options) { o.Password = "new" })
	waitLog(t, &logs, "disconnected from NATS")
	time.Sleep(3 * time.Second) // several failed reconnects
	if b.Conn().IsClosed() {
		t.Fatal("the connection gave up after auth errors")
	}
	srv.Reload(func(o *server.Options) { o.Password = "old" })
	waitLog(t, &logs, "reconnected to NATS")
	if strings.Contains(logs.String(), "closed for good") {
		t.Errorf("log: %s", logs.String())
	}
}

func waitLog(t *testing.T, logs *syncbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log: %s", want, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
