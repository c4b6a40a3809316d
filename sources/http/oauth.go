package http

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// OAuth client credentials (RFC 6749 §4.4), as an EventBridge connection of
// type OAUTH_CLIENT_CREDENTIALS uses them: it asks the token endpoint for a
// token with its client id and secret, sends the token as
// "Authorization: Bearer" with each event (RFC 6750), and asks for a new one
// when an event is answered 401 or 407, or when its token expires within a
// minute.
//
// AWS does not say how the client authenticates to the token endpoint, nor
// how the request's parameters are encoded, so the endpoint takes every
// reasonable form: the credentials as Basic auth (RFC 6749 §2.3.1, the id and
// secret form-encoded or not) or as client_id and client_secret parameters;
// the parameters in the query, a form body or a JSON object; GET, POST or
// PUT, the methods a connection can be given. Parameters the connection adds
// for other servers (audience, scope) are accepted and ignored: a token
// lets its holder post events to this source, nothing else.

// maxTokens is the most live tokens a source holds. EventBridge holds one
// token per connection and asks for another only when it is refused or
// about to expire, so a few are live at a time; the bound is for a client
// asking in a loop. Past it the oldest token is dropped: its holder is
// refused with 401 and gets a new one.
const maxTokens = 1024

// maxTokenRequest is the largest body a token request may have.
const maxTokenRequest = 16 << 10

// tokenBytes is how many random bytes a token has.
const tokenBytes = 32

// tokens are the live tokens a source issued: their SHA-256 digests, with
// their expiry, in memory. Safe for concurrent use.
//
// A token is looked up by its digest, not compared byte by byte: the time a
// lookup takes may depend on the digest, which tells a caller guessing
// tokens nothing about a live token.
type tokens struct {
	mu       sync.Mutex
	lifetime time.Duration
	max      int
	now      func() time.Time
	expiry   map[[sha256.Size]byte]time.Time
	// order is the digests of expiry in the order they were issued, the
	// oldest first, which is also the order they expire in (every token
	// has the same lifetime).
	order [][sha256.Size]byte
}

func newTokens(lifetime time.Duration) *tokens {
	return &tokens{lifetime: lifetime, max: maxTokens, now: time.Now, expiry: map[[sha256.Size]byte]time.Time{}}
}

// issue makes a new token and reports how long it lives. The token is
// random, tokenBytes from crypto/rand, in unpadded base64url (RFC 6750's
// b64token); only its digest is kept.
func (t *tokens) issue() (string, time.Duration) {
	var b [tokenBytes]byte
	rand.Read(b[:]) // never fails: the runtime crashes rather than return weak bytes
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.prune(now)
	for len(t.expiry) >= t.max && len(t.order) > 0 {
		t.dropOldest()
	}
	d := sha256.Sum256([]byte(tok))
	t.expiry[d] = now.Add(t.lifetime)
	t.order = append(t.order, d)
	return tok, t.lifetime
}

// valid reports whether tok is a live token: one issued, not expired and not
// dropped.
func (t *tokens) valid(tok string) bool {
	if tok == "" {
		return false
	}
	d := sha256.Sum256([]byte(tok))
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.prune(now)
	exp, ok := t.expiry[d]
	return ok && now.Before(exp)
}

// live is how many tokens are held.
func (t *tokens) live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune(t.now())
	return len(t.expiry)
}

// prune drops the expired tokens, which are the oldest. t.mu is held.
func (t *tokens) prune(now time.Time) {
	for len(t.order) > 0 {
		exp, ok := t.expiry[t.order[0]]
		if ok && now.Before(exp) {
			return
		}
		t.dropOldest()
	}
}

// dropOldest drops the oldest token. t.mu is held.
func (t *tokens) dropOldest() {
	if len(t.order) == 0 {
		return
	}
	delete(t.expiry, t.order[0])
	t.order[0] = [sha256.Size]byte{}
	t.order = t.order[1:]
	if len(t.order) == 0 {
		t.order = nil // let the array go
	}
}

