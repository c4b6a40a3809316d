// Package redact hides the credentials people write into URLs (a NATS
// token or password, basic auth in an HTTP target's URL, an API key in its
// query) before a URL is logged, put in an error or shown in /status.
package redact

import (
	"net/url"
	"strings"
)

// Mask is what a credential is replaced by.
const Mask = "xxxxx"

// URL returns raw with its user info (user and password, or a token) and
// every query value replaced by xxxxx, and its fragment dropped. Text
// without "://" and "/" that holds an "@" (user info and host:port, as
// nats.go accepts) loses what comes before the last "@"; other text without
// "://" (a file path, ssm:NAME) is returned as it is. A URL that does not parse
// is "(unparsable URL)": its parts cannot be told apart. A URL with nothing
// to hide is returned as it is.
func URL(raw string) string {
	if !strings.Contains(raw, "://") {
		if i := strings.LastIndexByte(raw, '@'); i >= 0 && !strings.Contains(raw, "/") {
			return Mask + raw[i:]
		}
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		return raw // nothing to hide: as written, not re-encoded
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{Mask}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// URLs is URL for each of a comma-separated list (nats.url).
func URLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = URL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}
