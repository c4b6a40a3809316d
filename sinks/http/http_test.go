package http

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts a loopback test server, closed when the test ends.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// newSink builds a sink, closed when the test ends.
func newSink(t *testing.T, cfg Config, opts ...Option) *Sink {
	t.Helper()
	s, err := New("app", cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// delivery is a JSON delivery of payload by rule r of event ev-1.
func delivery(payload string) *router.Delivery {
	return &router.Delivery{
		ID: "d-1", Rule: "r", Target: "app", Payload: []byte(payload), Attempt: 2,
		Message: &router.Message{ID: "m-1", Source: "jobs", Event: &router.Event{ID: "ev-1"}, Body: []byte(payload)},
	}
}

func TestSink_ClassifiesResponsesByStatus(t *testing.T) {
	t.Parallel()
	inThirty := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		ok     bool
		class  router.Class
		// after checks the retry hint; nil means it must be 0.
		after func(time.Duration) bool
		check func(t *testing.T, err error)
	}{
		{name: "200 is delivered", status: 200, ok: true},
		{name: "201 is delivered", status: 201, body: `{"id":1}`, ok: true},
		{name: "204 is delivered", status: 204, ok: true},
		{name: "429 with Retry-After seconds is throttled for that long", status: 429, header: map[string]string{"Retry-After": "7"},
			class: router.Throttled, after: func(d time.Duration) bool { return d == 7*time.Second }},
		{name: "429 without Retry-After is throttled with no hint", status: 429, class: router.Throttled},
		{name: "503 with a Retry-After HTTP date is throttled until then", status: 503, header: map[string]string{"Retry-After": inThirty},
			class: router.Throttled, after: func(d time.Duration) bool { return d > 20*time.Second && d <= 30*time.Second }},
		{name: "503 without Retry-After is throttled with no hint", status: 503, class: router.Throttled},
		{name: "500 is retryable", status: 500, body: "boom", class: router.Retryable},
		{name: "502 is retryable", status: 502, class: router.Retryable},
		{name: "504 is retryable", status: 504, class: router.Retryable},
		{name: "500 with Retry-After is retryable without a hint, as retryablehttp reads it only for 429 and 503", status: 500,
			header: map[string]string{"Retry-After": "9"}, class: router.Retryable},
		{name: "501 is permanent", status: 501, class: router.Permanent},
		{name: "408 is retryable", status: 408, class: router.Retryable},
		{name: "425 is retryable", status: 425, class: router.Retryable},
		{name: "400 is permanent and quotes the body", status: 400, body: "{\"error\":\n\"bad field\"}", class: router.Permanent,
			check: func(t *testing.T, err error) {
				if !strings.HasSuffix(err.Error(), `: 400 Bad Request: {"error": "bad field"}`) {
					t.Errorf("error %q does not quote the body on one line", err)
				}
			}},
		{name: "401 is permanent", status: 401, class: router.Permanent},
		{name: "404 is permanent", status: 404, class: router.Permanent},
		{name: "422 is permanent", status: 422, class: router.Permanent},
		{name: "a long error body is quoted clipped", status: 422, body: strings.Repeat("x", 100<<10), class: router.Permanent,
			check: func(t *testing.T, err error) {
				var se *StatusError
				if !errors.As(err, &se) || len(se.Body) != maxQuote+len("...") {
					t.Errorf("quoted body is %d bytes, want %d", len(se.Body), maxQuote+3)
				}
			}},
		{name: "307 is permanent and not followed", status: 307, header: map[string]string{"Location": "/elsewhere?token=hush-hush-secret"},
			class: router.Permanent, check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "/elsewhere?token=xxxxx (redirects are not followed") {
					t.Errorf("error %q does not name the redirect", err)
				}
			}},
		{name: "302 is permanent and not followed", status: 302, header: map[string]string{"Location": "/elsewhere"}, class: router.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var elsewhere atomic.Int32
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					elsewhere.Add(1)
					return
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			s := newSink(t, Config{URL: srv.URL + "/events"})
			err := s.Deliver(t.Context(), delivery(`{"k":1}`))
			if elsewhere.Load() != 0 {
				t.Error("a redirect was followed")
			}
			if !wantOutcome(t, err, tt.ok, tt.class) {
				return
			}
			after := router.RetryAfterOf(err)
			if (tt.after == nil && after != 0) || (tt.after != nil && !tt.after(after)) {
				t.Errorf("retry after %s is wrong", after)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status {
				t.Errorf("error %v does not carry status %d", err, tt.status)
			}
			if !strings.HasPrefix(err.Error(), "http app: POST "+srv.URL+"/events: "+strconv.Itoa(tt.status)) {
				t.Errorf("error %q does not say what was done", err)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

func TestSink_ClassifiesCallFailures(t *testing.T) {
	t.Parallel()
	// hang answers nothing until the client gives up. It reads the body
	// first: only then does the server notice the client going away.
	hang := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}
	// trickle sends the status, then a byte every 20ms until the client
	// gives up.
	trickle := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(status)
			io.WriteString(w, "partial")
			rc := http.NewResponseController(w)
			rc.Flush()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
					if _, err := io.WriteString(w, "."); err != nil || rc.Flush() != nil {
						return
					}
				}
			}
		}
	}
	tests := []struct {
		name  string
		url   func(t *testing.T) string
		ctx   func(ctx context.Context) context.Context
		ok    bool
		class router.Class
		// timeout is the sink's; 0 means 150ms.
		timeout time.Duration
		check   func(t *testing.T, err error)
	}{
		{name: "connection refused is retryable", class: router.Retryable,
			url: func(t *testing.T) string {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				l.Close()
				return "http://" + l.Addr().String() + "/events"
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("error %v is not ECONNREFUSED", err)
				}
			}},
		{name: "connection reset is retryable", class: router.Retryable,
			url: func(t *testing.T) string {
				return serve(t, func(w http.ResponseWriter, r *http.Request) {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err != nil {
						panic(err)
					}
					conn.(*net.TCPConn).SetLinger(0) // close with RST
					conn.Close()
				}).URL
			}},
		{name: "a server that never answers times out, retryable", class: router.Retryable,
			url: func(t *testing.T) string { return serve(t, hang).URL },
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "no response within 150ms (timeout)") {
					t.Errorf("error %q does not name the timeout", err)
				}
			}},
		{name: "the caller's ctx ending is retryable and says so", class: router.Retryable,
			// The sink's timeout is far off, so that the caller's ending
			// ends the call even on a loaded machine.
			timeout: 5 * time.Second,
			url:     func(t *testing.T) string { return serve(t, hang).URL },
			ctx: func(ctx context.Context) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				time.AfterFunc(20*time.Millisecond, cancel)
				return ctx
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v does not wrap context.Canceled", err)
				}
			}},
		{name: "a 200 whose body trickles slower than the timeout is delivered when the timeout ends it", ok: true,
			url: func(t *testing.T) string { return serve(t, trickle(200)).URL }},
		{name: "a 500 whose body trickles slower than the timeout is retryable and quotes what arrived", class: router.Retryable,
			url: func(t *testing.T) string { return serve(t, trickle(500)).URL },
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "500 Internal Server Error: partial") {
					t.Errorf("error %q does not quote the start of the body", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			timeout := cmp.Or(tt.timeout, 150*time.Millisecond)
			s := newSink(t, Config{URL: tt.url(t), Timeout: timeout})
			// A generous outer bound: the sink's own timeout must end the
			// call long before it.
			outer, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			ctx := outer
			if tt.ctx != nil {
				ctx = tt.ctx(outer)
			}
			err := s.Deliver(ctx, delivery(`{"k":1}`))
			if outer.Err() != nil {
				t.Fatal("the call outlived the sink's timeout")
			}
			if !wantOutcome(t, err, tt.ok, tt.class) {
				return
			}
			if !strings.HasPrefix(err.Error(), "http app: POST http://127.0.0.1:") {
				t.Errorf("error %q does not say what was done", err)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

// captured is what a test server received.
type captured struct {
	header http.Header
	uri    string
	body   []byte
}

// recorder serves 204 and sends each request it receives on a channel.
func recorder(t *testing.T) (*httptest.Server, <-chan captured) {
	t.Helper()
	got := make(chan captured, 10)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- captured{header: r.Header.Clone(), uri: r.RequestURI, body: body}
		w.WriteHeader(http.StatusNoContent)
	})
	return srv, got
}

func TestSink_SendsHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers map[string]string
		want    map[string]string
	}{
		{name: "switchyard's own and the configured headers are sent",
			headers: map[string]string{"x-source": "switchyard", "Authorization": "Bearer abc"},
			want: map[string]string{
				"X-Source": "switchyard", "Authorization": "Bearer abc", "User-Agent": "switchyard",
				"Content-Type": "application/json", "Content-Length": "7",
				"X-Switchyard-Delivery-Id": "d-1", "X-Switchyard-Event-Id": "ev-1",
				"X-Switchyard-Rule": "r", "X-Switchyard-Attempt": "2",
			}},
		{name: "a configured User-Agent replaces switchyard's",
			headers: map[string]string{"user-agent": "app-hook/1"},
			want:    map[string]string{"User-Agent": "app-hook/1", "X-Switchyard-Delivery-Id": "d-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := recorder(t)
			s := newSink(t, Config{URL: srv.URL, Headers: tt.headers})
			if err := s.Deliver(t.Context(), delivery(`{"k":1}`)); err != nil {
				t.Fatal(err)
			}
			r := <-got
			for k, v := range tt.want {
				if g := r.header.Get(k); g != v {
					t.Errorf("%s: %q, want %q", k, g, v)
				}
			}
			if _, ok := r.header["X-Switchyard-Signature"]; ok {
				t.Error("signed without a secret")
			}
		})
	}
}