// setClock makes the tokens tell time with now (tests).
func (t *tokens) setClock(now func() time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.now = now
}

// tokenAnswer is the body of a token response (RFC 6749 §5.1).
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// oauthError is a token error response (RFC 6749 §5.2).
type oauthError struct {
	status int
	code   string // invalid_request, invalid_client, unsupported_grant_type
	desc   string
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func invalidRequest(format string, args ...any) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...)}
}

// handleToken answers a token request: 200 with a token for a client with
// the right credentials asking for grant_type client_credentials; 401
// invalid_client for missing or wrong credentials, 400 invalid_request or
// unsupported_grant_type for a malformed request or another grant, 405 for
// a method a connection cannot use.
func (s *Source) handleToken(w http.ResponseWriter, r *http.Request) {
	s.stats.Requests.Add(1)
	if r.URL.Path != s.cfg.Auth.TokenPath {
		s.stats.NotFound.Add(1)
		s.fail(w, http.StatusNotFound, "no such path: events are posted to "+s.cfg.Path)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		s.stats.WrongMethod.Add(1)
		w.Header().Set("Allow", "GET, POST, PUT")
		writeOAuthError(w, &oauthError{http.StatusMethodNotAllowed, "invalid_request", "method " + r.Method + " not allowed: ask for a token with POST (or GET or PUT)"})
		return
	}
	params, err := tokenParams(w, r)
	if err != nil {
		s.stats.BadRequest.Add(1)
		s.log.Debug("token request refused", "error", err.Error())
		writeOAuthError(w, err)
		return
	}
	id, err := s.authenticate(r, params)
	if err != nil {
		if err.status == http.StatusUnauthorized {
			s.stats.Unauthorized.Add(1)
		} else {
			s.stats.BadRequest.Add(1)
		}
		s.log.Debug("token request refused", "error", err.Error())
		writeOAuthError(w, err)
		return
	}
	grant, err := params.single("grant_type")
	if err == nil && grant == "" {
		err = invalidRequest("grant_type is missing: want client_credentials")
	}
	if err == nil && grant != "client_credentials" {
		err = &oauthError{http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q: this endpoint issues tokens for client_credentials only", grant)}
	}
	if err != nil {
		s.stats.BadRequest.Add(1)
		s.log.Debug("token request refused", "client_id", id, "error", err.Error())
		writeOAuthError(w, err)
		return
	}
	tok, lifetime := s.tokens.issue()
	s.stats.Tokens.Add(1)
	s.log.Debug("token issued", "client_id", id, "expires_in", int(lifetime/time.Second))
	noStore(w.Header())
	writeJSON(w, http.StatusOK, tokenAnswer{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(lifetime / time.Second)})
}

// authenticate finds the client of a token request, by its Basic auth when
// it has an Authorization header (which then decides alone), else by its
// client_id and client_secret parameters. Every configured client is
// compared, in constant time.
func (s *Source) authenticate(r *http.Request, p params) (id string, _ *oauthError) {
	if r.Header.Get("Authorization") != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "", &oauthError{http.StatusUnauthorized, "invalid_client", "the Authorization header is not Basic auth: send the client id and secret as Basic auth"}
		}
		if s.client(user, pass) {
			return user, nil
		}
		// RFC 6749 §2.3.1 has the id and secret form-encoded before they
		// are put in the header; not every client does it.
		u, uerr := url.QueryUnescape(user)
		pw, perr := url.QueryUnescape(pass)
		if uerr == nil && perr == nil && (u != user || pw != pass) && s.client(u, pw) {
			return u, nil
		}
		return "", &oauthError{http.StatusUnauthorized, "invalid_client", "wrong client credentials"}
	}
	user, err := p.single("client_id")
	if err != nil {
		return "", err
	}
	pass, err := p.single("client_secret")
	if err != nil {
		return "", err
	}
	if user == "" && pass == "" {
		return "", &oauthError{http.StatusUnauthorized, "invalid_client", "no client credentials: send the client id and secret as Basic auth, or as client_id and client_secret"}
	}
	if !s.client(user, pass) {
		return "", &oauthError{http.StatusUnauthorized, "invalid_client", "wrong client credentials"}
	}
	return user, nil
}

