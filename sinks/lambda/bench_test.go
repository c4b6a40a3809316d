package lambda

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

// BenchmarkInvoke compares a delivery through the sink with the bare SDK
// call it makes, against the wire-level endpoint in the same process: the
// difference is what the sink adds to each invocation.
func BenchmarkInvoke(b *testing.B) {
	srv := awstest.NewTestServer(b, awstest.Options{})
	srv.Lambda().Register(awstest.Function{Name: "fn"})
	client := srv.LambdaClient()
	d := delivery("1", `{"order":{"id":"o-1","total":42.5,"items":[1,2,3]}}`)
	b.Run("sink", func(b *testing.B) {
		cfg := Config{Function: "fn"}
		cfg.SetDefaults()
		s := New("fn", cfg, client)
		defer s.Close(context.Background())
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Deliver(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: d.Payload}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
