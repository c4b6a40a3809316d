package sns_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
	"github.com/switchyard-dev/switchyard/sinks/sns"
)

// deadLetters records what a policy dead-letters.
type deadLetters struct {
	mu sync.Mutex
	ds []*router.Delivery
}

func (*deadLetters) Name() string { return "dlq" }

func (l *deadLetters) Deliver(_ context.Context, d *router.Delivery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ds = append(l.ds, d)
	return nil
}

// wrapped is the sink under a policy that retries quickly, as the daemon
// runs it.
func wrapped(t *testing.T, topic string) (router.Sink, *policy.Stats, *deadLetters, *awstest.Server) {
	t.Helper()
	srv := awstest.NewTestServer(t, awstest.Options{})
	arn, err := srv.SNS().CreateTopic(awstest.SNSTopic{Name: topic})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sns.Config{TopicARN: arn}
	cfg.SetDefaults()
	pc := policy.Default()
	pc.Retry.Initial, pc.Retry.Max, pc.Retry.Attempts = time.Millisecond, 5*time.Millisecond, 3
	st, dl := new(policy.Stats), &deadLetters{}
	return policy.Wrap(sns.New("t", cfg, srv.SNSClient()), pc, dl, policy.WithStats(st)), st, dl, srv
}

func event(t *testing.T) *router.Delivery {
	t.Helper()
	ev, err := router.ParseEvent([]byte(`{"id":"ev-1","source":"shop","detail":{}}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &router.Delivery{ID: "0123456789abcdef0123456789abcdef", Rule: "orders", Target: "t", Payload: []byte(`{"n":1}`),
		Message: &router.Message{ID: "m-1", Source: "jobs", Event: ev}}
}

func TestSNSSink_PolicyRetries5xx(t *testing.T) {
	t.Parallel()
	p, st, dl, srv := wrapped(t, "orders")
	srv.FailNext("sns:Publish", 2, awstest.InternalError("InternalError"))
	if err := p.Deliver(t.Context(), event(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.SNS().Messages("orders")); n != 1 || st.Attempts.Load() != 3 || st.Retried.Load() != 2 || st.Delivered.Load() != 1 || len(dl.ds) != 0 {
		t.Errorf("%d published; attempts %d, retried %d, delivered %d, dead letters %d", n, st.Attempts.Load(), st.Retried.Load(), st.Delivered.Load(), len(dl.ds))
	}
}

// Throttles are counted as such and spend no attempts: four in a row do
// not exhaust a retry budget of three.
func TestSNSSink_PolicyCountsThrottles(t *testing.T) {
	t.Parallel()
	p, st, dl, srv := wrapped(t, "orders")
	srv.FailNext("sns:Publish", 4, awstest.Fault{Code: "Throttled", Message: "Rate exceeded"})
	if err := p.Deliver(t.Context(), event(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.SNS().Messages("orders")); n != 1 || st.Throttled.Load() != 4 || st.Delivered.Load() != 1 || len(dl.ds) != 0 || srv.Calls("sns:Publish") != 5 {
		t.Errorf("%d published; throttled %d, delivered %d, dead letters %d, calls %d", n, st.Throttled.Load(), st.Delivered.Load(), len(dl.ds), srv.Calls("sns:Publish"))
	}
}

func TestSNSSink_PolicyDeadLettersPermanent(t *testing.T) {
	t.Parallel()
	p, st, dl, srv := wrapped(t, "orders")
	srv.FailNext("sns:Publish", 1, awstest.Fault{Code: "AuthorizationError", Message: "User is not authorized to perform: SNS:Publish"})
	if err := p.Deliver(t.Context(), event(t)); err != nil {
		t.Fatal(err)
	}
	if st.DeadLettered.Load() != 1 || len(dl.ds) != 1 || srv.Calls("sns:Publish") != 1 || dl.ds[0].DeadLetter == nil || dl.ds[0].DeadLetter.Attempts != 1 {
		t.Errorf("dead lettered %d, dead letters %+v, calls %d", st.DeadLettered.Load(), dl.ds, srv.Calls("sns:Publish"))
	}
}

// A publish whose answer is lost (SNS took it, the caller saw a 500) is
// retried with the same deduplication id, and a FIFO topic drops the copy.
func TestSNSSink_PolicyFIFODeduplicatesARetry(t *testing.T) {
	t.Parallel()
	p, st, _, srv := wrapped(t, "orders.fifo")
	srv.FailNext("sns:Publish", 1, awstest.Fault{Status: 500, Code: "InternalError", Commit: true})
	if err := p.Deliver(t.Context(), event(t)); err != nil {
		t.Fatal(err)
	}
	ms := srv.SNS().Messages("orders.fifo")
	if len(ms) != 1 || srv.Calls("sns:Publish") != 2 || st.Retried.Load() != 1 || ms[0].DedupID != "0123456789abcdef0123456789abcdef" {
		t.Errorf("%d published (%+v), %d calls, retried %d", len(ms), ms, srv.Calls("sns:Publish"), st.Retried.Load())
	}
}