// client reports whether id and secret are a configured client's. It
// compares them with every client, each through its SHA-256 so that
// lengths leak nothing, and does not stop at a match.
func (s *Source) client(id, secret string) bool {
	ok := 0
	for _, c := range s.cfg.Auth.Clients {
		ok |= equal(id, c.ClientID) & equal(secret, c.ClientSecret)
	}
	return ok == 1
}

// params are a token request's parameters: its query's, then its body's.
type params map[string][]string

// single returns the value of the parameter name, "" when it is missing.
// A parameter sent more than once is an error (RFC 6749 §3.2) unless every
// value is the same: a connection that adds grant_type itself to the one
// it was configured with sends it twice.
func (p params) single(name string) (string, *oauthError) {
	vs := p[name]
	for _, v := range vs[min(1, len(vs)):] {
		if v != vs[0] {
			return "", invalidRequest("%s is given more than once, with different values", name)
		}
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// tokenParams reads the parameters of a token request: those of its query
// and those of its body, a form (application/x-www-form-urlencoded) or a
// JSON object of strings (application/json); a body without a content type
// is JSON when it starts with "{", else a form.
func tokenParams(w http.ResponseWriter, r *http.Request) (params, *oauthError) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidRequest("malformed query: %v", err)
	}
	p := params(q)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenRequest))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, invalidRequest("body larger than %d bytes", maxTokenRequest)
		}
		return nil, invalidRequest("reading the body: %v", err)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return p, nil
	}
	ctype := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ctype)
	switch {
	case ctype == "" && body[0] == '{', err == nil && mt == "application/json":
		return p, jsonParams(body, p)
	case ctype == "", err == nil && mt == "application/x-www-form-urlencoded":
		f, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, invalidRequest("malformed form body: %v", err)
		}
		for k, vs := range f {
			p[k] = append(p[k], vs...)
		}
		return p, nil
	}
	return nil, invalidRequest("content type %q: send the parameters as application/x-www-form-urlencoded or application/json", ctype)
}

// jsonParams adds the members of a JSON object to p. The parameters this
// endpoint reads must be strings; others, of any type, are ignored.
func jsonParams(body []byte, p params) *oauthError {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return invalidRequest("the JSON body must be an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return invalidRequest("malformed JSON body: %v", err)
		}
		key := t.(string) // object keys are strings, or Token fails
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return invalidRequest("malformed JSON body: %v", err)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			switch key {
			case "grant_type", "client_id", "client_secret":
				return invalidRequest("%s must be a string", key)
			}
			continue
		}
		p[key] = append(p[key], s)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return invalidRequest("malformed JSON body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidRequest("malformed JSON body: more after the object")
	}
	return nil
}

// noStore keeps a response with credentials out of caches (RFC 6749 §5.1).
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// writeOAuthError answers a token request with an error (RFC 6749 §5.2),
// with a Basic challenge when it is invalid_client (which the RFC requires
// when the client tried Basic auth, and which says how to authenticate
// when it did not).
func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	noStore(w.Header())
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="switchyard", charset="UTF-8"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// bearer returns the token of an "Authorization: Bearer" header; ok is
// false when the header is missing or of another scheme.
func bearer(h string) (tok string, ok bool) {
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// bearerChallenge sets the WWW-Authenticate header of a POST of events
// refused for its token (RFC 6750 §3): with error="invalid_token" when it
// came with one, bare when it came with none.
func bearerChallenge(h http.Header, r *http.Request) {
	if _, ok := bearer(r.Header.Get("Authorization")); !ok {
		h.Set("WWW-Authenticate", `Bearer realm="switchyard"`)
		return
	}
	h.Set("WWW-Authenticate", `Bearer realm="switchyard", error="invalid_token", error_description="the access token is unknown or expired: get a new one"`)
}
