package http

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/kindtest"
	"github.com/switchyard-dev/switchyard/internal/natstest"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

const ebEvent = `{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"Order Placed","source":"shop","account":"111122223333","time":"2026-11-22T10:00:00Z","region":"eu-west-1","resources":[],"detail":{"order":1}}`

func openSource(t *testing.T, cfg Config, srv *natstest.Server) *Source {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var js jetstream.JetStream
	if srv != nil {
		js = srv.JetStream()
	}
	s, err := Open(context.Background(), "ingest", cfg, js, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// router plays the dispatcher: it receives and settles each message with
// settle, and records what it received.
type fakeRouter struct {
	mu   sync.Mutex
	got  []*router.Message
	stop context.CancelFunc
	done chan struct{}
}

func route(t *testing.T, s *Source, settle func(*router.Message)) *fakeRouter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &fakeRouter{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			ms, _ := s.Receive(ctx, 10)
			for _, m := range ms {
				r.mu.Lock()
				r.got = append(r.got, m)
				r.mu.Unlock()
				settle(m)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *fakeRouter) messages() []*router.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*router.Message(nil), r.got...)
}

func ack(m *router.Message) { m.Handle.Ack(context.Background()) }

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, s *Source, body string, mod func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr().String()+s.cfg.Path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if mod != nil {
		mod(req)
	}
	return do(t, http.DefaultClient, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// One EventBridge event: it reaches the router as it is, and the POST is
// answered 200 once its deliveries are acked.
func TestDeliveredOneEvent(t *testing.T) {
	s := openSource(t, Config{}, nil)
	r := route(t, s, ack)
	a := post(t, s, ebEvent, nil)
	if a.status != http.StatusOK || a.body["accepted"] != 1.0 {
		t.Fatalf("answer %d %v", a.status, a.body)
	}
	ms := r.messages()
	if len(ms) != 1 || ms[0].Event.ID != "6a7e8feb-b491-4cf7-a9f1-bf3703467718" || ms[0].Event.DetailType != "Order Placed" {
		t.Fatalf("router got %v", ms)
	}
	if ids := a.body["ids"].([]any); ids[0] != ms[0].Event.ID {
		t.Errorf("answer ids %v", ids)
	}
	if n := s.Stats().Accepted.Load(); n != 1 {
		t.Errorf("accepted %d", n)
	}
}

// An array of events, and JSON that is not an EventBridge event (wrapped
// with the auto envelope).
func TestDeliveredArrayAndWrapped(t *testing.T) {
	s := openSource(t, Config{}, nil)
	r := route(t, s, ack)
	a := post(t, s, `[`+ebEvent+`, {"hello": "world"}, {"n": 3}]`, nil)
	if a.status != http.StatusOK || a.body["accepted"] != 3.0 {
		t.Fatalf("answer %d %v", a.status, a.body)
	}
	ms := r.messages()
	if len(ms) != 3 {
		t.Fatalf("router got %d messages", len(ms))
	}
	wrapped := ms[1].Event
	if wrapped.DetailType != "HTTP Event" || wrapped.Source != "ingest" || len(wrapped.ID) != 36 {
		t.Errorf("wrapped event %+v", wrapped)
	}
	if ms[1].Event.ID == ms[2].Event.ID {
		t.Errorf("two wrapped events share id %s", ms[1].Event.ID)
	}
	if st := s.Stats(); st.Accepted.Load() != 1 || st.Events.Load() != 3 || st.Requests.Load() != 1 {
		t.Errorf("stats: %d requests, %d accepted, %d events; want 1 request, accepted, with 3 events", st.Requests.Load(), st.Accepted.Load(), st.Events.Load())
	}
}

// A nacked event fails its POST with 503 and the nack's delay as
// Retry-After, so that the caller (EventBridge) sends it again.
func TestDeliveredNackIs503(t *testing.T) {
	s := openSource(t, Config{}, nil)
	route(t, s, func(m *router.Message) {
		if m.Event.DetailType == "HTTP Event" {
			m.Handle.Nack(context.Background(), 7*time.Second)
			return
		}
		ack(m)
	})
	a := post(t, s, `[`+ebEvent+`, {"fails": true}]`, nil)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "7" {
		t.Fatalf("answer %d Retry-After %q %v", a.status, a.header.Get("Retry-After"), a.body)
	}
	if !strings.Contains(a.body["error"].(string), "1 of 2 events could not be delivered") {
		t.Errorf("error %v", a.body["error"])
	}
	if s.Stats().Unavailable.Load() != 1 || s.Stats().Accepted.Load() != 0 {
		t.Errorf("stats: unavailable %d accepted %d", s.Stats().Unavailable.Load(), s.Stats().Accepted.Load())
	}
}

// When the router takes nothing (its in-flight budget is full), a POST is
// answered 429 with Retry-After, quickly, and nothing waits in memory.
func TestDeliveredBackpressureIs429(t *testing.T) {
	s := openSource(t, Config{}, nil)
	start := time.Now()
	a := post(t, s, ebEvent, nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" {
		t.Fatalf("answer %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("429 took %s", d)
	}
	if s.Stats().Throttled.Load() != 1 {
		t.Errorf("throttled %d", s.Stats().Throttled.Load())
	}
	// Once the router takes events again, the retry goes through.
	route(t, s, ack)
	if a := post(t, s, ebEvent, nil); a.status != http.StatusOK {
		t.Fatalf("retry answered %d", a.status)
	}
}

// Deliveries that outlast response_timeout are answered 503; they go on.
func TestDeliveredResponseTimeout(t *testing.T) {
	s := openSource(t, Config{ResponseTimeout: 200 * time.Millisecond}, nil)
	held := make(chan *router.Message, 1)
	route(t, s, func(m *router.Message) { held <- m })
	a := post(t, s, ebEvent, nil)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body["error"].(string), "response_timeout") {
		t.Fatalf("answer %d %v", a.status, a.body)
	}
	ack(<-held) // late: harmless
}

// After Drain, new POSTs are turned away at once with 503.
func TestDrain(t *testing.T) {
	s := openSource(t, Config{}, nil)
	s.Drain()
	a := post(t, s, ebEvent, nil)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Fatalf("answer %d", a.status)
	}
}

// Every bad request gets a precise 4xx, is counted, and reaches nothing.
func TestBadRequests(t *testing.T) {
	s := openSource(t, Config{MaxBody: 2 * size.KiB, Envelope: router.EnvelopeEventBridge}, nil)
	r := route(t, s, ack)
	url := "http://" + s.Addr().String()
	for _, tc := range []struct {
		name   string
		method string
		path   string
		ctype  string
		body   string
		status int
		want   string
	}{
		{"get", http.MethodGet, "/events", "application/json", "", 405, "method GET not allowed"},
		{"put", http.MethodPut, "/events", "application/json", ebEvent, 405, "POST events"},
		{"path", http.MethodPost, "/other", "application/json", ebEvent, 404, "events are posted to /events"},
		{"type", http.MethodPost, "/events", "text/plain", ebEvent, 415, "want application/json"},
		{"no type", http.MethodPost, "/events", "", ebEvent, 415, "want application/json"},
		{"empty", http.MethodPost, "/events", "application/json", " ", 400, "empty body"},
		{"malformed", http.MethodPost, "/events", "application/json", `{"id": }`, 400, "malformed JSON"},
		{"truncated", http.MethodPost, "/events", "application/json", `[` + ebEvent, 400, "malformed JSON"},
		{"scalar", http.MethodPost, "/events", "application/json", `42`, 400, "must be a JSON object"},
		{"empty array", http.MethodPost, "/events", "application/json", `[]`, 400, "no events"},
		{"array of scalars", http.MethodPost, "/events", "application/json", `[` + ebEvent + `, 1]`, 400, "event [1] is not a JSON object"},
		{"not eventbridge", http.MethodPost, "/events", "application/json", `[` + ebEvent + `, {"a":1}]`, 400, "event [1]: malformed message: not an EventBridge event"},
		{"too large", http.MethodPost, "/events", "application/json", `{"pad":"` + strings.Repeat("x", 3000) + `"}`, 413, "max_body (2KiB)"},
		// JSON is UTF-8 (RFC 8259): SQS, EventBridge and most parsers
		// refuse or replace other bytes.
		{"invalid UTF-8", http.MethodPost, "/events", "application/json", strings.Replace(ebEvent, `"order":1`, "\"order\":\"caf\xe9\"", 1), 400, "invalid UTF-8 in string"},
		// A key twice would be matched by its first value and read by most
		// targets by its last.
		{"duplicate key", http.MethodPost, "/events", "application/json", strings.Replace(ebEvent, `"order":1`, `"amount":1,"amount":1000000`, 1), 400, "duplicate key $.detail.amount"},
		{"duplicate key in an array", http.MethodPost, "/events", "application/json", `[` + ebEvent + `,{"a":{"b":[{"c":1,"c":2}]}}]`, 400, "duplicate key $[1].a.b[0].c"},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		a := do(t, http.DefaultClient, req)
		if a.status != tc.status || !strings.Contains(fmt.Sprint(a.body["error"]), tc.want) {
			t.Errorf("%s: answer %d %v, want %d %q", tc.name, a.status, a.body, tc.status, tc.want)
		}
		if tc.status == 405 && a.header.Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", tc.name, a.header.Get("Allow"))
		}
	}
	st := s.Stats()
	for name, got := range map[string]int64{
		"wrong method": st.WrongMethod.Load(), "not found": st.NotFound.Load(), "wrong type": st.WrongType.Load(),
		"bad request": st.BadRequest.Load(), "too large": st.TooLarge.Load(), "accepted": st.Accepted.Load(),
	} {
		want := map[string]int64{"wrong method": 2, "not found": 1, "wrong type": 2, "bad request": 10, "too large": 1, "accepted": 0}[name]
		if got != want {
			t.Errorf("%s: counted %d, want %d", name, got, want)
		}
	}
	if st.Requests.Load() != 16 {
		t.Errorf("requests %d", st.Requests.Load())
	}
	if n := len(r.messages()); n != 0 {
		t.Errorf("bad requests put %d events through", n)
	}
}