func TestSink_FillsURLPlaceholders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		path    string
		payload string
		text    bool
		want    string // request URI; "" means nothing may be sent
	}{
		{name: "a string field is path-escaped in the path", path: "/items/<key>/x",
			payload: `{"key":"a/b c?d#e"}`, want: "/items/a%2Fb%20c%3Fd%23e/x"},
		{name: "a field in the query is query-escaped", path: "/hook?key=<key>&v=1",
			payload: `{"key":"a&b=c d/e"}`, want: "/hook?key=a%26b%3Dc+d%2Fe&v=1"},
		{name: "numbers and objects stand for their JSON", path: "/n/<n>/<o>",
			payload: `{"n":42,"o":{"a":[1]}}`, want: "/n/42/%7B%22a%22:%5B1%5D%7D"},
		{name: "the delivery's ids and rule are available", path: "/d/<switchyard.delivery-id>/<switchyard.event-id>/<switchyard.rule>",
			payload: `{}`, want: "/d/d-1/ev-1/r"},
		{name: "a whole event's fields are available", path: "/e/<detail-type>",
			payload: `{"id":"ev-1","detail-type":"Object Created"}`, want: "/e/Object%20Created"},
		{name: "a text payload has only the delivery's ids", path: "/t/<switchyard.rule>",
			payload: "plain <key>", text: true, want: "/t/r"},
		{name: "a field the payload lacks is permanent and nothing is sent", path: "/items/<missing>",
			payload: `{"key":"a"}`},
		{name: "a text payload has no fields", path: "/t/<key>", payload: `{"key":"a"}`, text: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := recorder(t)
			s := newSink(t, Config{URL: srv.URL + tt.path})
			d := delivery(tt.payload)
			d.Text = tt.text
			err := s.Deliver(t.Context(), d)
			if tt.want == "" {
				if router.ClassOf(err) != router.Permanent || !strings.Contains(fmt.Sprint(err), "has no value") {
					t.Errorf("Deliver: %v, want a permanent error naming the placeholder", err)
				}
				select {
				case r := <-got:
					t.Errorf("sent to %s", r.uri)
				default:
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r := <-got; r.uri != tt.want {
				t.Errorf("request URI %s, want %s", r.uri, tt.want)
			}
		})
	}
}

