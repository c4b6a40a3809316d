package http

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/jsconsumer"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

// handoffWait is how long a POST waits for the router to take its next
// event (ack: delivered) before it is answered 429: long enough to ride out
// the gap between two receives, short enough not to pile up requests.
const handoffWait = 250 * time.Millisecond

// maxEvents is the most events one POST may carry.
const maxEvents = 1000

// Stats count requests by outcome, and the events of accepted ones.
type Stats struct {
	// Requests is every request received.
	Requests atomic.Int64
	// Accepted counts requests answered 2xx; Events the events they
	// carried (a POST of an array is one request, many events).
	Accepted, Events atomic.Int64
	// Unauthorized, WrongMethod, WrongType, NotFound, TooLarge and
	// BadRequest count requests answered 4xx for what they were (bad
	// auth, method, type, body).
	Unauthorized, WrongMethod, WrongType, NotFound, TooLarge, BadRequest atomic.Int64
	// Throttled counts 429 answers (backpressure); Unavailable 503 answers
	// (a delivery failed and will be retried by the caller, a timeout, a
	// stream that cannot be reached, shutdown).
	Throttled, Unavailable atomic.Int64
	// Tokens counts the tokens issued by the token endpoint of
	// oauth_client_credentials; its refused requests count as
	// Unauthorized (wrong client credentials), BadRequest, WrongMethod
	// and NotFound.
	Tokens atomic.Int64
}

// Source is an HTTP listener.
type Source struct {
	name string
	cfg  Config
	log  *slog.Logger

	ln    net.Listener
	srv   *http.Server
	serve chan error

	// ack: delivered hands events to Receive through incoming.
	incoming chan *router.Message
	// ack: persisted publishes to the stream, which stored consumes.
	js      jetstream.JetStream
	subject string
	stored  *jsconsumer.Source

	// tokens are the live tokens issued with oauth_client_credentials;
	// nil with other auth types.
	tokens *tokens

	// bytes is the dispatcher's byte budget (max_in_flight_bytes): a body's
	// bytes are reserved before it is read. Nil until UseBytes.
	bytes atomic.Pointer[router.ByteBudget]

	stats    Stats
	draining atomic.Bool
	closing  chan struct{}
	close    sync.Once
}

var (
	_ router.Source    = (*Source)(nil)
	_ router.BytesUser = (*Source)(nil)
)

// Open listens on cfg.Listen (failing at once if it cannot) and starts
// serving. With ack: persisted it needs js, and creates the stream and the
// durable consumer when they are missing.
func Open(ctx context.Context, name string, cfg Config, js jetstream.JetStream, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1000
	}
	s := &Source{
		name: name, cfg: cfg, log: log.With("source", name),
		incoming: make(chan *router.Message), closing: make(chan struct{}), serve: make(chan error, 1),
	}
	if cfg.Ack == AckPersisted {
		if js == nil {
			return nil, fmt.Errorf("source %s: ack: persisted needs NATS JetStream", name)
		}
		if cfg.Stream == "" {
			s.cfg.Stream = StreamFor(name)
		}

		s.js, s.subject = js, "switchyard.ingest."+name
		stored, err := jsconsumer.Open(ctx, js, jsconsumer.Config{
			Source: name, Stream: s.cfg.Stream, Subject: s.subject, Durable: "switchyard",
			AckWait: cfg.AckWait, MaxAckPending: cfg.MaxInFlight, Batch: 100, Wait: 20 * time.Second,
			OwnStream: true, Shared: cfg.Shared, Keys: map[string]string{"max_ack_pending": "max_in_flight", "max_bytes": "buffer", "subject": "the source's name"},
			Envelope: cfg.Envelope, Malformed: router.MalformedWrap, DetailType: detailType,
			CreateStream: &jetstream.StreamConfig{
				Subjects:  []string{s.subject},
				Retention: jetstream.WorkQueuePolicy,
				Storage:   jetstream.FileStorage,
				MaxBytes:  int64(cfg.Buffer),
				Discard:   jetstream.DiscardNew,
			},
		}, log)
		if err != nil {
			return nil, err
		}
		s.stored = stored
	}
	var tlsConfig *tls.Config
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			s.closeStored()
			return nil, fmt.Errorf("source %s: tls: %w", name, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.closeStored()
		return nil, fmt.Errorf("source %s: listen %s: %w", name, cfg.Listen, err)
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc(cfg.Path, s.handle)
	if cfg.Auth.Type == AuthOAuth {
		s.tokens = newTokens(cfg.Auth.TokenLifetime)
		mux.HandleFunc(cfg.Auth.TokenPath, s.handleToken)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.stats.Requests.Add(1)
		s.stats.NotFound.Add(1)
		s.fail(w, http.StatusNotFound, "no such path: events are posted to "+cfg.Path)
	})
	s.srv = &http.Server{
		Handler:           mux,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.ResponseTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() {
		if tlsConfig != nil {
			s.serve <- s.srv.ServeTLS(ln, "", "")
		} else {
			s.serve <- s.srv.Serve(ln)
		}
	}()
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	s.log.Info("accepting events", "url", scheme+"://"+ln.Addr().String()+cfg.Path, "ack", cfg.Ack, "auth", cfg.Auth.Type)
	if s.tokens != nil {
		s.log.Info("issuing OAuth tokens", "url", scheme+"://"+ln.Addr().String()+cfg.Auth.TokenPath, "clients", len(cfg.Auth.Clients), "token_lifetime", size.Duration(cfg.Auth.TokenLifetime))
	}
	return s, nil
}

