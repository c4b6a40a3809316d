package lambda

import (
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/switchyard-dev/switchyard/internal/awstrace"
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
		o.APIOptions = append(o.APIOptions, awstrace.APIOption(h))
	}
}

// invokeOptions are the per-call options of a delivery's Invoke.
func invokeOptions(d *router.Delivery) []func(*lambda.Options) {
	if o := withTraceHeader(d.OutboundTrace()); o != nil {
		return []func(*lambda.Options){o}
	}
	return nil
}
