package kinesis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/policy"
	"github.com/switchyard-dev/switchyard/router"
	"github.com/switchyard-dev/switchyard/sinks/kinesis"
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

func (l *deadLetters) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ds)
}

// endpoint counts what reaches the stream: the calls, and the records of
// each by partition key. fail, when set, is asked per call which of its
// records to fail.
type endpoint struct {
	srv *awstest.Server

	mu    sync.Mutex
	calls [][]string
	fail  func(keys []string) *awstest.Fault
}

func (e *endpoint) hook(t *testing.T) awstest.Hook {
	return func(op string, r *http.Request) *awstest.Fault {
		if op != "kinesis:PutRecords" {
			return nil
		}
		body, _ := io.ReadAll(r.Body)
		var in struct {
			Records []struct{ PartitionKey string }
		}
		if err := json.Unmarshal(body, &in); err != nil {
			t.Errorf("request: %v", err)
		}
		var keys []string
		for _, rec := range in.Records {
			keys = append(keys, rec.PartitionKey)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.calls = append(e.calls, keys)
		if e.fail != nil {
			return e.fail(keys)
		}
		return nil
	}
}

func (e *endpoint) sent() (calls, records int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.calls {
		records += len(c)
	}
	return len(e.calls), records
}

// wrapped is the sink under a policy that retries quickly, as the daemon
// runs it.
func wrapped(t *testing.T, cfg kinesis.Config) (router.Sink, *policy.Stats, *deadLetters, *endpoint) {
	t.Helper()
	srv := awstest.NewTestServer(t, awstest.Options{})
	if _, err := srv.Kinesis().CreateStream("orders", 4); err != nil {
		t.Fatal(err)
	}
	cfg.Stream = "orders"
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := kinesis.New("t", cfg, srv.KinesisClient())
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	pc := policy.Default()
	pc.Retry.Initial, pc.Retry.Max, pc.Retry.Attempts = time.Millisecond, 5*time.Millisecond, 3
	st, dl := new(policy.Stats), &deadLetters{}
	e := &endpoint{srv: srv}
	srv.SetHook(e.hook(t))
	return policy.Wrap(s, pc, dl, policy.WithStats(st)), st, dl, e
}

func orders(t *testing.T, n int) []*router.Delivery {
	t.Helper()
	ds := make([]*router.Delivery, n)
	for i := range ds {
		ev, err := router.ParseEvent([]byte(fmt.Sprintf(`{"id":"ev-%d","source":"shop","detail":{"orderId":"o-%d"}}`, i, i)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = &router.Delivery{ID: fmt.Sprintf("d-%d", i), Rule: "orders", Target: "t", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Message: &router.Message{ID: fmt.Sprintf("m-%d", i), Source: "jobs", Event: ev}}
	}
	return ds
}

func deliverAll(t *testing.T, s router.Sink, ds []*router.Delivery) {
	t.Helper()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() {
			if err := s.Deliver(t.Context(), d); err != nil {
				t.Errorf("%s: %v", d.ID, err)
			}
		})
	}
	wg.Wait()
}

// Records Kinesis fails in a call are retried alone: each of the chosen
// ones fails once, and the stream ends with every record once, having been
// sent exactly the records plus the failed ones again.
func TestKinesisSink_PolicyRetriesOnlyFailedRecords(t *testing.T) {
	t.Parallel()
	p, st, dl, e := wrapped(t, kinesis.Config{PartitionKey: "<$.detail.orderId>"})
	failOnce := map[string]bool{"o-3": true, "o-7": true, "o-11": true, "o-19": true}
	e.fail = func(keys []string) *awstest.Fault {
		var now []string
		for _, k := range keys {
			if failOnce[k] {
				delete(failOnce, k)
				now = append(now, k)
			}
		}
		if len(now) == 0 {
			return nil
		}
		return &awstest.Fault{Code: "ProvisionedThroughputExceededException", BatchEntries: now}
	}
	deliverAll(t, p, orders(t, 20))
	recs := e.srv.Kinesis().Records("orders")
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.PartitionKey)
	}
	slices.Sort(keys)
	if len(keys) != 20 || len(slices.Compact(keys)) != 20 {
		t.Errorf("stored %d records, keys %v", len(recs), keys)
	}
	calls, sent := e.sent()
	if sent != 24 || st.Throttled.Load() != 4 || st.Delivered.Load() != 20 || st.Retried.Load() != 4 || dl.len() != 0 {
		t.Errorf("%d records sent in %d calls (want 24: 20, and the 4 failed again); throttled %d, retried %d, delivered %d, dead letters %d",
			sent, calls, st.Throttled.Load(), st.Retried.Load(), st.Delivered.Load(), dl.len())
	}
	t.Logf("20 deliveries, 4 records failed once: %d calls", calls)
}

func TestKinesisSink_PolicyRetries5xx(t *testing.T) {
	t.Parallel()
	p, st, dl, e := wrapped(t, kinesis.Config{})
	e.srv.FailNext("kinesis:PutRecords", 2, awstest.InternalError("InternalFailureException"))
	deliverAll(t, p, orders(t, 1))
	if n := len(e.srv.Kinesis().Records("orders")); n != 1 || st.Attempts.Load() != 3 || st.Retried.Load() != 2 || dl.len() != 0 {
		t.Errorf("%d stored; attempts %d, retried %d, dead letters %d", n, st.Attempts.Load(), st.Retried.Load(), dl.len())
	}
}

// Throttles spend no attempts: four in a row do not exhaust a budget of
// three.
func TestKinesisSink_PolicyCountsThrottles(t *testing.T) {
	t.Parallel()
	p, st, dl, e := wrapped(t, kinesis.Config{})
	e.srv.FailNext("kinesis:PutRecords", 4, awstest.Fault{Code: "ProvisionedThroughputExceededException", Message: "Rate exceeded for stream orders under account 123456789012."})
	deliverAll(t, p, orders(t, 1))
	if n := len(e.srv.Kinesis().Records("orders")); n != 1 || st.Throttled.Load() != 4 || st.Delivered.Load() != 1 || dl.len() != 0 || e.srv.Calls("kinesis:PutRecords") != 5 {
		t.Errorf("%d stored; throttled %d, delivered %d, dead letters %d, calls %d", n, st.Throttled.Load(), st.Delivered.Load(), dl.len(), e.srv.Calls("kinesis:PutRecords"))
	}
}

func TestKinesisSink_PolicyDeadLettersPermanent(t *testing.T) {
	t.Parallel()
	p, st, dl, e := wrapped(t, kinesis.Config{})
	e.srv.FailNext("kinesis:PutRecords", 1, awstest.Fault{Code: "AccessDeniedException", Message: "not authorized to perform: kinesis:PutRecords"})
	deliverAll(t, p, orders(t, 1))
	if st.DeadLettered.Load() != 1 || dl.len() != 1 || e.srv.Calls("kinesis:PutRecords") != 1 || len(e.srv.Kinesis().Records("orders")) != 0 {
		t.Errorf("dead lettered %d, dead letters %d, calls %d", st.DeadLettered.Load(), dl.len(), e.srv.Calls("kinesis:PutRecords"))
	}
	// A record too large is dead-lettered with no call at all.
	big := orders(t, 1)[0]
	big.ID = "big"
	big.Payload = make([]byte, 1<<20)
	deliverAll(t, p, []*router.Delivery{big})
	if dl.len() != 2 || e.srv.Calls("kinesis:PutRecords") != 1 {
		t.Errorf("too large: dead letters %d, calls %d", dl.len(), e.srv.Calls("kinesis:PutRecords"))
	}
}
