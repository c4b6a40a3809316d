// Package awserr classifies AWS SDK errors for delivery policies: by the
// API error code first, then by HTTP status, never by message text.
package awserr

import (
	"errors"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
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

// Transient reports whether err is an AWS failure that may pass by itself,
// so that the same call can work later unchanged: a throttle (an error code
// the SDK counts as one, or HTTP 429), a 5xx, a timeout code, or no
// response at all (a timeout, a reset, a refused connection, DNS). An
// answer that the request itself is wrong (another 4xx: no such queue,
// access denied, an invalid parameter) is not transient, nor is anything
// that is not an AWS call's error.
func Transient(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
			return true
		}
		if _, ok := retry.DefaultRetryableErrorCodes[code]; ok {
			return true
		}
		if slices.Contains(transientCodes, code) {
			return true
		}
	}
	// No response: the SDK reports a ResponseError of status 0 around it.
	var se *smithyhttp.RequestSendError
	if errors.As(err, &se) {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status := re.HTTPStatusCode()
		return status == http.StatusTooManyRequests || status >= 500
	}
	return false
}

// transientCodes are services' own names for a throttle, beyond the SDK's
// list: SQS answers these with a 400, and the SDK reports the query
// protocol's code (KMS.ThrottlingException for KmsThrottled) when there is
// one.
var transientCodes = []string{"AWS.SimpleQueueService.RequestThrottled", "KmsThrottled", "KMS.ThrottlingException"}
