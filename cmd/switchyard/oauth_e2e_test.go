package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

// oauthCall is one request as curl would make it: method, URL, headers, a
// body; its answer's status, headers and JSON.
func oauthCall(t *testing.T, method, url, body string, header ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s answered %d, not JSON: %q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, m
}

// switchyard run with an http source whose callers authorize with OAuth
// client credentials, as an EventBridge connection of type
// OAUTH_CLIENT_CREDENTIALS does: the token endpoint, events with the token,
// the refusals, the metrics, and neither a token nor a secret in the log.
func TestRun_HTTPIngestOAuthClientCredentials(t *testing.T) {
	const secret, next = "e2e-secret-Zq9vW4", "e2e-next-secret-Kp2xR7"
	t.Setenv("OAUTH_CLIENT_SECRET", secret)
	t.Setenv("OAUTH_CLIENT_SECRET_NEXT", next)
	in := freeAddr(t)
	d := startDaemon(t, awstest.NewTestServer(t, awstest.Options{}), fmt.Sprintf(`
version: 1
sources:
  - name: ingest
    type: http
    listen: %q
    auth:
      type: oauth_client_credentials
      clients:
        - {client_id: eventbridge, client_secret: "${OAUTH_CLIENT_SECRET}"}
        - {client_id: eventbridge, client_secret: "${OAUTH_CLIENT_SECRET_NEXT}"}
targets: [{name: out, type: log}]
rules: [{name: all, pattern: {source: [{prefix: ""}]}, targets: [out]}]
`, in))
	admin := adminAddr(t, d.stderr)
	waitListening(t, in)
	tokenURL, eventsURL := "http://"+in+"/oauth/token", "http://"+in+"/events"
	const form = "application/x-www-form-urlencoded"
	basic := func(secret string) string {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth("eventbridge", secret)
		return r.Header.Get("Authorization")
	}

	// curl -u eventbridge:$OAUTH_CLIENT_SECRET -d grant_type=client_credentials $URL/oauth/token
	status, h, ans := oauthCall(t, "POST", tokenURL, "grant_type=client_credentials", "Authorization", basic(secret), "Content-Type", form)
	token, _ := ans["access_token"].(string)
	if status != http.StatusOK || token == "" || ans["token_type"] != "Bearer" || ans["expires_in"] != 300.0 || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("token request: %d %v %v", status, h, ans)
	}
	// curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$EVENT" $URL/events
	status, _, ans = oauthCall(t, "POST", eventsURL, orderEvent("o-1", "eu"), "Authorization", "Bearer "+token, "Content-Type", "application/json")
	if status != http.StatusOK || ans["accepted"] != 1.0 {
		t.Fatalf("event with the token: %d %v", status, ans)
	}
	waitFor(t, "the event in the log target", func() bool { return strings.Contains(d.stdout.String(), `"id":"o-1"`) })

	// The rotated-in secret, with the parameters as JSON.
	status, _, ans = oauthCall(t, "POST", tokenURL, `{"grant_type": "client_credentials"}`, "Authorization", basic(next), "Content-Type", "application/json")
	second, _ := ans["access_token"].(string)
	if status != http.StatusOK || second == "" || second == token {
		t.Fatalf("token request with the next secret: %d %v", status, ans)
	}
	if status, _, ans = oauthCall(t, "POST", eventsURL, orderEvent("o-2", "us"), "Authorization", "Bearer "+second, "Content-Type", "application/json"); status != http.StatusOK {
		t.Fatalf("event with the second token: %d %v", status, ans)
	}

	for _, tc := range []struct {
		name, url, body, auth string
		status                int
		challenge, error      string
	}{
		{"no token", eventsURL, orderEvent("o-3", "eu"), "", 401, `Bearer realm="switchyard"`, "missing, unknown or expired bearer token"},
		{"unknown token", eventsURL, orderEvent("o-3", "eu"), "Bearer " + token[:40] + "xyz", 401, `error="invalid_token"`, "missing, unknown or expired bearer token"},
		{"the secret as a token", eventsURL, orderEvent("o-3", "eu"), "Bearer " + secret, 401, `error="invalid_token"`, "missing, unknown or expired bearer token"},
		{"wrong secret", tokenURL, "grant_type=client_credentials", basic("not-the-secret"), 401, "Basic ", "invalid_client"},
		{"another grant", tokenURL, "grant_type=password&username=u&password=p", basic(secret), 400, "", "unsupported_grant_type"},
	} {
		header := []string{"Content-Type", "application/json"}
		if tc.url == tokenURL {
			header = []string{"Content-Type", form}
		}
		if tc.auth != "" {
			header = append(header, "Authorization", tc.auth)
		}
		status, h, ans := oauthCall(t, "POST", tc.url, tc.body, header...)
		if status != tc.status || !strings.Contains(h.Get("WWW-Authenticate"), tc.challenge) || !strings.Contains(fmt.Sprint(ans["error"]), tc.error) {
			t.Errorf("%s: %d %q %v; want %d, %q, %q", tc.name, status, h.Get("WWW-Authenticate"), ans, tc.status, tc.challenge, tc.error)
		}
	}

	m := scrape(t, admin)
	for k, v := range map[string]float64{
		`switchyard_http_requests_total{outcome="token_issued",source="ingest"}`: 2,
		`switchyard_http_requests_total{outcome="accepted",source="ingest"}`:     2,
		`switchyard_http_requests_total{outcome="unauthorized",source="ingest"}`: 4,
		`switchyard_http_requests_total{outcome="bad_request",source="ingest"}`:  1,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if strings.Contains(d.stdout.String(), `"id":"o-3"`) {
		t.Error("a refused event reached the target")
	}
	if code := d.stop(); code != exitOK {
		t.Fatalf("daemon exited %d", code)
	}
	logs := d.stderr.String() + d.stdout.String()
	for _, s := range []string{token, second, secret, next, "not-the-secret"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q", s)
		}
	}
	if !strings.Contains(logs, `"msg":"issuing OAuth tokens"`) || !strings.Contains(logs, `"msg":"token issued"`) {
		t.Errorf("the log lacks the token endpoint:\n%s", logs)
	}
}
