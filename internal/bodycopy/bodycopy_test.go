package bodycopy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// closeTracker records whether the caller's body was closed, and fails
// reads after that, as smithy-go's closed body does.
type closeTracker struct {
	r      io.Reader
	closed bool
}

func (c *closeTracker) Read(p []byte) (int, error) {
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	return c.r.Read(p)
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// The server gets the whole body; the caller's body is read and closed
// before the request leaves, so closing it later changes nothing.
func TestTransportSendsACopy(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	defer srv.Close()
	body := &closeTracker{r: strings.NewReader(`{"a":1}`)}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
	req.ContentLength = 7
	resp, err := (&http.Client{Transport: Transport(http.DefaultTransport)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != `{"a":1}` || !body.closed {
		t.Fatalf("server got %q; caller's body closed: %v", got, body.closed)
	}
	// A request without a body passes as it is.
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err = (&http.Client{Transport: Transport(http.DefaultTransport)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// Client does the same for an SDK HTTP client.
func TestClientSendsACopy(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	defer srv.Close()
	body := &closeTracker{r: strings.NewReader(`{"b":2}`)}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
	req.ContentLength = 7
	resp, err := Client(http.DefaultClient).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != `{"b":2}` || !body.closed {
		t.Fatalf("server got %q; caller's body closed: %v", got, body.closed)
	}
}
