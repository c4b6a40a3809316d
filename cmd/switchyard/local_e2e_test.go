package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/syncbuf"
	httpsink "github.com/switchyard-dev/switchyard/sinks/http"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func postEvents(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, addr+" to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func orderEvent(id, region string) string {
	return fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"Order Placed","source":"shop","account":"123456789012","time":"2026-11-22T10:00:00Z","region":"eu-west-1","resources":[],"detail":{"region":%q}}`, id, region)
}

// HTTP ingest → JetStream target (a stream the NATS source created on the
// embedded server) → NATS source → log: the whole NATS path in one
// daemon, with no AWS.
func TestRun_HTTPIngestThroughEmbeddedNATS(t *testing.T) {
	addr := freeAddr(t)
	d := startDaemon(t, awstest.NewTestServer(t, awstest.Options{}), fmt.Sprintf(`
version: 1
nats: {store_dir: %q, listen: none}
shutdown_grace: 5s
sources:
  - {name: ingest, type: http, listen: %q}
  - {name: audit, type: nats, subject: "audit.>", stream: AUDIT, ack_wait: 5s}
targets:
  - {name: bus, type: nats, subject: "audit.<region>", jetstream: true}
  - {name: out, type: log}
rules:
  - name: orders
    sources: [ingest]
    pattern: {detail-type: [Order Placed]}
    input: {paths: {region: $.detail.region, id: $.id}, template: '{"region": <region>, "order": <id>}'}
    targets: [bus]
  - {name: audited, sources: [audit], pattern: {source: [audit]}, targets: [out]}
`, t.TempDir(), addr))
	waitListening(t, addr)
	status, body := postEvents(t, "http://"+addr+"/events", "["+orderEvent("o-1", "eu")+","+orderEvent("o-2", "us")+"]")
	if status != http.StatusOK {
		t.Fatalf("POST answered %d %s", status, body)
	}
	waitFor(t, "both orders to come back through the stream", func() bool {
		out := d.stdout.String()
		return strings.Contains(out, `"order":"o-1"`) && strings.Contains(out, `"order":"o-2"`)
	})
	if !strings.Contains(d.stdout.String(), `"source":"audit"`) {
		t.Errorf("log:\n%s", d.stdout.String())
	}
}

// With nats.url, the daemon uses an existing server: a core NATS source in
// a queue group feeds a core NATS target.
func TestRun_ExistingNATSServer(t *testing.T) {
	srv := natstest.Run(t)
	nc := srv.Connect()
	sub, err := nc.SubscribeSync("out.>")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	startDaemon(t, awstest.NewTestServer(t, awstest.Options{}), fmt.Sprintf(`
version: 1
nats: {url: %q}
sources: [{name: feed, type: nats, subject: "in.*"}]
targets: [{name: out, type: nats, subject: "out.<switchyard.rule>"}]
rules: [{name: copy, pattern: {source: [feed]}, targets: [out]}]
`, srv.URL()))
	// The daemon subscribes during startup: publish until it answers.
	var got string
	waitFor(t, "a message through the daemon", func() bool {
		nc.Publish("in.x", []byte(`{"hello":"world"}`))
		m, err := sub.NextMsg(100 * time.Millisecond)
		if err == nil {
			got = m.Subject + " " + string(m.Data)
		}
		return err == nil
	})
	if !strings.HasPrefix(got, "out.copy ") || !strings.Contains(got, `"detail":{"hello":"world"}`) || !strings.Contains(got, `"detail-type":"NATS Message"`) {
		t.Fatalf("got %s", got)
	}
}

// NATS that cannot be reached, a taken port, ack: persisted: startup fails
// with the reason.
func TestRun_NATSStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	gone := freeAddr(t)
	for _, tc := range []struct{ name, config, want string }{
		{"unreachable cluster", fmt.Sprintf("nats: {url: 'nats://%s'}\nsources: [{name: b, type: nats, subject: x}]\n", gone), "startup: nats: connect to nats://" + gone},
		{"nats port taken", fmt.Sprintf("nats: {store_dir: %q, listen: %q}\nsources: [{name: b, type: nats, subject: x}]\n", t.TempDir(), taken.Addr()), "startup: nats.listen " + taken.Addr().String()},
		{"http port taken", fmt.Sprintf("sources: [{name: in, type: http, listen: %q}]\n", taken.Addr()), "startup: source in: listen " + taken.Addr().String()},
		// NATS is up when AWS fails: it is shut down (goleak checks).
		{"aws unreachable after nats", fmt.Sprintf("aws: {region: us-east-1, endpoints: {ecs: 'http://%s'}}\nnats: {store_dir: %q, listen: none}\nsources: [{name: tasks, type: ecs, cluster: jobs}]\n", gone, t.TempDir()), "startup: aws.endpoints.ecs: http://" + gone + " is unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "s.yaml")
			os.WriteFile(file, []byte(withStore(t, "version: 1\nadmin: {listen: none}\n"+tc.config+"targets: [{name: l, type: log}]\nrules: [{name: r, pattern: {source: [x]}, targets: [l]}]\n")), 0o644)
			var stderr syncbuf.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, []string{"run", "-c", file}, strings.NewReader(""), &syncbuf.Buffer{}, &stderr)
			if code != exitFail || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// HTTP ingest → HTTP target: the app next to switchyard receives the
// rendered delivery, with its ids and a signature it can verify; a 503
// from it is retried by the policy, and the POST to switchyard is answered
// only once the app has the event.
func TestRun_HTTPIngestToHTTPTarget(t *testing.T) {
	const secret = "app-signing-secret"
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	calls := 0
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got = append(got, r)
		bodies = append(bodies, string(body))
	}))
	defer app.Close()
	t.Setenv("APP_SIGNING_KEY", secret)
	addr := freeAddr(t)
	startDaemon(t, awstest.NewTestServer(t, awstest.Options{}), fmt.Sprintf(`
