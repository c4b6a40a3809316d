package http

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/switchyard-dev/switchyard/internal/redact"
	"github.com/switchyard-dev/switchyard/router"
)

// Sink POSTs each delivery to a URL. It is safe for concurrent use.
type Sink struct {
	name      string
	cfg       Config
	transport *http.Transport
	client    *retryablehttp.Client
	holes     [][]int           // where cfg.URL has placeholders
	mask      *strings.Replacer // hides configured secrets in quoted responses
	now       func() time.Time
}

// Option changes a Sink.
type Option func(*Sink)

// WithClock sets the clock that stamps signatures. Default time.Now.
func WithClock(now func() time.Time) Option { return func(s *Sink) { s.now = now } }

// maxResponseBody bounds how much of a response body is read (to let the
// connection be reused); maxQuote how much of it an error quotes.
const (
	maxResponseBody = 64 << 10
	maxQuote        = 512
)

// New returns a sink for cfg, applying its defaults and checking it. It
// reads tls.ca_file but starts nothing: connections are opened by Deliver
// and kept for reuse until Close.
func New(name string, cfg Config, opts ...Option) (*Sink, error) {
	cfg.SetDefaults()
	cfg.Headers = maps.Clone(cfg.Headers)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("http %s: %w", name, err)
	}
	var tc *tls.Config
	if cfg.TLS.CAFile != "" || cfg.TLS.InsecureSkipVerify {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify}
		if cfg.TLS.CAFile != "" {
			pem, err := os.ReadFile(cfg.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("http %s: %w", name, router.Fieldf("tls.ca_file", "%v", err))
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("http %s: %w", name, router.Fieldf("tls.ca_file", "no PEM certificate in %s", cfg.TLS.CAFile))
			}
		}
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment, // never for loopback
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100, // a policy's concurrency, not net/http's 2
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	s := &Sink{
		name: name, cfg: cfg, transport: tr, now: time.Now,
		holes: placeholderRE().FindAllStringIndex(cfg.URL, -1),
		mask:  masker(cfg),
	}
	s.client = &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: tr,
			// A redirected POST is either replayed (307, 308) or turned into
			// a GET (301, 302, 303): neither should happen behind the
			// operator's back. The 3xx is returned, and is permanent.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		// The policy owns retries: one call per Deliver, and every outcome,
		// response or error, handed back as it is.
		RetryMax:     0,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		CheckRetry:   judgeLater,
		Logger:       nil, // errors are returned; its logs would show unredacted URLs
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// judgeLater answers "do not retry" inside retryablehttp's Do, so that Do
// returns each response and error untouched. With RetryMax 0 the stock
// DefaultRetryPolicy could only change two things there: it would replace
// a timed-out call's error with the bare context error, and every 429 and
// 5xx would close all idle connections of the pool. classify and callError
// judge with DefaultRetryPolicy afterwards instead.
func judgeLater(context.Context, *http.Response, error) (bool, error) { return false, nil }

var (
	_ router.Sink   = (*Sink)(nil)
	_ router.Closer = (*Sink)(nil)
)

// Name returns the target's name.
func (s *Sink) Name() string { return s.name }

// Close closes idle connections. Calls in flight are not interrupted (their
// ctx bounds them), and a later Deliver opens a new connection. It is
// idempotent and returns nil.
func (s *Sink) Close(context.Context) error {
	s.transport.CloseIdleConnections()
	return nil
}

// Deliver POSTs the delivery once, within the configured timeout: JSON
// payloads as application/json, text payloads as text/plain, dead letters
// as router.DeadLetterDocument. It returns nil for any 2xx response, even
// one whose body does not arrive in time. Otherwise the error is a
// router.DeliveryError: throttled for 429 and 503 (with the server's
// Retry-After); retryable for other 5xx, 408, 425, connection failures and
// timeouts; permanent for other 3xx and 4xx, 501, TLS verification failures
// and a URL placeholder the payload has no value for. Response errors wrap
// a *StatusError. Errors show the URL without its user info and query
// values, and mask secrets (the signing secret, the URL's password, header
// values of 8 characters or more) in the response body they quote.
func (s *Sink) Deliver(ctx context.Context, d *router.Delivery) error {
	body, contentType := payload(d)
	target, err := s.target(d)
	if err != nil {
		return router.PermanentError(fmt.Errorf("http %s: %w", s.name, err))
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := retryablehttp.NewRequestWithContext(cctx, http.MethodPost, target, body)
	if err != nil {
		return router.PermanentError(fmt.Errorf("http %s: POST %s: %w", s.name, redact.URL(target), unwrapURL(err)))
	}
	s.header(req.Header, d, body, contentType)
	resp, err := s.client.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return s.callError(ctx, cctx, target, err)
	}
	// Read a bounded start of the body, within the timeout, so that the
	// connection can be reused and errors can quote it.
	start, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	return s.classify(target, resp, start)
}

// payload is the body to POST and its content type.
func payload(d *router.Delivery) ([]byte, string) {
	switch {
	case d.DeadLetter != nil:
		return router.DeadLetterDocument(d), "application/json"
	case d.Text:
		return d.Payload, "text/plain; charset=utf-8"
	}
	return d.Payload, "application/json"
}