// API keys: any of the configured keys is accepted, in the configured
// header; a missing or wrong key is 401.
func TestAPIKey(t *testing.T) {
	s := openSource(t, Config{Auth: Auth{Type: "api_key", Header: "x-ingest-key", Keys: []string{"old-key-1", "new-key-22"}}}, nil)
	route(t, s, ack)
	for key, want := range map[string]int{"": 401, "wrong": 401, "old-key-": 401, "old-key-1": 200, "new-key-22": 200, "new-key-2": 401} {
		a := post(t, s, ebEvent, func(r *http.Request) {
			if key != "" {
				r.Header.Set("x-ingest-key", key)
			}
		})
		if a.status != want {
			t.Errorf("key %q: answer %d, want %d", key, a.status, want)
		}
	}
	if s.Stats().Unauthorized.Load() != 4 {
		t.Errorf("unauthorized %d", s.Stats().Unauthorized.Load())
	}
}

// Basic auth, with a challenge on failure.
func TestBasicAuth(t *testing.T) {
	s := openSource(t, Config{Auth: Auth{Type: "basic", Username: "eventbridge", Password: "s3cret-pass"}}, nil)
	route(t, s, ack)
	for _, tc := range []struct {
		user, pass string
		set        bool
		want       int
	}{{"", "", false, 401}, {"eventbridge", "wrong", true, 401}, {"other", "s3cret-pass", true, 401}, {"eventbridge", "s3cret-pass", true, 200}} {
		a := post(t, s, ebEvent, func(r *http.Request) {
			if tc.set {
				r.SetBasicAuth(tc.user, tc.pass)
			}
		})
		if a.status != tc.want {
			t.Errorf("%s:%s: answer %d, want %d", tc.user, tc.pass, a.status, tc.want)
		}
		if a.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("no challenge: %q", a.header.Get("WWW-Authenticate"))
		}
	}
}