const detailType = "HTTP Event"

// JetStream's error codes for a stream that refused a message: because it
// is full (buffer, discard new: "maximum bytes exceeded"), or because the
// message is over the stream's size limit.
const (
	errCodeStoreFailed     jetstream.ErrorCode = 10077
	errCodeMessageTooLarge jetstream.ErrorCode = 10054
)

// Addr is the address the source listens on.
func (s *Source) Addr() net.Addr { return s.ln.Addr() }

// Stats are the source's request counters.
func (s *Source) Stats() *Stats { return &s.stats }

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Pollers is one receive loop.
func (s *Source) Pollers() int { return 1 }

// BatchSize is the most messages one Receive returns.
func (s *Source) BatchSize() int { return 100 }

// Receive returns events posted (ack: delivered) or stored (persisted).
func (s *Source) Receive(ctx context.Context, max int) ([]*router.Message, error) {
	if s.stored != nil {
		return s.stored.Receive(ctx, max)
	}
	var out []*router.Message
	select {
	case m := <-s.incoming:
		out = append(out, m)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closing:
		return nil, errors.New("source " + s.name + ": closed")
	}
	for len(out) < max {
		select {
		case m := <-s.incoming:
			out = append(out, m)
		default:
			return out, nil
		}
	}
	return out, nil
}

// UseBytes makes each POST reserve its body's bytes in b before the body
// is read. With ack: delivered the events go to the router with their
// bytes (Message.Reserved); with persisted they are released once the
// events are stored, and Receive's events, from the stream, are not
// reserved.
func (s *Source) UseBytes(b *router.ByteBudget) (reserves bool) {
	s.bytes.Store(b)
	return s.stored == nil
}

// Drain turns new POSTs away with 503 from now on; the router calls it
// when it stops receiving.
func (s *Source) Drain() { s.draining.Store(true) }

// Close stops listening and waits, within ctx, for answers to requests in
// progress.
func (s *Source) Close(ctx context.Context) error {
	var err error
	s.close.Do(func() {
		s.draining.Store(true)
		close(s.closing)
		if serr := s.srv.Shutdown(ctx); serr != nil {
			err = fmt.Errorf("source %s: shutdown: %w", s.name, serr)
			s.srv.Close()
		}
		if cerr := s.closeStored(); cerr != nil && err == nil {
			err = cerr
		}
	})
	return err
}

func (s *Source) closeStored() error {
	if s.stored == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.stored.Close(ctx)
}

