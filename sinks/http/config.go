// Package http is the HTTP target: it POSTs each delivery to a URL, usually
// the application container next to switchyard.
package http

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: http`.
type Config struct {
	// URL is where deliveries are POSTed. Required. Its path and query may
	// hold <name> placeholders: the top-level fields of the delivery's
	// payload, and <switchyard.delivery-id>, <switchyard.event-id> and
	// <switchyard.rule>; values are escaped for where they stand.
	URL string `yaml:"url"`
	// Headers are added to every request. They may not set the headers
	// switchyard sets itself (Content-Type, X-Switchyard-*, the signature
	// header) or the ones HTTP manages (Host, Content-Length, ...); they may
	// replace User-Agent.
	Headers map[string]string `yaml:"headers"`
	// Sign adds an HMAC-SHA256 signature of the body, when a secret is set.
	Sign Sign `yaml:"sign"`
	// Timeout bounds one call: connecting, sending, and reading the
	// response. Default 10s. The policy's timeout applies around it too.
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures how https:// URLs are verified.
	TLS TLS `yaml:"tls"`
}

// Sign configures the body signature.
type Sign struct {
	// Secret is the HMAC key; put it in the environment and write "${NAME}".
	Secret string `yaml:"secret"`
	// Header carries the signature. Default x-switchyard-signature.
	Header string `yaml:"header"`
}

// TLS configures certificate verification for https:// URLs.
type TLS struct {
	// CAFile is a PEM file of the certificate authorities to trust instead
	// of the system's (like curl --cacert). It is read when the sink is
	// built. Default: the system's roots.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any certificate from the server: anyone
	// on the path can read and change deliveries. For experiments only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// DefaultTimeout is the default of Config.Timeout.
const DefaultTimeout = 10 * time.Second

// DefaultSignHeader is the default of Sign.Header.
const DefaultSignHeader = "x-switchyard-signature"

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Sign.Secret != "" && c.Sign.Header == "" {
		c.Sign.Header = DefaultSignHeader
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// reservedHeaders are set by switchyard or by HTTP itself; configured
// headers may not replace them (X-Switchyard-* is reserved as a prefix).
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Transfer-Encoding": true,
	"Host": true, "Connection": true, "Te": true, "Trailer": true, "Upgrade": true,
}

// Validate checks the URL, headers, timeout and TLS settings. Messages never
// quote a header value or the secret: they may come from the environment.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(placeholderRE().ReplaceAllString(c.URL, "p"))
	switch {
	case c.URL == "":
		errs = append(errs, router.Fieldf("url", "required"))
	case placeholderRE().MatchString(authority(c.URL)):
		errs = append(errs, router.Fieldf("url", "placeholders may stand in the path and query, not in the host"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, router.Fieldf("url", "want an http:// or https:// URL"))
	}
	https := err == nil && u.Scheme == "https"
	for k, v := range c.Headers {
		canon := http.CanonicalHeaderKey(k)
		switch {
		case !validHeaderName(k):
			errs = append(errs, router.Fieldf("headers", "invalid header name %q", k))
		case reservedHeaders[canon] || strings.HasPrefix(canon, "X-Switchyard-"):
			errs = append(errs, router.Fieldf("headers", "%s is set by switchyard or HTTP itself and cannot be configured", canon))
		case c.Sign.Header != "" && strings.EqualFold(k, c.Sign.Header):
			errs = append(errs, router.Fieldf("headers", "%s carries the signature (sign.header) and cannot be configured", canon))
		case !validHeaderValue(v):
			errs = append(errs, router.Fieldf("headers", "the value of %s has a line break or another control character", canon))
		}
	}
	if c.Sign.Header != "" {
		canon := http.CanonicalHeaderKey(c.Sign.Header)
		switch {
		case c.Sign.Secret == "":
			errs = append(errs, router.Fieldf("sign.secret", "required when sign.header is set"))
		case !validHeaderName(c.Sign.Header):
			errs = append(errs, router.Fieldf("sign.header", "invalid header name %q", c.Sign.Header))
		case reservedHeaders[canon] || (strings.HasPrefix(canon, "X-Switchyard-") && canon != http.CanonicalHeaderKey(DefaultSignHeader)):
			errs = append(errs, router.Fieldf("sign.header", "%s is set by switchyard or HTTP itself; choose another header", canon))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, router.Fieldf("timeout", "%s is negative; want a duration such as 10s", c.Timeout))
	}
	if c.URL != "" && err == nil && !https {
		if c.TLS.CAFile != "" {
			errs = append(errs, router.Fieldf("tls.ca_file", "applies only to https:// URLs"))
		}
		if c.TLS.InsecureSkipVerify {
			errs = append(errs, router.Fieldf("tls.insecure_skip_verify", "applies only to https:// URLs"))
		}
	}
	if c.TLS.CAFile != "" && c.TLS.InsecureSkipVerify {
		errs = append(errs, router.Fieldf("tls.insecure_skip_verify", "verifies nothing, so tls.ca_file would be ignored; set one of them"))
	}
	return errors.Join(errs...)
}

// authority is the user info, host and port of a URL string, or "".
func authority(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// validHeaderName reports whether k is an HTTP token (RFC 9110 5.1).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v has no control characters other than
// tab (RFC 9110 5.5).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
