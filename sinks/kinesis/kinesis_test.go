package kinesis

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/awstest"
	"github.com/switchyard-dev/switchyard/internal/kindtest"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func delivery(t *testing.T, n int) *router.Delivery {
	t.Helper()
	ev, err := router.ParseEvent([]byte(fmt.Sprintf(`{"id":"ev-%d","source":"shop","detail-type":"Order Placed","detail":{"orderId":"o-%d"}}`, n, n)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &router.Delivery{ID: fmt.Sprintf("delivery-%d", n), Rule: "orders", Target: "t", Payload: []byte(fmt.Sprintf(`{"n":%d}`, n)),
		Message: &router.Message{ID: fmt.Sprintf("m-%d", n), Source: "jobs", Event: ev}}
}

func deliveries(t *testing.T, n int) []*router.Delivery {
	ds := make([]*router.Delivery, n)
	for i := range ds {
		ds[i] = delivery(t, i)
	}
	return ds
}

// callLog records the records of each PutRecords call, by partition key.
type callLog struct {
	mu    sync.Mutex
	calls [][]string
}

func (l *callLog) hook(t *testing.T, next awstest.Hook) awstest.Hook {
	return func(op string, r *http.Request) *awstest.Fault {
		if op == "kinesis:PutRecords" {
			body, _ := io.ReadAll(r.Body)
			var in struct {
				Records []struct{ PartitionKey string }
			}
			if err := json.Unmarshal(body, &in); err != nil {
				t.Errorf("request body: %v", err)
			}
			var keys []string
			for _, rec := range in.Records {
				keys = append(keys, rec.PartitionKey)
			}
			l.mu.Lock()
			l.calls = append(l.calls, keys)
			l.mu.Unlock()
		}
		if next != nil {
			return next(op, r)
		}
		return nil
	}
}

func (l *callLog) get() [][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func (l *callLog) records() int {
	n := 0
	for _, c := range l.get() {
		n += len(c)
	}
	return n
}

func newSink(t *testing.T, cfg Config) (*Sink, *awstest.Server, *callLog) {
	t.Helper()
	srv := awstest.NewTestServer(t, awstest.Options{})
	if _, err := srv.Kinesis().CreateStream("orders", 2); err != nil {
		t.Fatal(err)
	}
	if cfg.Stream == "" && cfg.StreamARN == "" {
		cfg.Stream = "orders"
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New("t", cfg, srv.KinesisClient())
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	log := &callLog{}
	srv.SetHook(log.hook(t, nil))
	return s, srv, log
}

// deliverAll runs Deliver for each delivery at once and returns the errors.
func deliverAll(t *testing.T, s router.Sink, ds []*router.Delivery) []error {
	t.Helper()
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() { errs[i] = s.Deliver(t.Context(), d) })
	}
	wg.Wait()
	return errs
}

func TestKinesisSink_DeliversInBatches(t *testing.T) {
	t.Parallel()
	s, srv, log := newSink(t, Config{})
	ds := deliveries(t, 50)
	for i, err := range deliverAll(t, s, ds) {
		if err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	recs := srv.Kinesis().Records("orders")
	if len(recs) != 50 {
		t.Fatalf("%d records", len(recs))
	}
	byKey := map[string]string{}
	for _, r := range recs {
		byKey[r.PartitionKey] = string(r.Data)
	}
	for i, d := range ds {
		if byKey[d.ID] != fmt.Sprintf(`{"n":%d}`, i) {
			t.Errorf("delivery %d: record %q", i, byKey[d.ID])
		}
	}
	calls := log.get()
	if len(calls) >= 50 || log.records() != 50 {
		t.Errorf("%d calls for 50 deliveries (%d records sent): not batched", len(calls), log.records())
	}
	t.Logf("50 concurrent deliveries went in %d calls", len(calls))
}

// The partition key is rendered from the event per delivery.
func TestKinesisSink_PartitionKeyFromTheEvent(t *testing.T) {
	t.Parallel()
	s, srv, _ := newSink(t, Config{PartitionKey: "order-<$.detail.orderId>"})
	if errs := s.DeliverBatch(t.Context(), deliveries(t, 3)); slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatal(errs)
	}
	var keys []string
	for _, r := range srv.Kinesis().Records("orders") {
		keys = append(keys, r.PartitionKey)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"order-o-0", "order-o-1", "order-o-2"}) {
		t.Errorf("keys %v", keys)
	}
}

// A call's failed records fail alone, each classified; the rest are
// delivered.
func TestKinesisSink_PartialFailure(t *testing.T) {
	t.Parallel()
	s, srv, _ := newSink(t, Config{})
	ds := deliveries(t, 6)
	srv.InjectFault(awstest.FaultRule{Op: "kinesis:PutRecords", Times: 1, Fault: awstest.Fault{Code: "ProvisionedThroughputExceededException", BatchEntries: []string{ds[1].ID, ds[4].ID}}})
	errs := s.DeliverBatch(t.Context(), ds)
	for i, err := range errs {
		switch i {
		case 1, 4:
			if router.ClassOf(err) != router.Throttled || !strings.Contains(err.Error(), "ProvisionedThroughputExceededException: Rate exceeded for shard") {
				t.Errorf("delivery %d: %v (%s), want throttled", i, err, router.ClassOf(err))
			}
		default:
			if err != nil {
				t.Errorf("delivery %d: %v", i, err)
			}
		}
	}
	if n := len(srv.Kinesis().Records("orders")); n != 4 || srv.Calls("kinesis:PutRecords") != 1 {
		t.Errorf("%d records stored, %d calls", n, srv.Calls("kinesis:PutRecords"))
	}
	for _, tc := range []struct {
		code string
		want router.Class
	}{
		{"InternalFailure", router.Retryable},
		{"KMSThrottlingException", router.Throttled},
		{"KMSDisabledException", router.Retryable},
	} {
		srv.InjectFault(awstest.FaultRule{Op: "kinesis:PutRecords", Times: 1, Fault: awstest.Fault{Code: tc.code, Message: "m", BatchEntries: []string{"*"}}})
		errs := s.DeliverBatch(t.Context(), ds[:2])
		for _, err := range errs {
			if router.ClassOf(err) != tc.want || !strings.Contains(err.Error(), tc.code+": m") {
				t.Errorf("%s: %v (%s), want %s", tc.code, err, router.ClassOf(err), tc.want)
			}
		}
	}
}

// A whole call's failure is every record's.
func TestKinesisSink_Classifies(t *testing.T) {
	t.Parallel()
	s, srv, _ := newSink(t, Config{})
	for _, tc := range []struct {
		fault awstest.Fault
		want  router.Class
	}{
		{awstest.Fault{Code: "ProvisionedThroughputExceededException", Message: "Rate exceeded for stream orders"}, router.Throttled},
		{awstest.Fault{Code: "LimitExceededException"}, router.Throttled},
		{awstest.Fault{Code: "KMSThrottlingException"}, router.Throttled},
		{awstest.Fault{Status: http.StatusTooManyRequests}, router.Throttled},
		{awstest.Fault{Code: "AccessDeniedException"}, router.Permanent},
		{awstest.Fault{Code: "ValidationException"}, router.Permanent},
		{awstest.Fault{Code: "InvalidArgumentException"}, router.Permanent},
		{awstest.Fault{Code: "KMSAccessDeniedException"}, router.Permanent},
		{awstest.Fault{Code: "KMSDisabledException"}, router.Permanent},
		{awstest.Fault{Code: "KMSInvalidStateException"}, router.Permanent},
		{awstest.Fault{Code: "KMSNotFoundException"}, router.Permanent},
		{awstest.Fault{Code: "KMSOptInRequired"}, router.Permanent},
		{awstest.Fault{Code: "ResourceInUseException"}, router.Retryable},
		{awstest.InternalError("InternalFailureException"), router.Retryable},
		{awstest.Unavailable(), router.Retryable},
		{awstest.Fault{Drop: true}, router.Retryable},
	} {
		srv.FailNext("kinesis:PutRecords", 1, tc.fault)
		for i, err := range s.DeliverBatch(t.Context(), deliveries(t, 2)) {
			if router.ClassOf(err) != tc.want {
				t.Errorf("%+v: delivery %d: %v is %s, want %s", tc.fault, i, err, router.ClassOf(err), tc.want)
			}
		}
	}
	if n := len(srv.Kinesis().Records("orders")); n != 0 {
		t.Errorf("%d records stored", n)
	}
	gone, _, _ := newSink(t, Config{StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/gone"})
	if err := gone.Deliver(t.Context(), delivery(t, 1)); router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("no such stream: %v (%s)", err, router.ClassOf(err))
	}
}

// A record Kinesis could never take fails for good before any call; the
// others of its batch go.
func TestKinesisSink_RefusedBeforeTheCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		key     string
		payload string
		want    string
	}{
		{"over 1 MiB with the key", "", `"` + strings.Repeat("x", 1<<20-11) + `"`, "the record is 1048577 bytes with its partition key, over Kinesis's limit of 1MiB a record"},
		{"empty key", "<k>", `{"k":""}`, "fills to nothing: Kinesis takes 1 to 256 characters"},
		{"key of 257", "<k>", `{"k":"` + strings.Repeat("é", 257) + `"}`, "fills to 257 characters: Kinesis takes 1 to 256"},
		{"key with no value", "<$.detail.customer>", `{}`, "partition_key: placeholder <$.detail.customer> has no value: the event has no $.detail.customer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv, log := newSink(t, Config{PartitionKey: tc.key})
			bad := delivery(t, 9)
			bad.Payload = []byte(tc.payload)
			err := s.Deliver(t.Context(), bad)
			if router.ClassOf(err) != router.Permanent || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v (%s), want permanent %q", err, router.ClassOf(err), tc.want)
			}
			if len(log.get()) != 0 {
				t.Errorf("%d calls made", len(log.get()))
			}
			good := delivery(t, 1)
			good.Payload = []byte(`{"k":"fine","n":1}`)
			good.Message.Event, _ = router.ParseEvent([]byte(`{"id":"ev-1","detail":{"customer":"c-1"}}`), time.Now())
			errs := s.DeliverBatch(t.Context(), []*router.Delivery{bad, good})
			if router.ClassOf(errs[0]) != router.Permanent || errs[1] != nil || len(srv.Kinesis().Records("orders")) != 1 || len(log.get()) != 1 {
				t.Errorf("batch: %v; %d stored, %d calls", errs, len(srv.Kinesis().Records("orders")), len(log.get()))
			}
		})
	}
	// 1 MiB exactly, key included, goes.
	s, srv, _ := newSink(t, Config{PartitionKey: "k"})
	d := delivery(t, 1)
	d.Payload = []byte(`"` + strings.Repeat("x", 1<<20-3) + `"`)
	if err := s.Deliver(t.Context(), d); err != nil || len(srv.Kinesis().Records("orders")) != 1 {
		t.Errorf("1 MiB record: %v", err)
	}
}

