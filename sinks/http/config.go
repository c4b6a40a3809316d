// Package http is the HTTP target: it POSTs each delivery to a URL, usually
// the application container next to switchyard.
package http

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: http`.
type Config struct {
	// URL is where deliveries are POSTed. Required.
	URL string `yaml:"url"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers"`
	// Sign adds an HMAC-SHA256 signature of the body, when a secret is set.
	Sign Sign `yaml:"sign"`
}

// Sign configures the body signature.
type Sign struct {
	// Secret is the HMAC key; put it in the environment and write "${NAME}".
	Secret string `yaml:"secret"`
	// Header carries the signature. Default x-switchyard-signature.
	Header string `yaml:"header"`
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Sign.Secret != "" && c.Sign.Header == "" {
		c.Sign.Header = "x-switchyard-signature"
	}
}

// Validate checks the URL and headers.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, router.Fieldf("url", "required"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, router.Fieldf("url", "want an http:// or https:// URL"))
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") || http.CanonicalHeaderKey(k) == "" {
			errs = append(errs, router.Fieldf("headers", "invalid header name %q", k))
		}
	}
	if c.Sign.Header != "" && c.Sign.Secret == "" {
		errs = append(errs, router.Fieldf("sign.secret", "required when sign.header is set"))
	}
	return errors.Join(errs...)
}