// A taken port fails Open with the address in the error.
func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := Config{Listen: ln.Addr().String()}
	cfg.SetDefaults()
	_, err = Open(context.Background(), "ingest", cfg, nil, quiet)
	if err == nil || !strings.Contains(err.Error(), "listen "+ln.Addr().String()) {
		t.Fatalf("err = %v", err)
	}
}

// With a certificate, the source serves HTTPS.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := openSource(t, Config{TLS: TLS{CertFile: certFile, KeyFile: keyFile}}, nil)
	route(t, s, ack)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "https://"+s.Addr().String()+"/events", strings.NewReader(ebEvent))
	req.Header.Set("Content-Type", "application/json")
	if a := do(t, client, req); a.status != 200 {
		t.Fatalf("answer %d", a.status)
	}
}

// ack: persisted answers 202 once the event is in the stream; the event
// then comes out of Receive, and one not acked comes back after a restart
// of the source (as after a crash).
func TestPersisted(t *testing.T) {
	srv := natstest.Run(t)
	s := openSource(t, Config{Ack: AckPersisted, AckWait: time.Second}, srv)
	a := post(t, s, `[`+ebEvent+`, {"raw": 1}]`, nil)
	if a.status != http.StatusAccepted || a.body["accepted"] != 2.0 {
		t.Fatalf("answer %d %v", a.status, a.body)
	}
	ids := a.body["ids"].([]any)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*router.Message
	for len(got) < 2 && ctx.Err() == nil {
		ms, _ := s.Receive(ctx, 10)
		got = append(got, ms...)
	}
	if len(got) != 2 || got[0].Event.ID != ids[0] || got[1].Event.ID != ids[1] || got[1].Event.DetailType != "HTTP Event" {
		t.Fatalf("received %d: %v", len(got), got)
	}
	ack(got[0])
	// "Crash": the source goes away with the second event unacked; a new
	// one gets it again once the ack wait is over.
	s.Close(context.Background())
	s2 := openSource(t, Config{Ack: AckPersisted, AckWait: time.Second}, srv)
	var again []*router.Message
	for len(again) == 0 && ctx.Err() == nil {
		again, _ = s2.Receive(ctx, 10)
	}
	if len(again) != 1 || again[0].Event.ID != ids[1] {
		t.Fatalf("after the restart received %v, want the unacked %v", again, ids[1])
	}
}