// DeliverBatch splits at Batch.Size records and Batch.MaxBytes.
func TestKinesisSink_DeliverBatchLimits(t *testing.T) {
	t.Parallel()
	s, srv, log := newSink(t, Config{})
	errs := s.DeliverBatch(t.Context(), deliveries(t, 501))
	if slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatal(errs)
	}
	if calls := log.get(); len(calls) != 2 || len(calls[0]) != 500 || len(calls[1]) != 1 || len(srv.Kinesis().Records("orders")) != 501 {
		t.Errorf("501 records in calls of %d", lens(calls))
	}

	s2, srv2, log2 := newSink(t, Config{Batch: Batch{Size: 3, MaxBytes: size.MiB + 100}})
	ds := deliveries(t, 7)
	ds[5].Payload = []byte(`"` + strings.Repeat("x", 600<<10) + `"`)
	ds[6].Payload = []byte(`"` + strings.Repeat("x", 600<<10) + `"`)
	if errs := s2.DeliverBatch(t.Context(), ds); slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatal(errs)
	}
	if got := lens(log2.get()); !slices.Equal(got, []int{3, 3, 1}) || len(srv2.Kinesis().Records("orders")) != 7 {
		t.Errorf("calls of %v, want [3 3 1] (size 3; the two 600 KiB records apart)", got)
	}
}