func TestSink_PostsPayloadsByKind(t *testing.T) {
	t.Parallel()
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		delivery func() *router.Delivery
		ctype    string
		body     func(d *router.Delivery) string
	}{
		{name: "a JSON payload is sent as application/json", ctype: "application/json",
			delivery: func() *router.Delivery { return delivery(`{"key":"a"}`) },
			body:     func(*router.Delivery) string { return `{"key":"a"}` }},
		{name: "a text payload is sent as text/plain", ctype: "text/plain; charset=utf-8",
			delivery: func() *router.Delivery { d := delivery("hello <b>"); d.Text = true; return d },
			body:     func(*router.Delivery) string { return "hello <b>" }},
		{name: "a dead letter is sent as its JSON document", ctype: "application/json",
			delivery: func() *router.Delivery {
				d := delivery("original body")
				d.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-1", Rule: "r", Target: "t", Attempts: 3,
					LastError: "boom", FirstAttempt: first, LastAttempt: first}
				return d
			},
			body: func(d *router.Delivery) string { return string(router.DeadLetterDocument(d)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := recorder(t)
			s := newSink(t, Config{URL: srv.URL})
			d := tt.delivery()
			if err := s.Deliver(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			r := <-got
			if ct := r.header.Get("Content-Type"); ct != tt.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
			}
			if string(r.body) != tt.body(d) {
				t.Errorf("body %s, want %s", r.body, tt.body(d))
			}
		})
	}
}

