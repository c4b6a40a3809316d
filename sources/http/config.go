// Package http is the HTTP ingest source: it accepts EventBridge events by
// POST, in the shape EventBridge API destinations send them.
package http

import (
	"errors"
	"net"
	"slices"
	"strings"

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
}

// Auth is how HTTP callers authenticate.
type Auth struct {
	// Type is none or api_key. Default none.
	Type string `yaml:"type"`
	// Header carries the key for api_key. Default x-api-key.
	Header string `yaml:"header"`
	// Keys are the accepted keys for api_key; put them in the environment
	// and write "${NAME}".
	Keys []string `yaml:"keys"`
}

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
}

// Validate checks the address, the path and that a non-loopback listener
// has authentication.
func (c *Config) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil || port == "" {
		errs = append(errs, router.Fieldf("listen", "want host:port, such as 127.0.0.1:8080"))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, router.Fieldf("path", "must start with /"))
	}
	switch c.Auth.Type {
	case "none":
		if err == nil && !isLoopback(host) {
			errs = append(errs, router.Fieldf("auth", "required when listening on %s, which is not a loopback address (set auth.type: api_key)", c.Listen))
		}
	case "api_key":
		if len(c.Auth.Keys) == 0 {
			errs = append(errs, router.Fieldf("auth.keys", "api_key needs at least one key"))
		}
		if slices.Contains(c.Auth.Keys, "") {
			errs = append(errs, router.Fieldf("auth.keys", "keys must not be empty (is an environment variable unset?)"))
		}
	default:
		errs = append(errs, router.Fieldf("auth.type", "unknown auth type %q (valid: none, api_key)", c.Auth.Type))
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