func lens(calls [][]string) []int {
	var n []int
	for _, c := range calls {
		n = append(n, len(c))
	}
	return n
}

// With a window, a call waits for its first delivery's window unless it
// fills first; Close sends what waits.
func TestKinesisSink_Window(t *testing.T) {
	t.Parallel()
	s, srv, log := newSink(t, Config{Batch: Batch{Size: 10, Window: time.Minute}})
	errs := deliverAll(t, s, deliveries(t, 10))
	if slices.ContainsFunc(errs, func(e error) bool { return e != nil }) || len(log.get()) != 1 {
		t.Fatalf("%v; calls of %v, want one full call", errs, lens(log.get()))
	}
	var wg sync.WaitGroup
	late := make([]error, 3)
	for i, d := range deliveries(t, 3) {
		d.ID = "late-" + d.ID
		wg.Go(func() { late[i] = s.Deliver(t.Context(), d) })
	}
	// The three wait out the minute's window: Close sends them.
	deadline := time.Now().Add(5 * time.Second)
	for waiting(s) != 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.Calls("kinesis:PutRecords"); n != 1 {
		t.Errorf("%d calls before the window passed", n)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if slices.ContainsFunc(late, func(e error) bool { return e != nil }) || len(srv.Kinesis().Records("orders")) != 13 || len(log.get()) != 2 {
		t.Errorf("after Close: %v; %d records, calls of %v", late, len(srv.Kinesis().Records("orders")), lens(log.get()))
	}
	err := s.Deliver(t.Context(), delivery(t, 99))
	if router.ClassOf(err) != router.Retryable || !strings.Contains(err.Error(), "closed") {
		t.Errorf("after Close: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// waiting counts the deliveries gathered into the batcher's next call.
func waiting(s *Sink) int {
	return s.batch.Waiting()
}

func TestKinesisSink_StreamARN(t *testing.T) {
	t.Parallel()
	s, srv, _ := newSink(t, Config{StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/orders"})
	if err := s.Deliver(t.Context(), delivery(t, 1)); err != nil || len(srv.Kinesis().Records("orders")) != 1 {
		t.Errorf("by ARN: %v", err)
	}
}

// A dead letter's record is the record of why and the original body.
func TestKinesisSink_DeadLetter(t *testing.T) {
	t.Parallel()
	s, srv, _ := newSink(t, Config{})
	d := delivery(t, 1)
	d.Payload = []byte("orig")
	d.DeadLetter = &router.DeadLetter{Source: "jobs", MessageID: "m-1", Rule: "orders", Target: "app", Attempts: 5}
	if err := s.Deliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		DeadLetter router.DeadLetter `json:"dead_letter"`
		Body       string            `json:"body"`
	}
	r := srv.Kinesis().Records("orders")[0]
	if err := json.Unmarshal(r.Data, &doc); err != nil || doc.Body != "orig" || doc.DeadLetter.Target != "app" || r.PartitionKey != d.ID {
		t.Errorf("dead letter %s (key %s): %v", r.Data, r.PartitionKey, err)
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Stream: "orders"}, ""},
		{Config{StreamARN: "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/orders.v2", PartitionKey: "<$.detail.orderId>",
			Batch: Batch{Size: 1, MaxBytes: size.MiB, Window: 5 * time.Minute}}, ""},
		{Config{}, "stream: required: the stream's name, or its ARN as stream_arn"},
		{Config{Stream: "a", StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/a"}, "stream_arn: set stream or stream_arn, not both"},
		{Config{Stream: "my stream"}, "stream: a stream name has 1 to 128"},
		{Config{Stream: strings.Repeat("s", 129)}, "a stream name has 1 to 128"},
		{Config{StreamARN: "orders"}, "not a Kinesis stream ARN"},
		{Config{StreamARN: "arn:aws:kinesis:us-east-1:123456789012:orders"}, "not a Kinesis stream ARN"},
		{Config{StreamARN: "arn:aws:sqs:us-east-1:123456789012:stream/orders"}, "not a Kinesis stream ARN"},
		{Config{StreamARN: "arn:aws:kinesis:us-east-1:12:stream/orders"}, "the account \"12\" is not 12 digits"},
		{Config{StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/"}, "a stream name has"},
		{Config{StreamARN: "arn:aws:kinesis:US:123456789012:stream/a"}, "is not a region"},
		{Config{Stream: "s", PartitionKey: "<$.detail[x]>"}, "partition_key: placeholder <$.detail[x]>"},
		{Config{Stream: "s", PartitionKey: strings.Repeat("k", 257)}, "partition_key: 257 characters: Kinesis takes 1 to 256"},
		{Config{Stream: "s", PartitionKey: strings.Repeat("k", 256) + "-<$.id>"}, "partition_key: 257 characters"},
		{Config{Stream: "s", PartitionKey: strings.Repeat("k", 255) + "<$.id>-<n>"}, ""},
		{Config{Stream: "s", Batch: Batch{Size: 501}}, "batch.size: 501 is outside the range of 1 to 500"},
		{Config{Stream: "s", Batch: Batch{Size: -1}}, "batch.size"},
		{Config{Stream: "s", Batch: Batch{MaxBytes: 6 * size.MiB}}, "batch.max_bytes: 6MiB is outside the range of 1MiB to 5MiB"},
		{Config{Stream: "s", Batch: Batch{MaxBytes: 1000}}, "batch.max_bytes"},
		{Config{Stream: "s", Batch: Batch{Window: 6 * time.Minute}}, "batch.window: 6m0s is outside the range of 0 to 5m"},
	} {
		kindtest.Check(t, tc.cfg, tc.want)
	}
	c := Config{Stream: "s"}
	c.SetDefaults()
	if c.PartitionKey != "<switchyard.delivery-id>" || c.Batch.Size != 500 || c.Batch.MaxBytes != 5*size.MiB || c.Batch.Window != 0 {
		t.Errorf("defaults %+v", c)
	}
}
