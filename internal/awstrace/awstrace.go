// Package awstrace sends a delivery's trace context on AWS SDK calls as
// the X-Amzn-Trace-Id header, which Lambda, SNS, Step Functions and
// EventBridge continue an X-Ray trace from.
package awstrace

import (
	"context"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard-dev/switchyard/router"
)

// APIOption returns the API option (for a client's Options.APIOptions)
// that sets X-Amzn-Trace-Id to h, the X-Ray form of a trace context. It
// runs after the SDK's recursion-detection step, so it replaces a header
// that step copied from _X_AMZN_TRACE_ID.
func APIOption(h string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Build.Add(header(h), middleware.After)
	}
}

// header is a build-step middleware setting X-Amzn-Trace-Id.
type header string

func (header) ID() string { return "SwitchyardTraceHeader" }

func (h header) HandleBuild(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
	if req, ok := in.Request.(*smithyhttp.Request); ok {
		req.Header.Set(router.HeaderXRay, string(h))
	}
	return next.HandleBuild(ctx, in)
}
