package http

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/router"
)

var placeholderRE = router.PlaceholderRE

// target is the URL to POST a delivery to: cfg.URL with its placeholders
// filled, path-escaped in the path and query-escaped after the "?". A
// placeholder the delivery has no value for is an error: posting to a
// half-filled URL would reach the wrong resource.
func (s *Sink) target(d *router.Delivery) (string, error) {
	if len(s.holes) == 0 {
		return s.cfg.URL, nil
	}
	raw := s.cfg.URL
	query := strings.IndexAny(raw, "?#")
	vars := router.DeliveryValues(d)
	var b strings.Builder
	last := 0
	for _, h := range s.holes {
		name := raw[h[0]+1 : h[1]-1]
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("url placeholder <%s> has no value: the payload has no top-level field %q", name, name)
		}
		b.WriteString(raw[last:h[0]])
		if query >= 0 && h[0] > query {
			b.WriteString(url.QueryEscape(v))
		} else {
			b.WriteString(url.PathEscape(v))
		}
		last = h[1]
	}
	b.WriteString(raw[last:])
	return b.String(), nil
}

// masker hides configured secrets in text a server sends back (a receiver
// may echo the request): the signing secret and the URL's password always;
// header values, their words and the URL's query values when they are 8
// characters or longer, since shorter ones are unlikely secrets and would
// mask ordinary words.
func masker(cfg Config) *strings.Replacer {
	var secrets []string
	add := func(v string, min int) {
		if len(v) >= min {
			secrets = append(secrets, v)
		}
	}
	add(cfg.Sign.Secret, 1)
	if u, err := url.Parse(placeholderRE().ReplaceAllString(cfg.URL, "")); err == nil {
		if u.User != nil {
			p, _ := u.User.Password()
			add(p, 1)
			add(u.User.Username(), 8)
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v, 8)
			}
		}
	}
	for _, v := range cfg.Headers {
		add(v, 8)
		for _, w := range strings.Fields(v) {
			add(w, 8)
		}
	}
	// Longest first: the replacer tries its arguments in order.
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	secrets = slices.Compact(secrets)
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, "xxxxx")
	}
	return strings.NewReplacer(pairs...)
}
