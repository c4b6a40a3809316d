package awserr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awserr"
	"github.com/switchyard-dev/switchyard/internal/awstest"
)

// Each failure as the SDK reports it, from a wire-level endpoint: what
// passes by itself is transient, what says the request is wrong is not.
func TestTransient(t *testing.T) {
	t.Parallel()
	srv := awstest.NewTestServer(t, awstest.Options{})
	url, err := srv.SQS().CreateQueue("jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	// One call each: the SDK's retries would only repeat the fault.
	client := srv.SQSClient(func(o *sqs.Options) { o.Retryer = aws.NopRetryer{} })
	tests := []struct {
		name  string
		fault *awstest.Fault // nil: the call fails on its own
		queue string
		want  bool
	}{
		{"500 InternalFailure", &awstest.Fault{Status: http.StatusInternalServerError, Code: "InternalFailure"}, url, true},
		{"503 with no error code", &awstest.Fault{Status: http.StatusServiceUnavailable}, url, true},
		{"502 from a load balancer", &awstest.Fault{Status: http.StatusBadGateway, Body: []byte("<html>bad gateway</html>")}, url, true},
		{"400 ThrottlingException", &awstest.Fault{Status: http.StatusBadRequest, Code: "ThrottlingException", Message: "Rate exceeded"}, url, true},
		{"400 RequestThrottled", &awstest.Fault{Status: http.StatusBadRequest, Code: "RequestThrottled"}, url, true},
		{"400 KmsThrottled", &awstest.Fault{Status: http.StatusBadRequest, Code: "KmsThrottled"}, url, true},
		{"429 with no error code", &awstest.Fault{Status: http.StatusTooManyRequests}, url, true},
		{"connection dropped", &awstest.Fault{Drop: true}, url, true},
		{"no such queue", nil, url + "-missing", false},
		{"403 AccessDenied", &awstest.Fault{Status: http.StatusForbidden, Code: "AccessDenied", Message: "not authorized"}, url, false},
		{"400 InvalidAddress", &awstest.Fault{Status: http.StatusBadRequest, Code: "InvalidAddress"}, url, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil {
				remove := srv.InjectFault(awstest.FaultRule{Op: "sqs:GetQueueAttributes", Times: 1, Fault: *tt.fault})
				defer remove()
			}
			_, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
				QueueUrl: aws.String(tt.queue), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
			})
			if err == nil {
				t.Fatal("the call succeeded")
			}
			if got := awserr.Transient(err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", err, got, tt.want)
			}
			// Wrapped, as callers report it, the answer is the same.
			if got := awserr.Transient(fmt.Errorf("sqs source jobs: %w", err)); got != tt.want {
				t.Errorf("Transient of the wrapped error = %v, want %v", got, tt.want)
			}
		})
	}
	for _, err := range []error{errors.New("listen tcp: address already in use"), context.Canceled, nil} {
		if awserr.Transient(err) {
			t.Errorf("Transient(%v) = true for an error of no AWS call", err)
		}
	}
}
