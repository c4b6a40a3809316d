package lambda

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard-dev/switchyard/router"
)

// withTraceHeader returns the Invoke option that sends the X-Ray form of t
// as the X-Amzn-Trace-Id header, which Lambda continues the trace from
// (with active tracing, or PassThrough and Sampled=1), and nil when t has
// none. It runs after the SDK's recursion-detection step, so it replaces
// a header that step copied from _X_AMZN_TRACE_ID.
func withTraceHeader(t router.TraceContext) func(*lambda.Options) {
	h := t.XRayHeader()
	if h == "" {
		return nil
	}
	return func(o *lambda.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Build.Add(traceHeader(h), middleware.After)
		})
	}
}

// traceHeader is a build-step middleware setting X-Amzn-Trace-Id.
type traceHeader string

func (traceHeader) ID() string { return "SwitchyardTraceHeader" }

func (h traceHeader) HandleBuild(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
	if req, ok := in.Request.(*smithyhttp.Request); ok {
		req.Header.Set(router.HeaderXRay, string(h))
	}
	return next.HandleBuild(ctx, in)
}

// invokeOptions are the per-call options of a delivery's Invoke.
func invokeOptions(d *router.Delivery) []func(*lambda.Options) {
	if o := withTraceHeader(d.OutboundTrace()); o != nil {
		return []func(*lambda.Options){o}
	}
	return nil
}
