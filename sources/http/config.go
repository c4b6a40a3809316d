// Package http is the HTTP ingest source: it accepts EventBridge events by
// POST, in the shape EventBridge API destinations send them, and answers
// 2xx only once each event is safely handed off.
package http

import (
	"errors"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a source of `type: http`.
type Config struct {
	// Listen is the address to listen on, host:port. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// Path is the URL path events are posted to. Default /events.
	Path string `yaml:"path"`
	// Auth says how callers authenticate. Required unless Listen is a
	// loopback address.
	Auth Auth `yaml:"auth"`
	// MaxBody is the largest request body accepted. Default 1MiB.
	MaxBody size.Bytes `yaml:"max_body"`
	// Envelope says how posted JSON objects become events. Default auto.
	Envelope router.Envelope `yaml:"envelope"`
	// Ack says when a POST is answered 2xx: delivered (every delivery of
	// its events has resolved) or persisted (its events are stored in a
	// JetStream stream, to be delivered from there). Default delivered.
	Ack string `yaml:"ack"`
	// ResponseTimeout bounds how long a POST waits for its deliveries with
	// ack: delivered before it is answered 503 (and retried by the
	// caller). Default 4s, inside the 5s EventBridge API destinations wait.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// Stream is the JetStream stream events are persisted to with
	// ack: persisted. Default StreamFor(the source's name).
	Stream string `yaml:"stream"`
	// AckWait is how long an event taken from the stream may go unacked
	// before it is redelivered: how soon the events of a crashed instance
	// come back. Default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// Buffer is the most the stream holds with ack: persisted; beyond it
	// POSTs are answered 429. Default 1GiB.
	Buffer size.Bytes `yaml:"buffer"`
	// TLS serves HTTPS with this certificate.
	TLS TLS `yaml:"tls"`

	// MaxInFlight is the file's max_in_flight, set by the daemon: it bounds
	// the events of one POST with ack: delivered (all of them are in flight
	// until it is answered), and the events taken from the stream and not
	// yet acked with persisted. Default 1000.
	MaxInFlight int `yaml:"-"`
	// Shared says other instances may use the stream (nats.url is set):
	// an existing stream and consumer with other settings are an error,
	// not brought to this config's.
	Shared bool `yaml:"-"`
}

// Auth is how HTTP callers authenticate.
type Auth struct {
	// Type is none, api_key, basic or oauth_client_credentials. Default
	// none.
	Type string `yaml:"type"`
	// Header carries the key for api_key. Default x-api-key.
	Header string `yaml:"header"`
	// Keys are the accepted keys for api_key (several, to rotate them); put
	// them in the environment and write "${NAME}".
	Keys []string `yaml:"keys"`
	// Username and Password are the credentials for basic.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Clients are the OAuth clients that may get tokens with
	// oauth_client_credentials (several, to rotate a secret: the same id
	// with the old and the new secret).
	Clients []Client `yaml:"clients"`
	// TokenPath is the URL path of the token endpoint that
	// oauth_client_credentials serves on the source's listener, the
	// connection's authorization endpoint. Default /oauth/token.
	TokenPath string `yaml:"token_path"`
	// TokenLifetime is how long a token issued with
	// oauth_client_credentials is accepted, 2m to 1h. Default 5m.
	TokenLifetime time.Duration `yaml:"token_lifetime"`
}

// Client is an OAuth client: the id and secret an EventBridge connection
// authorizes with (its ClientParameters).
type Client struct {
	// ClientID is the client's id.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the client's secret; put it in the environment and
	// write "${NAME}".
	ClientSecret string `yaml:"client_secret"`
}

// TLS is the server certificate.
type TLS struct {
	// CertFile and KeyFile are PEM files: the certificate (with its chain)
	// and its key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Acks.
const (
	AckDelivered = "delivered"
	AckPersisted = "persisted"
)

// AuthOAuth is the auth type of OAuth client credentials: callers get a
// token from the source's token endpoint and post events with it.
const AuthOAuth = "oauth_client_credentials"

// The bounds of token_lifetime. EventBridge fetches a new token on an
// invocation when its token expires within 60 seconds, so a shorter
// lifetime would have it fetch one for almost every event.
const (
	minTokenLifetime = 2 * time.Minute
	maxTokenLifetime = time.Hour
)

// maxClientField is the longest client id or secret an EventBridge
// connection takes.
const maxClientField = 512

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Path == "" {
		c.Path = "/events"
	}
	if c.Auth.Type == "" {
		c.Auth.Type = "none"
	}
	if c.Auth.Type == "api_key" && c.Auth.Header == "" {
		c.Auth.Header = "x-api-key"
	}
	if c.Auth.Type == AuthOAuth {
		if c.Auth.TokenPath == "" {
			c.Auth.TokenPath = "/oauth/token"
		}
		if c.Auth.TokenLifetime == 0 {
			c.Auth.TokenLifetime = 5 * time.Minute
		}
	}
	if c.MaxBody == 0 {
		c.MaxBody = size.MiB
	}
	if c.Envelope == "" {
		c.Envelope = router.EnvelopeAuto
	}
	if c.Ack == "" {
		c.Ack = AckDelivered
	}
	if c.Ack == AckDelivered && c.ResponseTimeout == 0 {
		c.ResponseTimeout = 4 * time.Second
	}
	if c.Ack == AckPersisted && c.Buffer == 0 {
		c.Buffer = size.GiB
	}
	if c.Ack == AckPersisted && c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
}

// StreamFor is the default stream of a source named name.
func StreamFor(name string) string { return "SWITCHYARD_INGEST_" + names.Token(name) }

// Validate checks the address, the path, authentication (required off
// loopback), the limits, the ack mode and the TLS files.
func (c *Config) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil || port == "" {
		errs = append(errs, router.Fieldf("listen", "want host:port, such as 127.0.0.1:8080"))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, router.Fieldf("path", "must start with /"))
	}
	if c.Auth.Type != AuthOAuth {
		for _, f := range []struct {
			key string
			set bool
		}{{"clients", len(c.Auth.Clients) > 0}, {"token_path", c.Auth.TokenPath != ""}, {"token_lifetime", c.Auth.TokenLifetime != 0}} {
			if f.set {
				errs = append(errs, router.Fieldf("auth."+f.key, "for auth.type %s", AuthOAuth))
			}
		}
	}
	switch c.Auth.Type {
	case "none":
		if err == nil && !isLoopback(host) {
			errs = append(errs, router.Fieldf("auth", "required when listening on %s, which is not a loopback address (set auth.type: api_key, basic or %s)", c.Listen, AuthOAuth))
		}
		for _, f := range []struct{ key, val string }{{"header", c.Auth.Header}, {"username", c.Auth.Username}, {"password", c.Auth.Password}} {
			if f.val != "" {
				errs = append(errs, router.Fieldf("auth."+f.key, "unused with auth.type none"))
			}
		}
		if len(c.Auth.Keys) > 0 {
			errs = append(errs, router.Fieldf("auth.keys", "unused with auth.type none"))
		}
	case "api_key":
		if len(c.Auth.Keys) == 0 {
			errs = append(errs, router.Fieldf("auth.keys", "api_key needs at least one key"))
		}
		if slices.Contains(c.Auth.Keys, "") {
			errs = append(errs, router.Fieldf("auth.keys", "keys must not be empty (is an environment variable unset?)"))
		}
		if c.Auth.Username != "" || c.Auth.Password != "" {
			errs = append(errs, router.Fieldf("auth", "username and password are for auth.type basic"))
		}
	case "basic":
		if c.Auth.Username == "" || strings.Contains(c.Auth.Username, ":") {
			errs = append(errs, router.Fieldf("auth.username", "required, without a colon"))
		}
		if c.Auth.Password == "" {
			errs = append(errs, router.Fieldf("auth.password", "required (is an environment variable unset?)"))
		}
		if len(c.Auth.Keys) > 0 || c.Auth.Header != "" {
			errs = append(errs, router.Fieldf("auth", "header and keys are for auth.type api_key"))
		}
	case AuthOAuth:
		errs = append(errs, c.validateOAuth()...)
	default:
		errs = append(errs, router.Fieldf("auth.type", "unknown auth type %q (valid: none, api_key, basic, %s)", c.Auth.Type, AuthOAuth))
	}
	if c.MaxBody < 1024 || c.MaxBody > 64*size.MiB {
		errs = append(errs, router.Fieldf("max_body", "%s is outside the range of 1KiB to 64MiB", c.MaxBody))
	}
	switch c.Ack {
	case AckDelivered:
		if c.ResponseTimeout < 100*time.Millisecond {
			errs = append(errs, router.Fieldf("response_timeout", "must be at least 100ms"))
		}
		if c.Stream != "" || c.Buffer != 0 || c.AckWait != 0 {
			errs = append(errs, router.Fieldf("ack", "stream, buffer and ack_wait are for ack: persisted"))
		}
	case AckPersisted:
		if c.ResponseTimeout != 0 {
			errs = append(errs, router.Fieldf("response_timeout", "for ack: delivered; with persisted a POST is answered once stored"))
		}
		if c.Stream != "" && strings.ContainsAny(c.Stream, " \t.*>/\\") {
			errs = append(errs, router.Fieldf("stream", "stream names may not contain spaces, ., *, >, / or \\"))
		}
		if c.AckWait < time.Second {
			errs = append(errs, router.Fieldf("ack_wait", "must be at least 1s"))
		}
		if c.Buffer < size.MiB {
			errs = append(errs, router.Fieldf("buffer", "must be at least 1MiB"))
		}
	default:
		errs = append(errs, router.Fieldf("ack", "unknown value %q (valid: delivered, persisted)", c.Ack))
	}
	if c.Envelope == router.EnvelopeSNS {
		errs = append(errs, router.Fieldf("envelope", "sns is not accepted over HTTP (valid: auto, eventbridge, raw)"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, router.Fieldf("tls", "cert_file and key_file go together"))
	}
	for _, f := range []struct{ key, path string }{{"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				errs = append(errs, router.Fieldf(f.key, "%v", err))
			}
		}
	}
	return errors.Join(errs...)
}

