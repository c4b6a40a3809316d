// Package bodycopy is an http.RoundTripper that sends a copy of each
// request body, for the AWS SDK's clients.
//
// smithy-go closes the request body it handed to net/http as soon as the
// response arrives. When the server answers before net/http's write loop
// has made its last read of the body (the one that checks the body is no
// longer than its Content-Length), that read fails and net/http closes the
// connection under the response being read: a call that succeeded fails
// with "deserialization failed ... use of closed network connection"
// (aws/aws-sdk-go-v2#2737). The SDK's own retryer retries that error; the
// clients switchyard delivers with do not retry (the policies do), so a
// Lambda function invoked successfully would be invoked again. With a copy
// of the body, the SDK's close reaches nothing net/http reads.
package bodycopy

import (
	"bytes"
	"io"
	"net/http"
)

// Doer is what the SDK calls an HTTP client (aws.HTTPClient).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client wraps an SDK HTTP client, keeping its settings (custom CA bundles
// and the like).
func Client(next Doer) Doer { return client{next} }

type client struct{ next Doer }

func (c client) Do(r *http.Request) (*http.Response, error) {
	r, err := copyBody(r)
	if err != nil {
		return nil, err
	}
	return c.next.Do(r)
}

// Transport wraps next.
func Transport(next http.RoundTripper) http.RoundTripper { return transport{next} }

type transport struct{ next http.RoundTripper }

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	r, err := copyBody(r)
	if err != nil {
		return nil, err
	}
	return t.next.RoundTrip(r)
}

// copyBody returns r with its body replaced by a copy (r itself if it has
// none), having read and closed the original.
func copyBody(r *http.Request) (*http.Request, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, nil
	}
	data, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return r, nil
}
