package bus

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/router"
)

// Config is the `nats:` block of the config file.
type Config struct {
	// URL is the NATS cluster to join (comma-separated URLs). Empty starts
	// an embedded server.
	URL string `yaml:"url"`
	// StoreDir is where the embedded server keeps JetStream data.
	// Default ./data/nats.
	StoreDir string `yaml:"store_dir"`
	// Listen is where the embedded server accepts NATS clients, host:port,
	// or "none" for in-process use only. Default 127.0.0.1:4222 when the
	// config has a NATS source or target, else none.
	Listen string `yaml:"listen"`

	// Credentials is a .creds file (JWT and NKey seed) for URL.
	Credentials string `yaml:"credentials"`
	// NKey is an NKey seed file for URL.
	NKey string `yaml:"nkey"`
	// User and Password authenticate to URL.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// Token authenticates to URL.
	Token string `yaml:"token"`
	// TLS configures TLS to URL.
	TLS TLS `yaml:"tls"`
}

// TLS is the client side of TLS to a NATS cluster.
type TLS struct {
	// CAFile verifies the servers' certificates instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, for mutual TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// ListenNone is the Listen value for an embedded server that accepts no
// network clients.
const ListenNone = "none"

// DefaultListen is the embedded server's address when it takes clients.
const DefaultListen = "127.0.0.1:4222"

// Embedded reports whether the config asks for an embedded server.
func (c *Config) Embedded() bool { return c.URL == "" }

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if !c.Embedded() {
		return
	}
	if c.StoreDir == "" {
		c.StoreDir = "./data/nats"
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
}

// Validate checks the URLs, the listen address, and that options meant for
// one mode are not given in the other.
func (c *Config) Validate() error {
	var errs []error
	if c.URL != "" {
		for u := range strings.SplitSeq(c.URL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || p.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, p.Scheme) {
				errs = append(errs, router.Fieldf("url", "want nats://host:port (or tls://, ws://, wss://), comma-separated for a cluster"))
				break
			}
		}
	}
	if !c.Embedded() {
		if c.Listen != "" {
			errs = append(errs, router.Fieldf("listen", "only used by the embedded server (nats.url is set)"))
		}
		if c.StoreDir != "" {
			errs = append(errs, router.Fieldf("store_dir", "only used by the embedded server (nats.url is set)"))
		}
	} else if c.Listen != ListenNone {
		host, port, err := net.SplitHostPort(c.Listen)
		ip := net.ParseIP(host)
		switch {
		case err != nil || port == "":
			errs = append(errs, router.Fieldf("listen", "want host:port, such as 127.0.0.1:4222, or none"))
		case host != "localhost" && (ip == nil || !ip.IsLoopback()):
			errs = append(errs, router.Fieldf("listen", "the embedded server has no authentication: listen on a loopback address, or none (to share NATS across hosts, run a NATS cluster with authentication and set nats.url)"))
		}
	}
	if c.Embedded() {
		for _, f := range []struct{ key, val string }{
			{"credentials", c.Credentials}, {"nkey", c.NKey}, {"user", c.User}, {"password", c.Password},
			{"token", c.Token}, {"tls.ca_file", c.TLS.CAFile}, {"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile},
		} {
			if f.val != "" {
				errs = append(errs, router.Fieldf(f.key, "only used with nats.url (the embedded server needs no credentials)"))
			}
		}
	}
	auths := 0
	for _, v := range []string{c.Credentials, c.NKey, c.User, c.Token} {
		if v != "" {
			auths++
		}
	}
	if auths > 1 {
		errs = append(errs, router.Fieldf("", "give one of credentials, nkey, user/password and token"))
	}
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, router.Fieldf("password", "user and password go together"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, router.Fieldf("tls", "cert_file and key_file go together"))
	}
	return errors.Join(errs...)
}
