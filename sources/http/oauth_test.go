package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/kindtest"
)

const (
	clientID     = "eventbridge"
	clientSecret = "s3cret-0ne-for-tests"
)

func oauthConfig(clients ...Client) Config {
	if len(clients) == 0 {
		clients = []Client{{ClientID: clientID, ClientSecret: clientSecret}}
	}
	return Config{Auth: Auth{Type: AuthOAuth, Clients: clients}}
}

// clock is a test clock: it stands still until advanced.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// setMax lowers the cap on live tokens (tests).
func (t *tokens) setMax(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.max = n
}

// ordered is how many digests the record of their order holds.
func (t *tokens) ordered() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.order)
}

// eventBridge does what an EventBridge API destination whose connection
// authorizes with OAuth client credentials does: it gets a token from the
// token endpoint (the client id and secret as Basic auth, grant_type and the
// connection's body parameters in the body, or in the query with GET),
// keeps it, sends it as a bearer token with each event, gets a new one when
// it expires within 60 seconds or when an event is answered 401 or 407, and
// then sends the event again (a rule target's retry).
type eventBridge struct {
	t                   *testing.T
	tokenURL, eventsURL func() string // asked before each request: a load balancer
	id, secret          string
	method              string            // of the token request
	json                bool              // the token request's body is JSON
	params              map[string]string // the connection's OAuthHttpParameters
	now                 func() time.Time

	token   string
	expires time.Time
	// fetched counts token requests; refused counts events answered
	// 401 or 407.
	fetched, refused int
}

func newEventBridge(t *testing.T, s *Source, c *clock) *eventBridge {
	base := "http://" + s.Addr().String()
	return &eventBridge{
		t: t, id: clientID, secret: clientSecret, method: http.MethodPost, now: c.Now,
		tokenURL:  func() string { return base + s.cfg.Auth.TokenPath },
		eventsURL: func() string { return base + s.cfg.Path },
	}
}

// fetch asks for a token; an error is the endpoint's answer.
func (eb *eventBridge) fetch() error {
	eb.t.Helper()
	eb.fetched++
	p := url.Values{"grant_type": {"client_credentials"}}
	for k, v := range eb.params {
		p.Set(k, v)
	}
	u, body, ctype := eb.tokenURL(), "", ""
	switch {
	case eb.method == http.MethodGet:
		u += "?" + p.Encode()
	case eb.json:
		m := map[string]string{}
		for k := range p {
			m[k] = p.Get(k)
		}
		b, _ := json.Marshal(m)
		body, ctype = string(b), "application/json"
	default:
		body, ctype = p.Encode(), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequest(eb.method, u, strings.NewReader(body))
	if err != nil {
		eb.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.SetBasicAuth(eb.id, eb.secret)
	a := do(eb.t, http.DefaultClient, req)
	if a.status != http.StatusOK {
		return fmt.Errorf("token endpoint answered %d %v", a.status, a.body)
	}
	tok, _ := a.body["access_token"].(string)
	secs, _ := a.body["expires_in"].(float64)
	if tok == "" || a.body["token_type"] != "Bearer" || secs <= 0 {
		eb.t.Fatalf("token answer %v", a.body)
	}
	eb.token, eb.expires = tok, eb.now().Add(time.Duration(secs)*time.Second)
	return nil
}

// send posts one event as EventBridge does, and returns the final answer's
// status.
func (eb *eventBridge) send(event string) int {
	eb.t.Helper()
	if eb.token == "" || !eb.now().Add(time.Minute).Before(eb.expires) {
		if err := eb.fetch(); err != nil {
			eb.t.Fatal(err)
		}
	}
	status := eb.post(event)
	if status == http.StatusUnauthorized || status == http.StatusProxyAuthRequired {
		eb.refused++
		if err := eb.fetch(); err != nil {
			eb.t.Fatal(err)
		}
		status = eb.post(event)
	}
	return status
}

func (eb *eventBridge) post(event string) int {
	eb.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, eb.eventsURL(), strings.NewReader(event))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+eb.token)
	return do(eb.t, http.DefaultClient, req).status
}

func withBearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// The whole flow, as EventBridge goes through it: a token for the client
// credentials, an event posted with it, the token expired and refused with
// a bearer challenge, a new token, the event through.
func TestOAuth_EventBridgeFlow(t *testing.T) {
	s := openSource(t, oauthConfig(), nil)
	c := newClock()
	s.tokens.setClock(c.Now)
	r := route(t, s, ack)
	eb := newEventBridge(t, s, c)

	// The token answer, as RFC 6749 §5.1 has it.
	req, _ := http.NewRequest(http.MethodPost, eb.tokenURL(), strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	a := do(t, http.DefaultClient, req)
	if a.status != http.StatusOK || a.body["token_type"] != "Bearer" || a.body["expires_in"] != 300.0 {
		t.Fatalf("token answer %d %v", a.status, a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" || a.header.Get("Pragma") != "no-cache" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Errorf("token answer headers %v", a.header)
	}
	first := a.body["access_token"].(string)
	if len(first) != 43 { // 32 bytes, unpadded base64url
		t.Errorf("token %d characters long", len(first))
	}

	if got := post(t, s, ebEvent, withBearer(first)); got.status != http.StatusOK {
		t.Fatalf("event with the token answered %d %v", got.status, got.body)
	}
	c.advance(5*time.Minute - time.Second)
	if got := post(t, s, ebEvent, withBearer(first)); got.status != http.StatusOK {
		t.Fatalf("a second before it expires, the token was refused: %d %v", got.status, got.body)
	}
	c.advance(time.Second)
	expired := post(t, s, ebEvent, withBearer(first))
	if expired.status != http.StatusUnauthorized || !strings.Contains(expired.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("expired token: %d %q %v", expired.status, expired.header.Get("WWW-Authenticate"), expired.body)
	}

	// EventBridge's own way through: a token, events, expiry, a new token.
	for i := range 3 {
		if status := eb.send(ebEvent); status != http.StatusOK {
			t.Fatalf("event %d answered %d", i, status)
		}
	}
	c.advance(4*time.Minute + time.Second) // within a minute of expiry: fetched again
	if status := eb.send(ebEvent); status != http.StatusOK {
		t.Fatalf("event after the token's renewal answered %d", status)
	}
	if eb.fetched != 2 || eb.refused != 0 || eb.token == first {
		t.Errorf("the client fetched %d tokens and was refused %d times; want 2 and 0", eb.fetched, eb.refused)
	}
	if n := len(r.messages()); n != 6 {
		t.Errorf("the router got %d events, want 6", n)
	}
	st := s.Stats()
	if st.Tokens.Load() != 3 || st.Unauthorized.Load() != 1 || st.Accepted.Load() != 6 {
		t.Errorf("stats: %d tokens, %d unauthorized, %d accepted; want 3, 1, 6", st.Tokens.Load(), st.Unauthorized.Load(), st.Accepted.Load())
	}
}

// Every form a token request may take is understood, and every bad one is
// answered with the error RFC 6749 §5.2 names, never with a token.
func TestOAuth_TokenRequests(t *testing.T) {
	const oddSecret = "a+b/c%d e&f=g" // changed by form-encoding
	s := openSource(t, oauthConfig(
		Client{ClientID: clientID, ClientSecret: clientSecret},
		Client{ClientID: clientID, ClientSecret: "the-new-secret-rotated-in"},
		Client{ClientID: "odd client", ClientSecret: oddSecret},
	), nil)
	route(t, s, ack)
	base := "http://" + s.Addr().String() + "/oauth/token"
	basic := func(id, secret string) string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(id, secret)
		return r.Header.Get("Authorization")
	}
	const form, js = "application/x-www-form-urlencoded", "application/json"
	good := basic(clientID, clientSecret)
	for _, tc := range []struct {
		name, method, query, ctype, body, auth string
		status                                 int
		code                                   string // the error, "" for a token
	}{
		{"basic, form, POST", "POST", "", form, "grant_type=client_credentials", good, 200, ""},
		{"basic, form, PUT", "PUT", "", form, "grant_type=client_credentials", good, 200, ""},
		{"basic, GET with the parameters in the query", "GET", "grant_type=client_credentials&audience=switchyard", "", "", good, 200, ""},
		{"basic, JSON", "POST", "", js + "; charset=utf-8", `{"grant_type": "client_credentials", "audience": "x", "n": 1}`, good, 200, ""},
		{"credentials in a JSON body", "POST", "", js, `{"grant_type": "client_credentials", "client_id": "eventbridge", "client_secret": "s3cret-0ne-for-tests"}`, "", 200, ""},
		{"credentials in a form body", "POST", "", form, "grant_type=client_credentials&client_id=eventbridge&client_secret=s3cret-0ne-for-tests", "", 200, ""},
		{"credentials in the query", "GET", "grant_type=client_credentials&client_id=eventbridge&client_secret=s3cret-0ne-for-tests", "", "", "", 200, ""},
		{"JSON without a content type", "POST", "", "", `{"grant_type":"client_credentials"}`, good, 200, ""},
		{"form without a content type", "POST", "", "", "grant_type=client_credentials", good, 200, ""},
		{"grant_type in the query and the body", "POST", "grant_type=client_credentials", form, "grant_type=client_credentials&scope=events", good, 200, ""},
		{"grant_type twice in JSON", "POST", "", js, `{"grant_type":"client_credentials","grant_type":"client_credentials"}`, good, 200, ""},
		{"the rotated-in secret", "POST", "", form, "grant_type=client_credentials", basic(clientID, "the-new-secret-rotated-in"), 200, ""},
		{"Basic of form-encoded credentials", "POST", "", form, "grant_type=client_credentials", basic(url.QueryEscape("odd client"), url.QueryEscape(oddSecret)), 200, ""},
		{"Basic of raw credentials", "POST", "", form, "grant_type=client_credentials", basic("odd client", oddSecret), 200, ""},
		{"lower-case basic scheme", "POST", "", form, "grant_type=client_credentials", "basic " + strings.TrimPrefix(good, "Basic "), 200, ""},

		{"wrong secret", "POST", "", form, "grant_type=client_credentials", basic(clientID, "wrong"), 401, "invalid_client"},
		{"a prefix of the secret", "POST", "", form, "grant_type=client_credentials", basic(clientID, clientSecret[:10]), 401, "invalid_client"},
		{"unknown client", "POST", "", form, "grant_type=client_credentials", basic("someone", clientSecret), 401, "invalid_client"},
		{"one client's id, another's secret", "POST", "", form, "grant_type=client_credentials", basic("odd client", clientSecret), 401, "invalid_client"},
		{"wrong secret in the body", "POST", "", form, "grant_type=client_credentials&client_id=eventbridge&client_secret=wrong", "", 401, "invalid_client"},
		{"no credentials", "POST", "", form, "grant_type=client_credentials", "", 401, "invalid_client"},
		{"a bearer token", "POST", "", form, "grant_type=client_credentials", "Bearer abc", 401, "invalid_client"},
		{"wrong secret and wrong grant", "POST", "", form, "grant_type=password", basic(clientID, "wrong"), 401, "invalid_client"},
		{"Basic decides over the body", "POST", "", form, "grant_type=client_credentials&client_id=eventbridge&client_secret=s3cret-0ne-for-tests", basic(clientID, "wrong"), 401, "invalid_client"},

		{"another grant", "POST", "", form, "grant_type=password&username=u&password=p", good, 400, "unsupported_grant_type"},
		{"authorization_code", "POST", "", js, `{"grant_type":"authorization_code","code":"x"}`, good, 400, "unsupported_grant_type"},
		{"no grant_type", "POST", "", form, "audience=x", good, 400, "invalid_request"},
		{"two grant types", "POST", "grant_type=password", form, "grant_type=client_credentials", good, 400, "invalid_request"},
		{"two client ids", "POST", "", form, "grant_type=client_credentials&client_id=eventbridge&client_id=x&client_secret=s3cret-0ne-for-tests", "", 400, "invalid_request"},
		{"grant_type not a string", "POST", "", js, `{"grant_type": ["client_credentials"]}`, good, 400, "invalid_request"},
		{"JSON array", "POST", "", js, `["grant_type", "client_credentials"]`, good, 400, "invalid_request"},
		{"malformed JSON", "POST", "", js, `{"grant_type": "client_credentials"`, good, 400, "invalid_request"},
		{"JSON and more", "POST", "", js, `{"grant_type": "client_credentials"} {}`, good, 400, "invalid_request"},
		{"malformed form", "POST", "", form, "grant_type=%zz", good, 400, "invalid_request"},
		{"malformed query", "GET", "grant_type=%zz", "", "", good, 400, "invalid_request"},
		{"another content type", "POST", "", "text/plain", "grant_type=client_credentials", good, 400, "invalid_request"},
		{"too large", "POST", "", form, "grant_type=client_credentials&pad=" + strings.Repeat("x", maxTokenRequest), good, 400, "invalid_request"},
		{"DELETE", "DELETE", "", "", "", good, 405, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := base
			if tc.query != "" {
				u += "?" + tc.query
			}
			req, _ := http.NewRequest(tc.method, u, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			a := do(t, http.DefaultClient, req)
			if a.status != tc.status || a.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("answer %d (Cache-Control %q) %v, want %d", a.status, a.header.Get("Cache-Control"), a.body, tc.status)
			}
			if tc.code == "" {
				tok, _ := a.body["access_token"].(string)
				if got := post(t, s, ebEvent, withBearer(tok)); got.status != http.StatusOK {
					t.Errorf("the token was refused: %d %v", got.status, got.body)
				}
				return
			}
			if a.body["error"] != tc.code || a.body["error_description"] == "" || a.body["access_token"] != nil {
				t.Errorf("answer %v, want error %s", a.body, tc.code)
			}
			if challenge := a.header.Get("WWW-Authenticate"); (tc.status == 401) != strings.HasPrefix(challenge, "Basic ") {
				t.Errorf("status %d with challenge %q", tc.status, challenge)
			}
			if tc.status == 405 && a.header.Get("Allow") != "GET, POST, PUT" {
				t.Errorf("Allow %q", a.header.Get("Allow"))
			}
		})
	}
	st := s.Stats()
	if st.Tokens.Load() != 15 || st.Unauthorized.Load() != 9 || st.BadRequest.Load() != 13 || st.WrongMethod.Load() != 1 {
		t.Errorf("stats: %d tokens, %d unauthorized, %d bad requests, %d wrong methods; want 15, 9, 13, 1",
			st.Tokens.Load(), st.Unauthorized.Load(), st.BadRequest.Load(), st.WrongMethod.Load())
	}
}