// A retried POST of the same EventBridge event is stored once.
func TestPersistedDeduplicates(t *testing.T) {
	srv := natstest.Run(t)
	s := openSource(t, Config{Ack: AckPersisted}, srv)
	for range 3 {
		if a := post(t, s, ebEvent, nil); a.status != http.StatusAccepted {
			t.Fatalf("answer %d", a.status)
		}
	}
	st, _ := srv.JetStream().Stream(context.Background(), StreamFor("ingest"))
	info, _ := st.Info(context.Background())
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d copies", info.State.Msgs)
	}
}

// A full buffer is answered 429: the caller retries later.
func TestPersistedBufferFull(t *testing.T) {
	srv := natstest.Run(t)
	s := openSource(t, Config{Ack: AckPersisted, Buffer: size.MiB, MaxBody: 64 * size.KiB}, srv)
	pad := strings.Repeat("x", 60<<10)
	var last answer
	for i := range 40 {
		last = post(t, s, fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad), nil)
		if last.status != http.StatusAccepted {
			break
		}
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("answer %d %v after filling the buffer", last.status, last.body)
	}
	if s.Stats().Throttled.Load() != 1 {
		t.Errorf("throttled %d", s.Stats().Throttled.Load())
	}
}

func TestConfigValidate(t *testing.T) {
	kindtest.Check(t, Config{}, "")
	kindtest.Check(t, Config{Listen: "0.0.0.0:8080"}, "auth: required when listening on 0.0.0.0:8080")
	kindtest.Check(t, Config{Listen: "0.0.0.0:8080", Auth: Auth{Type: "api_key", Keys: []string{"k"}}}, "")
	kindtest.Check(t, Config{Listen: "0.0.0.0:8080", Auth: Auth{Type: "basic", Username: "u", Password: "p"}}, "")
	kindtest.Check(t, Config{Auth: Auth{Type: "basic", Username: "u"}}, "auth.password: required")
	kindtest.Check(t, Config{Auth: Auth{Type: "basic", Username: "a:b", Password: "p"}}, "auth.username: required, without a colon")
	kindtest.Check(t, Config{Auth: Auth{Type: "api_key", Keys: []string{""}}}, "keys must not be empty")
	kindtest.Check(t, Config{Auth: Auth{Type: "none", Keys: []string{"k"}}}, "auth.keys: unused")
	kindtest.Check(t, Config{Auth: Auth{Type: "oauth"}}, "unknown auth type")
	kindtest.Check(t, Config{MaxBody: 10}, "max_body: 10 is outside")
	kindtest.Check(t, Config{Ack: "maybe"}, "ack: unknown value")
	kindtest.Check(t, Config{Ack: AckPersisted, ResponseTimeout: time.Second}, "response_timeout: for ack: delivered")
	kindtest.Check(t, Config{Stream: "S"}, "stream, buffer and ack_wait are for ack: persisted")
	kindtest.Check(t, Config{Ack: AckPersisted, Stream: "a.b"}, "stream: stream names")
	kindtest.Check(t, Config{Envelope: router.EnvelopeSNS}, "sns is not accepted")
	kindtest.Check(t, Config{TLS: TLS{CertFile: "c.pem"}}, "cert_file and key_file go together")
	kindtest.Check(t, Config{TLS: TLS{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}}, "tls.cert_file")
	if got := StreamFor("web-hooks.v2"); got != "SWITCHYARD_INGEST_web-hooks_0v2" {
		t.Errorf("StreamFor: %s", got)
	}
}