// verify is a receiver's check of the signature, the recipe in
// docs/config.md: split the header at commas into t and v1; reject a t
// more than 5 minutes from now; compute the hex HMAC-SHA256 of
// "<t>.<raw body>" with the secret; compare in constant time.
func verify(secret, header string, body []byte, now time.Time) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("malformed signature header")
	}
	if age := now.Sub(time.Unix(sec, 0)); age > 5*time.Minute || age < -5*time.Minute {
		return errors.New("timestamp too old")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	if !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		return errors.New("signature mismatch")
	}
	return nil
}

func TestSink_SignatureVerifiesWithTheDocumentedRecipe(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-signing-key"
	tests := []struct {
		name   string
		header string // sign.header; "" for the default
		clock  func() time.Time
		tamper bool
		ok     bool
	}{
		{name: "the receiver accepts a signed body", ok: true},
		{name: "a configured header carries the signature", header: "X-Hub-Signature", ok: true},
		{name: "the receiver rejects a tampered body", tamper: true},
		{name: "the receiver rejects an old timestamp", clock: func() time.Time { return time.Now().Add(-10 * time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.header
			if want == "" {
				want = DefaultSignHeader
			}
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if tt.tamper {
					body = append(body, ' ')
				}
				if err := verify(secret, r.Header.Get(want), body, time.Now()); err != nil {
					http.Error(w, err.Error(), http.StatusUnauthorized)
				}
			})
			var opts []Option
			if tt.clock != nil {
				opts = append(opts, WithClock(tt.clock))
			}
			s := newSink(t, Config{URL: srv.URL, Sign: Sign{Secret: secret, Header: tt.header}}, opts...)
			err := s.Deliver(t.Context(), delivery(`{"key":"a"}`))
			if tt.ok != (err == nil) {
				t.Fatalf("Deliver: %v, want ok %v", err, tt.ok)
			}
			if err != nil && (router.ClassOf(err) != router.Permanent || strings.Contains(err.Error(), secret)) {
				t.Errorf("error %v: want permanent, without the secret", err)
			}
		})
	}
}

func TestSignature_MatchesTheDocumentedExample(t *testing.T) {
	t.Parallel()
	// printf '%s.%s' 1767225600 '{"a":1}' | openssl dgst -sha256 -hmac key
	const want = "t=1767225600,v1=80f7b75f8618b9b24d72673996a625f1a43f7387a26b6739d667431724fe4d23"
	if got := Signature("key", time.Unix(1767225600, 0), []byte(`{"a":1}`)); got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
}

func TestSink_ErrorsNeverShowSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"url-password", "query-token-123", "header-token-123", "signing-key-123"}
	// echo answers 400 with everything it received.
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "%s %v", r.RequestURI, r.Header)
	}
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		return l.Addr().String()
	}
	tests := []struct {
		name string
		host func(t *testing.T) string
	}{
		{name: "a response echoing the request", host: func(t *testing.T) string { return serve(t, echo).Listener.Addr().String() }},
		{name: "a refused connection", host: refused},
		{name: "a redirect echoing the query", host: func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://u:url-password@example.com/?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
			}).Listener.Addr().String()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSink(t, Config{
				URL:     "http://user:url-password@" + tt.host(t) + "/hook?token=query-token-123",
				Headers: map[string]string{"X-Api-Key": "header-token-123"},
				Sign:    Sign{Secret: "signing-key-123"},
			})
			err := s.Deliver(t.Context(), delivery(`{}`))
			if err == nil {
				t.Fatal("Deliver succeeded, want an error")
			}
			t.Log(err)
			for _, secret := range secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows %q: %v", secret, err)
				}
			}
			if !strings.Contains(err.Error(), "token=xxxxx") {
				t.Errorf("error %v does not show the redacted URL", err)
			}
		})
	}
}

