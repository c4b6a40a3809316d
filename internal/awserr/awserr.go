// Package awserr classifies AWS SDK errors for delivery policies: by the
// API error code first, then by HTTP status, never by message text.
package awserr

import (
	"errors"
	"net/http"
	"slices"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard-dev/switchyard/router"
)

// Codes lists a service's error codes by class; codes in none of them are
// classified by HTTP status.
type Codes struct {
	Throttled, Permanent, Retryable []string
}

// Classify returns err as a router.DeliveryError: its API error code's
// class when codes lists it; else 429 throttled, other 4xx permanent, 5xx
// retryable; and retryable for anything without a response (a reset, a
// timeout).
func Classify(err error, codes Codes) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); {
		case slices.Contains(codes.Throttled, code):
			return router.ThrottledError(err, 0)
		case slices.Contains(codes.Permanent, code):
			return router.PermanentError(err)
		case slices.Contains(codes.Retryable, code):
			return router.RetryableError(err, 0)
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch status := re.HTTPStatusCode(); {
		case status == http.StatusTooManyRequests:
			return router.ThrottledError(err, 0)
		case status >= 500:
			return router.RetryableError(err, 0)
		case status >= 400:
			return router.PermanentError(err)
		}
	}
	return router.RetryableError(err, 0)
}

// Code returns the API error code of err, or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