// split never panics, and accepts exactly objects and arrays of objects.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{ebEvent, `[` + ebEvent + `]`, `[]`, `{}`, `[1]`, `"x"`, `{"a":`, ``, `[{}, {}]`, "\xff", `[{"a":1,"a":2}]`, "{\"a\":\"\xe9\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := split(body)
		if err != nil {
			return
		}
		for _, raw := range raws {
			var obj map[string]any
			if json.Unmarshal(raw, &obj) != nil {
				t.Fatalf("split accepted %q with a non-object %q", body, raw)
			}
			if !utf8.Valid(raw) || router.CheckJSON(raw) != nil {
				t.Fatalf("split accepted %q with %q, not JSON as events must be", body, raw)
			}
		}
	})
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// With ack: persisted, an event larger than NATS can carry is refused with
// 413, before any event of the request is stored: retrying cannot help.
func TestPersistedEventTooLargeForNATS(t *testing.T) {
	srv := natstest.Run(t)
	s := openSource(t, Config{Ack: AckPersisted, MaxBody: 4 * size.MiB}, srv)
	big := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 1100<<10))
	a := post(t, s, `[{"small":1}, `+big+`]`, nil)
	if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(a.body["error"]), "event [1]") {
		t.Fatalf("answer %d %v", a.status, a.body)
	}
	st, _ := srv.JetStream().Stream(context.Background(), StreamFor("ingest"))
	if info, _ := st.Info(context.Background()); info.State.Msgs != 0 {
		t.Fatalf("stream holds %d messages of a refused request", info.State.Msgs)
	}
}

// Events whose id is missing, null, empty or not a string each get an id
// of their own: their deliveries must not share ids.
func TestEventsWithoutUsableIDsGetTheirOwn(t *testing.T) {
	s := openSource(t, Config{}, nil)
	r := route(t, s, ack)
	a := post(t, s, `[{"source":"s","detail-type":"T","detail":{}},{"id":null,"source":"s","detail-type":"T","detail":{}},{"id":"","source":"s","detail-type":"T","detail":{}},{"id":7,"source":"s","detail-type":"T","detail":{}}]`, nil)
	if a.status != http.StatusOK {
		t.Fatalf("answer %d %v", a.status, a.body)
	}
	seen := map[string]bool{}
	for _, m := range r.messages() {
		if m.Event.ID == "" || seen[m.Event.ID] || m.ID != m.Event.ID {
			t.Fatalf("event id %q (message id %q) empty or repeated", m.Event.ID, m.ID)
		}
		seen[m.Event.ID] = true
	}
	if len(seen) != 4 {
		t.Fatalf("%d distinct ids", len(seen))
	}
}