// tokenPathRE is a path of segments that are neither empty nor dot
// segments, in characters that need no escaping: the token path is a
// ServeMux pattern, where braces would be wildcards and a final slash a
// subtree.
// It is compiled on first use: package-level regexps cost every start.
var tokenPathRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$`)
})

// validateOAuth checks the clients, the token path and the lifetime of
// auth.type oauth_client_credentials.
func (c *Config) validateOAuth() []error {
	var errs []error
	a := c.Auth
	if a.Header != "" || len(a.Keys) > 0 || a.Username != "" || a.Password != "" {
		errs = append(errs, router.Fieldf("auth", "header, keys, username and password are not used with auth.type %s (clients are)", AuthOAuth))
	}
	if len(a.Clients) == 0 {
		errs = append(errs, router.Fieldf("auth.clients", "%s needs at least one client (client_id and client_secret)", AuthOAuth))
	}
	type pair struct{ id, secret string }
	seen := map[pair]bool{}
	for i, cl := range a.Clients {
		p := "auth.clients[" + strconv.Itoa(i) + "]"
		switch {
		case cl.ClientID == "":
			errs = append(errs, router.Fieldf(p+".client_id", "required"))
		case strings.Contains(cl.ClientID, ":") || strings.ContainsFunc(cl.ClientID, unicode.IsControl):
			errs = append(errs, router.Fieldf(p+".client_id", "may not contain a colon or control characters (it is sent as the user of Basic auth)"))
		case len(cl.ClientID) > maxClientField:
			errs = append(errs, router.Fieldf(p+".client_id", "longer than %d bytes, the most an EventBridge connection takes", maxClientField))
		}
		switch {
		case cl.ClientSecret == "":
			errs = append(errs, router.Fieldf(p+".client_secret", "required (is an environment variable unset?)"))
		case strings.ContainsFunc(cl.ClientSecret, unicode.IsControl):
			errs = append(errs, router.Fieldf(p+".client_secret", "may not contain control characters"))
		case len(cl.ClientSecret) > maxClientField:
			errs = append(errs, router.Fieldf(p+".client_secret", "longer than %d bytes, the most an EventBridge connection takes", maxClientField))
		}
		if seen[pair{cl.ClientID, cl.ClientSecret}] && cl.ClientID != "" && cl.ClientSecret != "" {
			errs = append(errs, router.Fieldf(p, "client %q is listed twice with the same secret", cl.ClientID))
		}
		seen[pair{cl.ClientID, cl.ClientSecret}] = true
	}
	switch {
	case !tokenPathRE().MatchString(a.TokenPath):
		errs = append(errs, router.Fieldf("auth.token_path", "%q: want a path such as /oauth/token (segments of letters, digits, -, _, . and ~, no final /)", a.TokenPath))
	case a.TokenPath == c.Path:
		errs = append(errs, router.Fieldf("auth.token_path", "%s is the path events are posted to: the token endpoint needs a path of its own", a.TokenPath))
	}
	if a.TokenLifetime < minTokenLifetime || a.TokenLifetime > maxTokenLifetime {
		errs = append(errs, router.Fieldf("auth.token_lifetime", "%s is outside the range of 2m to 1h (EventBridge fetches a new token when its token expires within 60s)", size.Duration(a.TokenLifetime)))
	}
	return errs
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