version: 1
sources: [{name: ingest, type: http, listen: %q}]
targets:
  - {name: app, type: http, url: "%s/orders/<region>", headers: {x-source: switchyard}, sign: {secret: "${APP_SIGNING_KEY}"}, policy: quick}
policies:
  quick: {retry: {attempts: 3, initial: 10ms, max: 50ms}}
rules:
  - name: orders
    pattern: {detail-type: [Order Placed]}
    input: {paths: {region: $.detail.region}, template: '{"region": <region>}'}
    targets: [app]
`, addr, app.URL))
	waitListening(t, addr)
	status, body := postEvents(t, "http://"+addr+"/events", orderEvent("o-9", "eu"))
	if status != http.StatusOK {
		t.Fatalf("POST answered %d %s", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || len(got) != 1 {
		t.Fatalf("app called %d times, delivered %d; want a 503 then the delivery", calls, len(got))
	}
	r := got[0]
	if r.URL.Path != "/orders/eu" || bodies[0] != `{"region": "eu"}` || r.Header.Get("X-Source") != "switchyard" {
		t.Errorf("app got %s %s %q headers %v", r.Method, r.URL.Path, bodies[0], r.Header)
	}
	if r.Header.Get("X-Switchyard-Event-Id") != "o-9" || r.Header.Get("X-Switchyard-Delivery-Id") == "" {
		t.Errorf("ids: %v", r.Header)
	}
	sig := r.Header.Get("X-Switchyard-Signature")
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	n, _ := strconv.ParseInt(ts, 10, 64)
	if want := httpsink.Signature(secret, time.Unix(n, 0), []byte(bodies[0])); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
}

// Credentials written into URLs (a NATS token or password in nats.url, user
// info and query values in an HTTP target's url or an endpoint's) never
// reach the log, /status or `switchyard status`, whether the daemon fails
// to start or runs and fails to deliver: they are shown as xxxxx.
func TestRun_SecretsInURLsNeverShow(t *testing.T) {
	secrets := map[string]string{
		"NATS_TOKEN": "nats-token-123", "NATS_PASSWORD": "nats-pass-123", "HOOK_PASSWORD": "hook-pass-123",
		"HOOK_TOKEN": "hook-token-123", "EP_PASSWORD": "ep-pass-123", "OTLP_PASSWORD": "otlp-pass-123",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	shows := func(t *testing.T, what, text string) {
		t.Helper()
		for _, v := range secrets {
			if strings.Contains(text, v) {
				t.Errorf("%s shows %q:\n%s", what, v, text)
			}
		}
	}

	t.Run("startup failures", func(t *testing.T) {
		gone := freeAddr(t)
		for _, tc := range []struct{ name, config, want string }{
			{"nats token", fmt.Sprintf("nats: {url: 'nats://${NATS_TOKEN}@%s'}\nsources: [{name: b, type: nats, subject: x}]\n", gone), "nats: connect to nats://xxxxx@" + gone},
			{"nats password in a cluster's urls", fmt.Sprintf("nats: {url: 'nats://%s,nats://svc:${NATS_PASSWORD}@%s'}\nsources: [{name: b, type: nats, subject: x}]\n", gone, gone), "nats: connect to nats://" + gone + ",nats://xxxxx@" + gone},
			{"aws endpoint", fmt.Sprintf("aws: {region: us-east-1, endpoints: {ecs: 'http://ep:${EP_PASSWORD}@%s/?key=${HOOK_TOKEN}'}}\nsources: [{name: tasks, type: ecs, cluster: jobs}]\n", gone), "aws.endpoints.ecs: http://xxxxx@" + gone + "/?key=xxxxx is unreachable"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				file := filepath.Join(t.TempDir(), "s.yaml")
				os.WriteFile(file, []byte(withStore(t, "version: 1\nadmin: {listen: none}\n"+tc.config+"targets: [{name: l, type: log}]\nrules: [{name: r, pattern: {source: [x]}, targets: [l]}]\n")), 0o644)
				var stderr syncbuf.Buffer
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				code := run(ctx, []string{"run", "-c", file}, strings.NewReader(""), &syncbuf.Buffer{}, &stderr)
				if code != exitFail || !strings.Contains(stderr.String(), tc.want) {
					t.Errorf("exit %d, stderr:\n%s\nwant %q", code, stderr.String(), tc.want)
				}
				shows(t, "the log", stderr.String())
			})
		}
	})

	t.Run("running", func(t *testing.T) {
		nsrv := natstest.Run(t, func(o *server.Options) { o.Authorization = "nats-token-123" })
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest) // for good: dead-lettered
			fmt.Fprintf(w, "rejected %s", r.RequestURI)
		}))
		defer hook.Close()
		in := freeAddr(t)
		d := startDaemon(t, awstest.NewTestServer(t, awstest.Options{}), fmt.Sprintf(`