// handle answers one POST of events.
func (s *Source) handle(w http.ResponseWriter, r *http.Request) {
	s.stats.Requests.Add(1)
	if r.URL.Path != s.cfg.Path {
		s.stats.NotFound.Add(1)
		s.fail(w, http.StatusNotFound, "no such path: events are posted to "+s.cfg.Path)
		return
	}
	if s.draining.Load() {
		s.stats.Unavailable.Add(1)
		w.Header().Set("Connection", "close")
		s.retryLater(w, http.StatusServiceUnavailable, 5*time.Second, "shutting down; retry (another instance may take it)")
		return
	}
	if r.Method != http.MethodPost {
		s.stats.WrongMethod.Add(1)
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST events")
		return
	}
	if !s.authorized(r) {
		s.stats.Unauthorized.Add(1)
		switch s.cfg.Auth.Type {
		case "basic":
			w.Header().Set("WWW-Authenticate", `Basic realm="switchyard", charset="UTF-8"`)
		case AuthOAuth:
			// EventBridge gets a new token on any 401 and sends the
			// event again (when its rule's target retries).
			bearerChallenge(w.Header(), r)
		}
		s.fail(w, http.StatusUnauthorized, s.authHint())
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.stats.WrongType.Add(1)
		s.fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want application/json", r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > int64(s.cfg.MaxBody) {
		s.stats.TooLarge.Add(1)
		w.Header().Set("Connection", "close")
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than max_body (%s)", s.cfg.MaxBody))
		return
	}
	// The body's bytes are reserved before it is read, its length when
	// the request says it, else max_body; what the events do not take
	// with them is given back when the request is answered.
	res := &reservation{b: s.bytes.Load()}
	defer res.release()
	if !res.take(r.Context(), r.ContentLength, int64(s.cfg.MaxBody)) {
		s.stats.Throttled.Add(1)
		w.Header().Set("Connection", "close")
		s.retryLater(w, http.StatusTooManyRequests, time.Second, fmt.Sprintf("switchyard is at its in-flight byte limit (max_in_flight_bytes: %s); retry later", size.Bytes(res.b.Max())))
		return
	}
	body, err := readBody(w, r, int64(s.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.stats.TooLarge.Add(1)
			s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than max_body (%s)", s.cfg.MaxBody))
			return
		}
		s.stats.BadRequest.Add(1)
		s.fail(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	msgs, err := Decode(s.name, s.cfg, body, time.Now(), router.CleanTrace(r.Header.Get), newID)
	if err != nil {
		s.stats.BadRequest.Add(1)
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.stored != nil {
		s.persist(w, r, msgs)
		return
	}
	if len(msgs) > s.cfg.MaxInFlight {
		// Every event of the POST stays in flight until it is answered:
		// more than the budget could never all be handed off.
		s.stats.TooLarge.Add(1)
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d events in one request; with ack: delivered at most %d (max_in_flight)", len(msgs), s.cfg.MaxInFlight))
		return
	}
	s.deliver(w, r, msgs, res)
}

// authorized checks the credentials in constant time: every configured
// key is compared, each through its SHA-256 so that lengths leak nothing;
// a bearer token is looked up by its SHA-256 (see tokens).
func (s *Source) authorized(r *http.Request) bool {
	switch s.cfg.Auth.Type {
	case "api_key":
		given := r.Header.Get(s.cfg.Auth.Header)
		ok := 0
		for _, k := range s.cfg.Auth.Keys {
			ok |= equal(given, k)
		}
		return given != "" && ok == 1
	case "basic":
		user, pass, present := r.BasicAuth()
		return present && equal(user, s.cfg.Auth.Username)&equal(pass, s.cfg.Auth.Password) == 1
	case AuthOAuth:
		tok, present := bearer(r.Header.Get("Authorization"))
		return present && s.tokens.valid(tok)
	}
	return true
}

func (s *Source) authHint() string {
	switch s.cfg.Auth.Type {
	case "api_key":
		return "missing or wrong API key in the " + s.cfg.Auth.Header + " header"
	case "basic":
		return "missing or wrong basic auth credentials"
	case AuthOAuth:
		return "missing, unknown or expired bearer token: get one from " + s.cfg.Auth.TokenPath
	}
	return "unauthorized"
}

func equal(a, b string) int {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:])
}

// readBody reads at most max bytes: into a buffer of the body's length
// when the request says it (bytes.Buffer's ReadFrom would double a full
// buffer to look for more), else into one that grows.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	if n := r.ContentLength; n >= 0 && n <= max {
		b := make([]byte, n)
		_, err := io.ReadFull(body, b)
		return b, err
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

// reservation is a POST's share of the byte budget.
type reservation struct {
	b *router.ByteBudget // nil: none to take from
	n int64
}

// take reserves the bytes of a body of length n (-1: unknown, so max),
// waiting up to handoffWait for them. It reports false when they are not
// free by then.
func (r *reservation) take(ctx context.Context, n, max int64) bool {
	if r.b == nil {
		return true
	}
	if n < 0 {
		n = max
	}
	if n == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, handoffWait)
	defer cancel()
	if r.b.Reserve(ctx, n) != nil {
		return false
	}
	r.n = n
	return true
}

// give hands an event its share, its body's length, to go with it to the
// router, which releases it once the event is settled.
func (r *reservation) give(m *router.Message) {
	if r.b == nil {
		return
	}
	m.Reserved = min(int64(len(m.Body)), r.n)
	r.n -= m.Reserved
}

// takeBack returns the share of an event that never reached the router.
func (r *reservation) takeBack(m *router.Message) {
	r.n += m.Reserved
	m.Reserved = 0
}

// release gives back what the request still holds.
func (r *reservation) release() {
	if r.b != nil {
		r.b.Release(r.n)
		r.n = 0
	}
}