// The trace headers of a POST reach the router with each of its events,
// also through the JetStream buffer (ack: persisted); malformed ones are
// dropped.
func TestTraceHeadersCarried(t *testing.T) {
	const (
		tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		ts = "congo=t61rcWkgMzE"
		xr = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	)
	want := router.TraceContext{TraceParent: tp, TraceState: ts, XRay: xr}
	headers := func(r *http.Request) {
		r.Header.Set("Traceparent", tp)
		r.Header.Set("Tracestate", ts)
		r.Header.Set("X-Amzn-Trace-Id", xr)
	}
	t.Run("delivered", func(t *testing.T) {
		s := openSource(t, Config{}, nil)
		r := route(t, s, ack)
		if a := post(t, s, `[`+ebEvent+`, {"n": 1}]`, headers); a.status != http.StatusOK {
			t.Fatalf("answer %d %v", a.status, a.body)
		}
		for _, m := range r.messages() {
			if m.Trace != want {
				t.Errorf("message %s trace %+v, want %+v", m.ID, m.Trace, want)
			}
		}
		post(t, s, `{"n": 2}`, func(r *http.Request) { r.Header.Set("Traceparent", "00-xyz") })
		if ms := r.messages(); !ms[len(ms)-1].Trace.IsZero() {
			t.Errorf("a malformed traceparent was kept: %+v", ms[len(ms)-1].Trace)
		}
	})
	t.Run("persisted", func(t *testing.T) {
		srv := natstest.Run(t)
		s := openSource(t, Config{Ack: AckPersisted, AckWait: time.Second}, srv)
		if a := post(t, s, ebEvent, headers); a.status != http.StatusAccepted {
			t.Fatalf("answer %d %v", a.status, a.body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var got []*router.Message
		for len(got) == 0 && ctx.Err() == nil {
			got, _ = s.Receive(ctx, 10)
		}
		if len(got) != 1 || got[0].Trace != want {
			t.Fatalf("received %v, trace %+v; want %+v", got, got[0].Trace, want)
		}
		ack(got[0])
	})
}

// A POST reserves its body's bytes in the router's budget
// (max_in_flight_bytes) before reading it, and its events carry them to
// the router; a body that does not fit is answered 429 with Retry-After,
// unread, as a full max_in_flight is.
func TestDeliveredReservesBodyBytes(t *testing.T) {
	s := openSource(t, Config{MaxBody: 64 * size.KiB}, nil)
	b := router.NewByteBudget(64 << 10)
	if !s.UseBytes(b) {
		t.Fatal("with ack: delivered the events must come with their bytes reserved")
	}
	held := make(chan *router.Message, 1)
	route(t, s, func(m *router.Message) { held <- m })
	body := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 40<<10))
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+s.Addr().String()+"/events", "application/json", strings.NewReader(body))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	m := <-held
	if m.Reserved != int64(len(body)) || b.Used() != int64(len(body)) {
		t.Fatalf("event holds %d bytes, the budget %d; want the body's %d", m.Reserved, b.Used(), len(body))
	}
	start := time.Now()
	a := post(t, s, body, nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" || !strings.Contains(fmt.Sprint(a.body["error"]), "max_in_flight_bytes") {
		t.Errorf("a body that does not fit: %d %v %v", a.status, a.header, a.body)
	}
	if waited := time.Since(start); waited > 10*handoffWait {
		t.Errorf("answered after %v", waited)
	}
	if b.Used() != int64(len(body)) {
		t.Errorf("after the refusal the budget holds %d", b.Used())
	}
	// The router releases an event's bytes once it has settled it.
	m.Handle.Ack(t.Context())
	b.Release(m.Reserved)
	if status := <-first; status != http.StatusOK {
		t.Errorf("first POST answered %d", status)
	}
	waitUsed(t, b, 0)
	if st := s.Stats(); st.Throttled.Load() != 1 {
		t.Errorf("throttled %d", st.Throttled.Load())
	}
}

// A body whose declared length is over max_body is refused before a byte
// of it is read or reserved.
func TestDeclaredLengthOverMaxBody(t *testing.T) {
	s := openSource(t, Config{MaxBody: 4 * size.KiB}, nil)
	b := router.NewByteBudget(1 << 20)
	s.UseBytes(b)
	a := post(t, s, strings.Repeat(" ", 5<<10)+"{}", nil)
	if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(a.body["error"]), "max_body") {
		t.Errorf("answer %d %v", a.status, a.body)
	}
	waitUsed(t, b, 0)
}

// With ack: persisted, the bytes are held while the events are stored and
// given back with the answer: the events taken from the stream are the
// router's to count.
func TestPersistedReleasesBodyBytes(t *testing.T) {
	srv := natstest.Run(t)
	s := openSource(t, Config{Ack: AckPersisted}, srv)
	b := router.NewByteBudget(1 << 20)
	if s.UseBytes(b) {
		t.Error("with ack: persisted Receive's events do not come reserved")
	}
	if a := post(t, s, ebEvent, nil); a.status != http.StatusAccepted {
		t.Errorf("answer %d", a.status)
	}
	waitUsed(t, b, 0)
}

// waitUsed waits, a few seconds at most, for the budget to hold want
// bytes: a handler gives its bytes back as it returns, just after its
// answer is sent.
func waitUsed(t *testing.T, b *router.ByteBudget, want int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); b.Used() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("the budget holds %d bytes, want %d", b.Used(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