version: 1
nats: {url: "nats://${NATS_TOKEN}@%s"}
tracing: {otlp_endpoint: "http://otlp:${OTLP_PASSWORD}@127.0.0.1:1"}
sources: [{name: ingest, type: http, listen: %q}]
targets:
  - {name: hook, type: http, url: "http://hook:${HOOK_PASSWORD}@%s/in?token=${HOOK_TOKEN}", policy: once}
  - {name: bus, type: nats, subject: out}
  - {name: letters, type: log}
policies:
  once: {retry: {attempts: 1}, dead_letter: letters}
rules: [{name: all, pattern: {source: [{prefix: ""}]}, targets: [hook, bus]}]
`, strings.TrimPrefix(nsrv.URL(), "nats://"), in, hook.Listener.Addr()))
		addr := adminAddr(t, d.stderr)
		waitListening(t, in)
		if status, body := postEvents(t, "http://"+in+"/events", orderEvent("o-1", "eu")); status != http.StatusOK {
			t.Fatalf("POST answered %d %s", status, body)
		}
		code, body := get(t, "http://"+addr+"/status")
		if code != http.StatusOK || !strings.Contains(body, "token=xxxxx") {
			t.Errorf("/status: %d, want the hook's last error with its URL redacted:\n%s", code, body)
		}
		shows(t, "/status", body)
		var out, errb strings.Builder
		if code := run(t.Context(), []string{"status", "--addr", addr}, strings.NewReader(""), &out, &errb); code != exitOK {
			t.Fatalf("status exited %d: %s", code, errb.String())
		}
		shows(t, "switchyard status", out.String()+errb.String())
		if code := d.stop(); code != exitOK {
			t.Fatalf("daemon exited %d", code)
		}
		logs := d.stderr.String()
		if !strings.Contains(logs, `"server":"nats://xxxxx@`) || !strings.Contains(logs, "delivery dead-lettered") {
			t.Errorf("the log lacks the redacted NATS server or the dead letter:\n%s", logs)
		}
		shows(t, "the log", logs)
		shows(t, "standard output", d.stdout.String())
	})
}

// max_in_flight_bytes bounds the bodies held at once: while one large
// event is being delivered, another that would take the bytes over is
// answered 429 with Retry-After, unread; once the first is delivered, it
// goes through.
func TestRun_HTTPIngestBoundsBytesInFlight(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			<-release
		}
	}))
	defer app.Close()
	defer close(release)
	addr := freeAddr(t)
	startDaemon(t, awstest.NewTestServer(t, awstest.Options{}), fmt.Sprintf(`
version: 1
max_in_flight_bytes: 1MiB
sources: [{name: ingest, type: http, listen: %q, max_body: 1MiB}]
targets: [{name: app, type: http, url: %q}]
rules: [{name: all, pattern: {source: [{prefix: ""}]}, targets: [app]}]
`, addr, app.URL))
	waitListening(t, addr)
	url := "http://" + addr + "/events"
	big := func(id string) string {
		return strings.Replace(orderEvent(id, "eu"), `"region":"eu"`, `"pad":"`+strings.Repeat("x", 700<<10)+`"`, 1)
	}
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(big("o-1")))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	waitFor(t, "the first event at the app", func() bool { return calls.Load() == 1 })
	resp, err := http.Post(url, "application/json", strings.NewReader(big("o-2")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second POST answered %d (Retry-After %q), want 429 while the first holds the bytes", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	release <- struct{}{}
	if status := <-first; status != http.StatusOK {
		t.Fatalf("first POST answered %d", status)
	}
	if status, body := postEvents(t, url, big("o-2")); status != http.StatusOK {
		t.Fatalf("second POST, retried, answered %d %s", status, body)
	}
}