// split returns the events of a body: one JSON object, or an array of
// them. The body must be JSON as events must be (router.CheckJSON): UTF-8,
// and no object with a key twice, which the error names by its path.
func split(body []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty body: post an EventBridge event (a JSON object) or an array of them")
	}
	switch trimmed[0] {
	case '{':
		if err := router.CheckJSON(trimmed); err != nil {
			return nil, fmt.Errorf("malformed JSON: %v", err)
		}
		return [][]byte{trimmed}, nil
	case '[':
		raws, err := router.Elements(trimmed)
		if err != nil {
			return nil, fmt.Errorf("malformed JSON: %v", err)
		}
		if len(raws) == 0 {
			return nil, errors.New("empty array: no events")
		}
		if len(raws) > maxEvents {
			return nil, fmt.Errorf("%d events in one request; at most %d", len(raws), maxEvents)
		}
		for i, raw := range raws {
			if raw[0] != '{' {
				return nil, fmt.Errorf("event [%d] is not a JSON object", i)
			}
		}
		return raws, nil
	}
	if err := router.CheckJSON(trimmed); err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	return nil, errors.New("the body must be a JSON object (one event) or an array of objects")
}

// Decode makes the router messages that the source named name with cfg
// hands out for a POST's body received at now, without their handles: the
// body's events (one JSON object, or an array of them), each decoded with
// cfg's envelope (wrapped events have detail-type HTTP Event, the source's
// name as source and an id from newID). An error is what the POST is
// answered 400 with: a body that is not an object or an array of them, an
// event that does not fit the envelope (naming it in an array). The
// handler uses it, and so does the dry run (switchyard route).
func Decode(name string, cfg Config, body []byte, now time.Time, trace router.TraceContext, newID func() string) ([]*router.Message, error) {
	raws, err := split(body)
	if err != nil {
		return nil, err
	}
	msgs := make([]*router.Message, len(raws))
	for i, raw := range raws {
		origin := router.Origin{Source: name, DetailType: detailType, ID: newID(), Time: now}
		ev, err := router.Decode(cfg.Envelope, raw, origin, now)
		if err != nil {
			if len(raws) > 1 {
				err = fmt.Errorf("event [%d]: %w", i, err)
			}
			return nil, err
		}
		// A request may be a caller retrying one that failed (a 503, a
		// lost answer): an event that brought its own id may have been
		// delivered before. A wrapped one has a new id each time.
		msgs[i] = &router.Message{Event: ev, Source: name, ID: ev.ID, Body: raw, Received: now, Trace: trace, Redelivered: ev.ID != origin.ID}
	}
	return msgs, nil
}

// deliver hands the events to the router and answers once all are
// settled: 200 when every one was acked, 503 (to be retried) when one was
// nacked or ResponseTimeout passed, 429 when the router has no room.
func (s *Source) deliver(w http.ResponseWriter, r *http.Request, msgs []*router.Message, res *reservation) {
	req := &request{pending: len(msgs), done: make(chan struct{})}
	for _, m := range msgs {
		res.give(m)
	}
	handed := 0
	timer := time.NewTimer(handoffWait)
	defer timer.Stop()
handoff:
	for _, m := range msgs {
		m.Handle = &handle{req: req}
		select {
		case s.incoming <- m:
			handed++
			// handoffWait without progress, not for the whole request.
			timer.Reset(handoffWait)
		case <-timer.C:
			break handoff
		case <-s.closing:
			break handoff
		case <-r.Context().Done():
			break handoff
		}
	}
	for _, m := range msgs[handed:] {
		res.takeBack(m)
	}
	if handed < len(msgs) {
		// The events handed off are delivered all the same; a retry of the
		// whole request repeats them with the same delivery ids.
		req.abandon(len(msgs) - handed)
		s.stats.Throttled.Add(1)
		s.retryLater(w, http.StatusTooManyRequests, time.Second, "switchyard is at its in-flight limit; retry later")
		return
	}
	timeout := time.NewTimer(s.cfg.ResponseTimeout)
	defer timeout.Stop()
	select {
	case <-req.done:
	case <-timeout.C:
		s.stats.Unavailable.Add(1)
		s.retryLater(w, http.StatusServiceUnavailable, time.Second, fmt.Sprintf("deliveries still running after %s (response_timeout); retry, or use ack: persisted", s.cfg.ResponseTimeout))
		return
	case <-r.Context().Done():
		return // the caller is gone; the deliveries go on
	}
	req.mu.Lock()
	nacked, after := req.nacked, req.after
	req.mu.Unlock()
	if nacked > 0 {
		s.stats.Unavailable.Add(1)
		s.retryLater(w, http.StatusServiceUnavailable, after, fmt.Sprintf("%d of %d events could not be delivered yet; retry", nacked, len(msgs)))
		return
	}
	s.stats.accepted(len(msgs))
	s.ok(w, http.StatusOK, msgs)
}