func TestSink_VerifiesTLSWithTheConfiguredCA(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tls    TLS
		newErr string // New fails with this
		ok     bool
	}{
		{name: "a server certified by ca_file is accepted", tls: TLS{CAFile: ca}, ok: true},
		{name: "without the CA the certificate is refused, permanently", tls: TLS{}},
		{name: "insecure_skip_verify accepts any certificate", tls: TLS{InsecureSkipVerify: true}, ok: true},
		{name: "a ca_file with no certificate is an error", tls: TLS{CAFile: notPEM}, newErr: "tls.ca_file: no PEM certificate in"},
		{name: "a missing ca_file is an error", tls: TLS{CAFile: filepath.Join(dir, "missing.pem")}, newErr: "tls.ca_file: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{URL: srv.URL, TLS: tt.tls}
			if tt.newErr != "" {
				if _, err := New("app", cfg); err == nil || !strings.Contains(err.Error(), tt.newErr) {
					t.Fatalf("New: %v, want %q", err, tt.newErr)
				}
				return
			}
			err := newSink(t, cfg).Deliver(t.Context(), delivery(`{}`))
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var cve *tls.CertificateVerificationError
			if !errors.As(err, &cve) || router.ClassOf(err) != router.Permanent {
				t.Errorf("Deliver: %v, want a permanent certificate verification error", err)
			}
		})
	}
}