// header sets the request's headers: switchyard's User-Agent (which the
// configured headers may replace), the configured ones, the content type,
// the delivery's ids, its trace context and the signature.
func (s *Sink) header(h http.Header, d *router.Delivery, body []byte, contentType string) {
	h.Set("User-Agent", "switchyard")
	for k, v := range s.cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", contentType)
	h.Set("X-Switchyard-Delivery-Id", d.ID)
	if id := eventID(d); id != "" {
		h.Set("X-Switchyard-Event-Id", id)
	}
	if d.Rule != "" {
		h.Set("X-Switchyard-Rule", d.Rule)
	}
	h.Set("X-Switchyard-Attempt", strconv.Itoa(d.Attempt))
	setTrace(h, d.OutboundTrace())
	if s.cfg.Sign.Secret != "" {
		h.Set(s.cfg.Sign.Header, Signature(s.cfg.Sign.Secret, s.now(), body))
	}
}

// setTrace sets the trace context's headers: traceparent and tracestate
// (W3C), and X-Amzn-Trace-Id (X-Ray), each in the form the receiver reads,
// converted when the trace arrived in the other.
func setTrace(h http.Header, t router.TraceContext) {
	if tp := t.W3C(); tp != "" {
		h.Set(router.HeaderTraceParent, tp)
		if t.TraceState != "" && t.TraceParent != "" {
			h.Set(router.HeaderTraceState, t.TraceState)
		}
	}
	if x := t.XRayHeader(); x != "" {
		h.Set(router.HeaderXRay, x)
	}
}

// Signature is the signature header's value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>">".
func Signature(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// callError classifies a call that got no response. The caller's ctx
// ending and the per-call timeout (cctx ending) are retryable; otherwise
// retryablehttp's DefaultRetryPolicy judges: connection failures are
// retryable, TLS verification failures and invalid requests are permanent.
func (s *Sink) callError(ctx, cctx context.Context, target string, err error) error {
	where := fmt.Sprintf("http %s: POST %s", s.name, redact.URL(target))
	switch {
	case ctx.Err() != nil:
		return router.RetryableError(fmt.Errorf("%s: %w", where, unwrapURL(err)), 0)
	case cctx.Err() != nil:
		return router.RetryableError(fmt.Errorf("%s: no response within %s (timeout): %w", where, s.cfg.Timeout, unwrapURL(err)), 0)
	}
	// DefaultRetryPolicy reads the *url.Error itself; ctx has not ended.
	if retry, _ := retryablehttp.DefaultRetryPolicy(context.Background(), nil, err); !retry {
		return router.PermanentError(fmt.Errorf("%s: %w", where, unwrapURL(err)))
	}
	return router.RetryableError(fmt.Errorf("%s: %w", where, unwrapURL(err)), 0)
}

// unwrapURL drops a *url.Error's wrapper: its message repeats the URL,
// with the query and user name in the clear.
func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// StatusError is a response other than 2xx.
type StatusError struct {
	// StatusCode and Status are the response's ("404", "404 Not Found").
	StatusCode int
	Status     string
	// RetryAfter is the server's Retry-After, for 429 and 503.
	RetryAfter time.Duration
	// Location is where a 3xx pointed, its user info and query values
	// hidden.
	Location string
	// Body is the start of the response body (at most 512 bytes), on one
	// line, with configured secrets replaced by xxxxx.
	Body string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString(e.Status)
	if e.Location != "" {
		fmt.Fprintf(&b, " to %s (redirects are not followed: point url at the final location)", e.Location)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter.Round(time.Millisecond))
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}

// classify turns a response into nil (2xx) or a delivery error wrapping a
// *StatusError. retryablehttp judges, as in its own loop: DefaultBackoff
// reads Retry-After (seconds or an HTTP date) of a 429 or 503, and
// DefaultRetryPolicy retries 5xx but 501. Two 4xx mean "try again": 408
// (the server gave up waiting for the request) and 425 (it would not risk
// a replay yet).
func (s *Sink) classify(target string, resp *http.Response, body []byte) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	se := &StatusError{StatusCode: code, Status: resp.Status, Body: s.quote(body)}
	wrap := func(se *StatusError) error { return fmt.Errorf("http %s: POST %s: %w", s.name, redact.URL(target), se) }
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		// With min and max 0, DefaultBackoff is the Retry-After or 0.
		se.RetryAfter = retryablehttp.DefaultBackoff(0, 0, 0, resp)
		return router.ThrottledError(wrap(se), se.RetryAfter)
	case code >= 300 && code < 400:
		if loc, err := resp.Location(); err == nil {
			se.Location = s.mask.Replace(redact.URL(loc.String()))
		}
		return router.PermanentError(wrap(se))
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly:
		return router.RetryableError(wrap(se), 0)
	}
	if retry, _ := retryablehttp.DefaultRetryPolicy(context.Background(), resp, nil); retry {
		return router.RetryableError(wrap(se), 0)
	}
	return router.PermanentError(wrap(se))
}

// quote is the start of a response body for an error: at most maxQuote
// bytes, valid UTF-8, on one line, with configured secrets masked.
func (s *Sink) quote(body []byte) string {
	// Mask first, so that no secret is cut in two and half shown.
	q := s.mask.Replace(string(body))
	clipped := len(q) > maxQuote
	if clipped {
		q = q[:maxQuote]
	}
	q = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(q, "\uFFFD"))
	q = strings.TrimSpace(q)
	if clipped {
		q += "..."
	}
	return q
}

func eventID(d *router.Delivery) string {
	if d.Message != nil && d.Message.Event != nil {
		return d.Message.Event.ID
	}
	return ""
}