// The events path takes only a live token it issued; a missing one is
// challenged bare, an unknown or expired one with invalid_token (RFC 6750
// §3.1), so that EventBridge gets a new one.
func TestOAuth_EventsNeedALiveToken(t *testing.T) {
	s := openSource(t, oauthConfig(), nil)
	c := newClock()
	s.tokens.setClock(c.Now)
	route(t, s, ack)
	tok, _ := s.tokens.issue()
	for _, tc := range []struct {
		name, auth string
		status     int
		challenge  string
	}{
		{"none", "", 401, `Bearer realm="switchyard"`},
		{"basic auth", "Basic " + "ZXZlbnRicmlkZ2U6czNjcmV0LTBuZS1mb3ItdGVzdHM=", 401, `Bearer realm="switchyard"`},
		{"unknown token", "Bearer " + strings.Repeat("A", 43), 401, `error="invalid_token"`},
		{"empty token", "Bearer ", 401, `error="invalid_token"`},
		{"a prefix of the token", "Bearer " + tok[:42], 401, `error="invalid_token"`},
		{"the client secret", "Bearer " + clientSecret, 401, `error="invalid_token"`},
		{"the token", "Bearer " + tok, 200, ""},
		{"lower-case scheme", "bearer " + tok, 200, ""},
	} {
		a := post(t, s, ebEvent, func(r *http.Request) {
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
		})
		if a.status != tc.status || !strings.Contains(a.header.Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("%s: answer %d, challenge %q; want %d, %q", tc.name, a.status, a.header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
		if tc.name == "none" && strings.Contains(a.header.Get("WWW-Authenticate"), "error=") {
			t.Errorf("a request without credentials was challenged with an error: %q", a.header.Get("WWW-Authenticate"))
		}
	}
	c.advance(5 * time.Minute)
	if a := post(t, s, ebEvent, withBearer(tok)); a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired token: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	if n := s.Stats().Unauthorized.Load(); n != 7 {
		t.Errorf("unauthorized %d, want 7", n)
	}
}

// Tokens live on the instance that issued them. A token from another
// instance is refused with 401, and the client gets a new one from the
// instance it talks to: one refresh, when the client sticks to an
// instance. Behind a balancer that sends each request to the next of two
// instances, an event reaches the instance that issued the client's token
// one time in two: half the events are refused, and each refusal costs a
// new token, which the retry misses again.
func TestOAuth_TokenFromAnotherInstance(t *testing.T) {
	a, b := openSource(t, oauthConfig(), nil), openSource(t, oauthConfig(), nil)
	route(t, a, ack)
	route(t, b, ack)
	c := newClock()
	at := func(s *Source, path string) string { return "http://" + s.Addr().String() + path }

	eb := newEventBridge(t, a, c)
	if err := eb.fetch(); err != nil { // from a
		t.Fatal(err)
	}
	eb.tokenURL = func() string { return at(b, "/oauth/token") } // then sticky to b
	eb.eventsURL = func() string { return at(b, "/events") }
	for i := range 3 {
		if status := eb.send(ebEvent); status != http.StatusOK {
			t.Fatalf("event %d answered %d", i, status)
		}
	}
	if eb.fetched != 2 || eb.refused != 1 {
		t.Errorf("sticky: the client fetched %d tokens and was refused %d times; want 2 and 1", eb.fetched, eb.refused)
	}

	rr := newEventBridge(t, a, c)
	next := 0
	balance := func(path string) func() string {
		return func() string {
			next++
			return at([]*Source{a, b}[next%2], path)
		}
	}
	rr.tokenURL, rr.eventsURL = balance("/oauth/token"), balance("/events")
	delivered := 0
	for range 10 {
		if rr.send(ebEvent) == http.StatusOK {
			delivered++
		}
	}
	if delivered != 5 || rr.refused != 5 || rr.fetched != 6 {
		t.Errorf("round robin: %d of 10 events delivered, %d refused, %d tokens fetched; want 5, 5, 6", delivered, rr.refused, rr.fetched)
	}
}

// At most maxTokens tokens are live: past it the oldest is dropped (and
// refused), expired ones are dropped, and the record of their order stays
// within the cap.
func TestOAuth_LiveTokensAreCapped(t *testing.T) {
	s := openSource(t, oauthConfig(), nil)
	c := newClock()
	s.tokens.setClock(c.Now)
	s.tokens.setMax(3)
	route(t, s, ack)
	eb := newEventBridge(t, s, c)
	var toks []string
	for range 5 {
		if err := eb.fetch(); err != nil {
			t.Fatal(err)
		}
		toks = append(toks, eb.token)
		c.advance(time.Second)
	}
	if n := s.tokens.live(); n != 3 {
		t.Fatalf("%d live tokens, want 3", n)
	}
	for i, tok := range toks {
		want := http.StatusOK
		if i < 2 {
			want = http.StatusUnauthorized
		}
		if a := post(t, s, ebEvent, withBearer(tok)); a.status != want {
			t.Errorf("token %d: answer %d, want %d", i, a.status, want)
		}
	}
	for range 100 {
		s.tokens.issue()
	}
	if n, order := s.tokens.live(), s.tokens.ordered(); n != 3 || order > 3 {
		t.Errorf("after 100 more: %d live, %d in order; want 3 and at most 3", n, order)
	}
	c.advance(5 * time.Minute)
	if n := s.tokens.live(); n != 0 {
		t.Errorf("%d live tokens after they all expired", n)
	}
	if n := s.tokens.ordered(); n != 0 {
		t.Errorf("%d expired tokens still in order", n)
	}
}

// Neither the tokens nor the client secrets, right or wrong, reach the log,
// which does record the token requests (at debug).
func TestOAuth_SecretsStayOutOfTheLog(t *testing.T) {
	var buf syncBuffer
	cfg := oauthConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.SetDefaults()
	s, err := Open(context.Background(), "ingest", cfg, nil, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	route(t, s, ack)
	c := newClock()
	eb := newEventBridge(t, s, c)
	if status := eb.send(ebEvent); status != http.StatusOK {
		t.Fatalf("event answered %d", status)
	}
	wrong := *eb
	wrong.secret = "the-wrong-secret-123"
	if err := wrong.fetch(); err == nil {
		t.Fatal("a wrong secret got a token")
	}
	post(t, s, ebEvent, withBearer(eb.token+"x"))
	s.Close(context.Background())
	log := buf.String()
	for _, secret := range []string{eb.token, clientSecret, wrong.secret, eb.token + "x"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
	if !strings.Contains(log, `"msg":"token issued","source":"ingest","client_id":"eventbridge","expires_in":300`) || !strings.Contains(log, "wrong client credentials") || !strings.Contains(log, `"msg":"issuing OAuth tokens"`) {
		t.Errorf("the log lacks the token requests:\n%s", log)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOAuth_ConfigValidate(t *testing.T) {
	ok := oauthConfig()
	kindtest.Check(t, ok, "")
	open := oauthConfig()
	open.Listen = "0.0.0.0:8080"
	kindtest.Check(t, open, "")
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no clients", func(c *Config) { c.Auth.Clients = nil }, "auth.clients: oauth_client_credentials needs at least one client"},
		{"no id", func(c *Config) { c.Auth.Clients[0].ClientID = "" }, "auth.clients[0].client_id: required"},
		{"colon in the id", func(c *Config) { c.Auth.Clients[0].ClientID = "a:b" }, "auth.clients[0].client_id: may not contain a colon"},
		{"long id", func(c *Config) { c.Auth.Clients[0].ClientID = strings.Repeat("i", 513) }, "longer than 512 bytes"},
		{"no secret", func(c *Config) { c.Auth.Clients[0].ClientSecret = "" }, "auth.clients[0].client_secret: required (is an environment variable unset?)"},
		{"newline in the secret", func(c *Config) { c.Auth.Clients[0].ClientSecret = "a\nb" }, "client_secret: may not contain control characters"},
		{"long secret", func(c *Config) { c.Auth.Clients[0].ClientSecret = strings.Repeat("s", 513) }, "client_secret: longer than 512 bytes"},
		{"twice", func(c *Config) { c.Auth.Clients = append(c.Auth.Clients, c.Auth.Clients[0]) }, `auth.clients[1]: client "eventbridge" is listed twice with the same secret`},
		{"token path is the events path", func(c *Config) { c.Auth.TokenPath = "/events" }, "auth.token_path: /events is the path events are posted to"},
		{"token path /", func(c *Config) { c.Auth.TokenPath = "/" }, "auth.token_path: \"/\": want a path"},
		{"token path with a final /", func(c *Config) { c.Auth.TokenPath = "/oauth/" }, "auth.token_path"},
		{"token path with a wildcard", func(c *Config) { c.Auth.TokenPath = "/oauth/{x}" }, "auth.token_path"},
		{"token path with ..", func(c *Config) { c.Auth.TokenPath = "/a/../token" }, "auth.token_path"},
		{"token path without /", func(c *Config) { c.Auth.TokenPath = "token" }, "auth.token_path"},
		{"short lifetime", func(c *Config) { c.Auth.TokenLifetime = time.Minute }, "auth.token_lifetime: 1m is outside the range of 2m to 1h"},
		{"long lifetime", func(c *Config) { c.Auth.TokenLifetime = 2 * time.Hour }, "auth.token_lifetime: 2h is outside"},
		{"keys", func(c *Config) { c.Auth.Keys = []string{"k"} }, "auth: header, keys, username and password are not used with auth.type oauth_client_credentials"},
		{"password", func(c *Config) { c.Auth.Password = "p" }, "are not used with auth.type oauth_client_credentials"},
	} {
		cfg := oauthConfig()
		tc.mod(&cfg)
		kindtest.Check(t, cfg, tc.want)
	}
	// The token settings belong to oauth_client_credentials only.
	kindtest.Check(t, Config{Auth: Auth{Type: "api_key", Keys: []string{"k"}, Clients: []Client{{ClientID: "a", ClientSecret: "b"}}}}, "auth.clients: for auth.type oauth_client_credentials")
	kindtest.Check(t, Config{Auth: Auth{Type: "basic", Username: "u", Password: "p", TokenPath: "/t"}}, "auth.token_path: for auth.type oauth_client_credentials")
	kindtest.Check(t, Config{Auth: Auth{TokenLifetime: time.Hour}}, "auth.token_lifetime: for auth.type oauth_client_credentials")
	kindtest.Check(t, Config{Listen: "0.0.0.0:8080"}, "(set auth.type: api_key, basic or oauth_client_credentials)")
	def := oauthConfig()
	def.SetDefaults()
	if def.Auth.TokenPath != "/oauth/token" || def.Auth.TokenLifetime != 5*time.Minute {
		t.Errorf("defaults: token_path %q, token_lifetime %s", def.Auth.TokenPath, def.Auth.TokenLifetime)
	}
}