// persist stores the events in the stream and answers 202 once the stream
// has every one; 429 when the stream is full.
func (s *Source) persist(w http.ResponseWriter, r *http.Request, msgs []*router.Message) {
	// An event NATS cannot carry can never be stored: say so before
	// storing any of the request's events (headers take their share).
	limit := int(s.js.Conn().MaxPayload()) - 256
	for i, m := range msgs {
		if len(m.Body) > limit {
			s.stats.TooLarge.Add(1)
			s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("event [%d] is %d bytes: with ack: persisted an event may have at most %d (the NATS server's max_payload)", i, len(m.Body), limit))
			return
		}
	}
	for _, m := range msgs {
		nm := nats.NewMsg(s.subject)
		nm.Data = m.Body
		// The stored event keeps the POST's trace context, in the headers
		// the NATS source reads.
		setTrace(nm.Header, m.Trace)
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		// The message id is the event id: a retried POST of an EventBridge
		// event is stored once, and a wrapped event keeps the id its POST
		// was answered with.
		_, err := s.js.PublishMsg(ctx, nm, jetstream.WithMsgID(m.Event.ID))
		cancel()
		if err == nil {
			continue
		}
		var apiErr *jetstream.APIError
		if errors.Is(err, nats.ErrMaxPayload) || errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeMessageTooLarge {
			s.stats.TooLarge.Add(1)
			s.fail(w, http.StatusRequestEntityTooLarge, "an event is larger than the stream accepts: "+err.Error())
			return
		}
		if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed && strings.Contains(apiErr.Description, "maximum") {
			s.stats.Throttled.Add(1)
			s.retryLater(w, http.StatusTooManyRequests, 5*time.Second, "the ingest buffer is full (buffer); retry later")
			return
		}
		s.stats.Unavailable.Add(1)
		s.log.Warn("persisting an event failed", router.MessageIDs(m), "error", err)
		s.retryLater(w, http.StatusServiceUnavailable, time.Second, "could not persist the events; retry")
		return
	}
	s.stats.accepted(len(msgs))
	s.ok(w, http.StatusAccepted, msgs)
}

// accepted counts a request answered 2xx and its n events.
func (st *Stats) accepted(n int) {
	st.Accepted.Add(1)
	st.Events.Add(int64(n))
}

func (s *Source) ok(w http.ResponseWriter, status int, msgs []*router.Message) {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Event.ID
	}
	writeJSON(w, status, map[string]any{"accepted": len(msgs), "ids": ids})
}

func (s *Source) fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Source) retryLater(w http.ResponseWriter, status int, after time.Duration, msg string) {
	secs := max(1, int((after+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}

// request is one POST waiting for its events to settle.
type request struct {
	mu      sync.Mutex
	pending int
	nacked  int
	after   time.Duration
	done    chan struct{}
}

func (q *request) settle(nacked bool, after time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if nacked {
		q.nacked++
		q.after = max(q.after, after)
	}
	q.pending--
	if q.pending == 0 {
		close(q.done)
	}
}

// abandon gives up on n events never handed off.
func (q *request) abandon(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending -= n
	if q.pending == 0 {
		close(q.done)
	}
}

// handle settles a posted event: the answer to its POST waits for it.
type handle struct {
	req     *request
	settled atomic.Bool
}

func (h *handle) Ack(context.Context) error {
	if h.settled.CompareAndSwap(false, true) {
		h.req.settle(false, 0)
	}
	return nil
}

// Nack fails the POST with 503 and Retry-After, so the caller sends the
// event again.
func (h *handle) Nack(_ context.Context, after time.Duration) error {
	if h.settled.CompareAndSwap(false, true) {
		h.req.settle(true, after)
	}
	return nil
}

// Extend has nothing to extend: the caller waits, up to response_timeout.
func (h *handle) Extend(context.Context, time.Duration) error { return nil }

// newID is a random UUID (version 4), the form of EventBridge event ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// setTrace sets a trace context's headers on a NATS message.
func setTrace(h nats.Header, t router.TraceContext) {
	if t.TraceParent != "" {
		h.Set(router.HeaderTraceParent, t.TraceParent)
		if t.TraceState != "" {
			h.Set(router.HeaderTraceState, t.TraceState)
		}
	}
	if t.XRay != "" {
		h.Set(router.HeaderXRay, t.XRay)
	}
}