func TestSink_CloseIsIdempotent(t *testing.T) {
	t.Parallel()
	srv, got := recorder(t)
	s, err := New("app", Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(t.Context(), delivery(`{}`)); err != nil {
		t.Fatal(err)
	}
	<-got
	for range 2 {
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if s.Name() != "app" {
		t.Errorf("Name = %q", s.Name())
	}
}

func TestConfig_SetDefaults(t *testing.T) {
	t.Parallel()
	c := Config{URL: "http://127.0.0.1:3000/events", Sign: Sign{Secret: "k"}}
	c.SetDefaults()
	if c.Timeout != 10*time.Second || c.Sign.Header != "x-switchyard-signature" {
		t.Errorf("defaults: timeout %s, sign.header %q", c.Timeout, c.Sign.Header)
	}
	c = Config{URL: "http://127.0.0.1:3000/events"}
	c.SetDefaults()
	if c.Sign.Header != "" {
		t.Errorf("sign.header %q without a secret", c.Sign.Header)
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	const ok = "http://127.0.0.1:3000/events"
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "a plain URL is valid", cfg: Config{URL: ok}},
		{name: "placeholders in the path and query are valid", cfg: Config{URL: "https://h.example/x/<id>?k=<switchyard.rule>"}},
		{name: "a full https config is valid", cfg: Config{URL: "https://h.example/x", Headers: map[string]string{"Authorization": "Bearer t"},
			Sign: Sign{Secret: "k", Header: "X-Sig"}, Timeout: time.Second, TLS: TLS{CAFile: "/etc/ca.pem"}}},
		{name: "url is required", cfg: Config{}, want: []string{"url: required"}},
		{name: "url must be http or https", cfg: Config{URL: "ftp://h/x"}, want: []string{"url: want an http:// or https:// URL"}},
		{name: "url without a scheme is refused", cfg: Config{URL: "127.0.0.1:3000/events"}, want: []string{"url: want an http:// or https:// URL"}},
		{name: "placeholders may not stand in the host", cfg: Config{URL: "http://<tenant>.example/x"},
			want: []string{"url: placeholders may stand in the path and query, not in the host"}},
		{name: "header names must be tokens", cfg: Config{URL: ok, Headers: map[string]string{"bad header": "x"}},
			want: []string{`headers: invalid header name "bad header"`}},
		{name: "switchyard's headers cannot be configured", cfg: Config{URL: ok, Headers: map[string]string{"x-switchyard-rule": "x", "content-type": "text/xml"}},
			want: []string{"headers: Content-Type is set by switchyard or HTTP itself and cannot be configured",
				"headers: X-Switchyard-Rule is set by switchyard or HTTP itself and cannot be configured"}},
		{name: "the signature header cannot be configured", cfg: Config{URL: ok, Headers: map[string]string{"x-sig": "v"}, Sign: Sign{Secret: "k", Header: "X-Sig"}},
			want: []string{"headers: X-Sig carries the signature (sign.header) and cannot be configured"}},
		{name: "a header value with a line break is refused without quoting it", cfg: Config{URL: ok, Headers: map[string]string{"X-Token": "hush\r\nX-Evil: 1"}},
			want: []string{"headers: the value of X-Token has a line break or another control character"}},
		{name: "sign.header needs a secret", cfg: Config{URL: ok, Sign: Sign{Header: "x-sig"}}, want: []string{"sign.secret: required when sign.header is set"}},
		{name: "sign.header must be a token", cfg: Config{URL: ok, Sign: Sign{Secret: "k", Header: "x sig"}}, want: []string{`sign.header: invalid header name "x sig"`}},
		{name: "sign.header cannot be one of switchyard's", cfg: Config{URL: ok, Sign: Sign{Secret: "k", Header: "X-Switchyard-Rule"}},
			want: []string{"sign.header: X-Switchyard-Rule is set by switchyard or HTTP itself; choose another header"}},
		{name: "a negative timeout is refused", cfg: Config{URL: ok, Timeout: -time.Second}, want: []string{"timeout: -1s is negative; want a duration such as 10s"}},
		{name: "tls settings need an https URL", cfg: Config{URL: ok, TLS: TLS{CAFile: "/etc/ca.pem"}}, want: []string{"tls.ca_file: applies only to https:// URLs"}},
		{name: "insecure_skip_verify needs an https URL", cfg: Config{URL: ok, TLS: TLS{InsecureSkipVerify: true}},
			want: []string{"tls.insecure_skip_verify: applies only to https:// URLs"}},
		{name: "ca_file and insecure_skip_verify exclude each other", cfg: Config{URL: "https://h.example/", TLS: TLS{CAFile: "/etc/ca.pem", InsecureSkipVerify: true}},
			want: []string{"tls.insecure_skip_verify: verifies nothing, so tls.ca_file would be ignored; set one of them"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.SetDefaults()
			var got []string
			for _, fe := range router.FieldErrors(cfg.Validate()) {
				got = append(got, fe.Error())
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
			for _, line := range got {
				if strings.Contains(line, "hush") {
					t.Errorf("error quotes a header value: %s", line)
				}
			}
			if len(tt.want) > 0 || tt.cfg.TLS.CAFile == "" { // New reads ca_file
				if s, err := New("app", tt.cfg); (err == nil) != (len(tt.want) == 0) {
					t.Errorf("New: %v, want an error: %v", err, len(tt.want) > 0)
				} else if s != nil {
					s.Close(t.Context())
				}
			}
		})
	}
}

// The delivery's trace context goes as traceparent, tracestate and
// X-Amzn-Trace-Id, each form converted from the other when needed.
func TestSink_SendsTraceHeaders(t *testing.T) {
	t.Parallel()
	const (
		tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		xr = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
	)
	tests := []struct {
		name  string
		trace router.TraceContext
		want  map[string]string
	}{
		{"w3c", router.TraceContext{TraceParent: tp, TraceState: "a=b"}, map[string]string{"Traceparent": tp, "Tracestate": "a=b", "X-Amzn-Trace-Id": xr}},
		{"x-ray", router.TraceContext{XRay: xr}, map[string]string{"Traceparent": tp, "Tracestate": "", "X-Amzn-Trace-Id": xr}},
		{"none", router.TraceContext{}, map[string]string{"Traceparent": "", "Tracestate": "", "X-Amzn-Trace-Id": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := recorder(t)
			s := newSink(t, Config{URL: srv.URL})
			d := delivery(`{}`)
			d.Message.Trace = tt.trace
			if err := s.Deliver(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			r := <-got
			for k, v := range tt.want {
				if g := r.header.Get(k); g != v {
					t.Errorf("%s: %q, want %q", k, g, v)
				}
			}
		})
	}
}

// wantOutcome checks what Deliver returned: nil when ok, else an error of
// class. It reports whether there is an error to look at further.
func wantOutcome(t *testing.T, err error, ok bool, class router.Class) bool {
	t.Helper()
	if ok {
		if err != nil {
			t.Fatalf("Deliver: %v, want delivered", err)
		}
		return false
	}
	if err == nil {
		t.Fatal("Deliver succeeded, want an error")
	}
	t.Log(err)
	if got := router.ClassOf(err); got != class {
		t.Errorf("class %s, want %s (%v)", got, class, err)
	}
	return true
}
