package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// The benchmark corpus, testdata/bench/events.jsonl, holds realistic events
// of about 1 KB: S3 "Object Created", EC2 state changes, ECS task state
// changes, CloudTrail API calls and custom shop events, in EventBridge's
// envelope. TestBenchCorpus -update regenerates it (deterministically).
const corpusFile = "testdata/bench/events.jsonl"

func loadCorpus(tb testing.TB) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(corpusFile)
	if err != nil {
		tb.Fatal(err)
	}
	var events [][]byte
	for line := range bytes.SplitSeq(bytes.TrimSpace(data), []byte("\n")) {
		events = append(events, line)
	}
	return events
}

func TestBenchCorpus(t *testing.T) {
	if *updateCorpus {
		var b bytes.Buffer
		for _, ev := range generateCorpus(500) {
			b.Write(ev)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(corpusFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	events := loadCorpus(t)
	total := 0
	for _, ev := range events {
		if !json.Valid(ev) {
			t.Fatalf("invalid corpus event: %s", ev)
		}
		total += len(ev)
	}
	if avg := total / len(events); avg < 800 || avg > 1300 {
		t.Errorf("corpus events average %d bytes, want about 1 KB", avg)
	}
	// Every rule set matches some events, and most events few rules.
	for _, n := range []int{10, 100, 1000} {
		m := NewMatcher(benchPatterns(t, n))
		matched, hits := 0, 0
		for _, ev := range events {
			r, err := m.Match(ev, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(r) > 0 {
				matched++
			}
			hits += len(r)
		}
		t.Logf("%d rules: %d of %d events match, %.2f rules per event", n, matched, len(events), float64(hits)/float64(len(events)))
		if matched == 0 {
			t.Errorf("%d rules match no corpus event", n)
		}
	}
}

var updateCorpus = flagBool("update-corpus", "regenerate testdata/bench/events.jsonl")

// generateCorpus makes n events; values are drawn so that each event
// matches a few of the benchmark rules.
func generateCorpus(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	id := func() string {
		return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
	}
	envelope := func(i int, detailType, source string, resources []string, detail map[string]any) []byte {
		detail["metadata"] = map[string]any{
			"trace-id": fmt.Sprintf("1-%08x-%024x", r.Uint32(), r.Uint64()), "span-id": fmt.Sprintf("%016x", r.Uint64()),
			"deployment": map[string]any{"service": fmt.Sprintf("svc-%d", r.IntN(50)), "version": fmt.Sprintf("v1.%d.%d", r.IntN(20), r.IntN(100)), "cell": "cell-" + []string{"a", "b", "c"}[r.IntN(3)]},
			"labels":     []string{"team:media", "cost-center:4411", "tier:" + []string{"critical", "standard"}[r.IntN(2)]},
		}
		ev := map[string]any{
			"version": "0", "id": id(), "detail-type": detailType, "source": source,
			"account": "123456789012", "time": t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			"region": []string{"us-east-1", "eu-west-1", "ap-southeast-2"}[r.IntN(3)], "resources": resources, "detail": detail,
		}
		b, _ := json.Marshal(ev)
		return b
	}
	var out [][]byte
	for i := range n {
		k := r.IntN(1000)
		switch i % 5 {
		case 0: // S3 Object Created
			key := []string{
				fmt.Sprintf("tenant-%d/uploads/%s.mp4", k, id()[:8]),
				fmt.Sprintf("archive-%d/2026/%s.tar.gz", k, id()[:8]),
				fmt.Sprintf("images/%s.%d.mp4", id()[:8], k),
			}[r.IntN(3)]
			out = append(out, envelope(i, "Object Created", "aws.s3", []string{fmt.Sprintf("arn:aws:s3:::bucket-%d", k)}, map[string]any{
				"version": "0", "bucket": map[string]any{"name": fmt.Sprintf("bucket-%d", k)},
				"object":     map[string]any{"key": key, "size": r.IntN(50_000_000), "etag": fmt.Sprintf("%032x", r.Uint64()), "sequencer": fmt.Sprintf("%018X", r.Uint64())},
				"request-id": strings.ToUpper(id()[:16]), "requester": "123456789012",
				"source-ip-address": fmt.Sprintf("10.%d.%d.%d", k/256, k%256, r.IntN(256)), "reason": "PutObject",
			}))
		case 1: // EC2 state change
			out = append(out, envelope(i, "EC2 Instance State-change Notification", "aws.ec2", []string{fmt.Sprintf("arn:aws:ec2:us-east-1:123456789012:instance/i-%d", k)}, map[string]any{
				"instance-id": fmt.Sprintf("i-%d", k), "state": []string{"pending", "running", "stopping", "stopped", "terminated"}[r.IntN(5)],
				"tags":    []map[string]any{{"key": "team", "value": "media"}, {"key": "env", "value": []string{"prod", "staging"}[r.IntN(2)]}},
				"launch":  map[string]any{"ami": fmt.Sprintf("ami-%016x", r.Uint64()), "type": "m7g.large", "az": "us-east-1a", "subnet": fmt.Sprintf("subnet-%08x", r.Uint32()), "vpc": fmt.Sprintf("vpc-%08x", r.Uint32())},
				"network": map[string]any{"private-ip": fmt.Sprintf("10.%d.%d.%d", k/256, k%256, r.IntN(256)), "public-ip": fmt.Sprintf("203.0.113.%d", r.IntN(256))},
			}))
		case 2: // ECS task state change
			status := []string{"PROVISIONING", "PENDING", "RUNNING", "STOPPED"}[r.IntN(4)]
			containers := []map[string]any{
				{"containerArn": fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:container/jobs/%s", id()), "name": "app", "lastStatus": status, "exitCode": r.IntN(3)},
				{"containerArn": fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:container/jobs/%s", id()), "name": "switchyard", "lastStatus": status},
			}
			detail := map[string]any{
				"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/jobs", "taskArn": fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/jobs/%s", id()),
				"taskDefinitionArn": fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/svc-%d:7", k), "group": fmt.Sprintf("family:svc-%d", k),
				"launchType": "FARGATE", "lastStatus": status, "desiredStatus": "RUNNING", "containers": containers, "cpu": "512", "memory": "1024",
				"createdAt": t0.Format(time.RFC3339Nano), "version": r.IntN(5) + 1,
			}
			if status == "STOPPED" {
				detail["stoppedReason"] = "Essential container in task exited"
				detail["stopCode"] = "EssentialContainerExited"
			}
			out = append(out, envelope(i, "ECS Task State Change", "aws.ecs", []string{detail["taskArn"].(string)}, detail))
		case 3: // CloudTrail API call
			out = append(out, envelope(i, "AWS API Call via CloudTrail", "aws.iam", nil, map[string]any{
				"eventVersion": "1.09", "userIdentity": map[string]any{"type": "AssumedRole", "principalId": fmt.Sprintf("AROA%012X:session-%d", r.Uint64()&0xffffffffffff, k), "arn": fmt.Sprintf("arn:aws:sts::123456789012:assumed-role/deployer/session-%d", k), "accountId": "123456789012"},
				"eventTime": t0.Format(time.RFC3339), "eventSource": "iam.amazonaws.com", "eventName": []string{"CreateRole", "AttachRolePolicy", "PutRolePolicy", "DeleteRole"}[r.IntN(4)],
				"awsRegion": "us-east-1", "sourceIPAddress": fmt.Sprintf("10.%d.%d.%d", k/256, k%256, r.IntN(256)), "userAgent": "aws-cli/2.15.0 Python/3.11.6",
				"requestParameters": map[string]any{"roleName": fmt.Sprintf("svc-%d-task", k), "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
				"requestID":         id(), "eventID": id(), "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
			}))
		case 4: // custom shop events
			tiers := []string{"bronze", "silver", "gold", fmt.Sprintf("Tier-%d", k)}
			detail := map[string]any{
				"total": float64(r.IntN(1000000)) / 100, "currency": "EUR",
				"customer": map[string]any{"id": fmt.Sprintf("c-%d", r.IntN(100000)), "tier": tiers[r.IntN(4)], "email": fmt.Sprintf("user%d@example.com", r.IntN(100000))},
				"items": []map[string]any{
					{"sku": fmt.Sprintf("SKU-%d", r.IntN(5000)), "qty": r.IntN(5) + 1, "price": float64(r.IntN(50000)) / 100},
					{"sku": fmt.Sprintf("SKU-%d", r.IntN(5000)), "qty": r.IntN(5) + 1, "price": float64(r.IntN(50000)) / 100},
				},
				"shipping": map[string]any{"country": []string{"DE", "FR", "NL", "ES"}[r.IntN(4)], "method": "standard", "address": map[string]any{"city": "Berlin", "zip": fmt.Sprintf("%05d", r.IntN(99999))}},
			}
			dt := "Order Placed"
			if r.IntN(2) == 0 {
				detail["orderId"] = fmt.Sprintf("o-%d", k)
			} else {
				detail["cartId"] = fmt.Sprintf("k-%d", k)
				dt = "Cart Abandoned"
			}
			out = append(out, envelope(i, dt, "com.example.shop", nil, detail))
		}
	}
	return out
}

// benchPatternSource is a benchmark rule of one of ten kinds on value i;
// kinds 10 to 12 are broad rules that match many events.
func benchPatternSource(kind, i int) string {
	switch kind {
	case 10:
		return `{"source":["aws.ecs"],"detail-type":["ECS Task State Change"],"detail":{"lastStatus":["STOPPED"]}}`
	case 11:
		return `{"detail-type":["Object Created"],"detail":{"object":{"size":[{"numeric":[">",40000000]}]}}}`
	case 12:
		return `{"source":[{"prefix":"com.example."}],"detail":{"total":[{"numeric":[">=",9000]}]}}`
	}
	switch kind {
	case 0:
		return fmt.Sprintf(`{"source":["aws.s3"],"detail-type":["Object Created"],"detail":{"bucket":{"name":["bucket-%d"]}}}`, i)
	case 1:
		return fmt.Sprintf(`{"source":["aws.s3"],"detail":{"object":{"key":[{"prefix":"tenant-%d/"}]}}}`, i)
	case 2:
		return fmt.Sprintf(`{"detail-type":["Object Created"],"detail":{"object":{"key":[{"suffix":".%d.mp4"}],"size":[{"numeric":[">",1000]}]}}}`, i)
	case 3:
		return fmt.Sprintf(`{"source":["com.example.shop"],"detail":{"total":[{"numeric":[">=",%d,"<",%d]}]}}`, i*10, i*10+5)
	case 4:
		return fmt.Sprintf(`{"source":["aws.ec2"],"detail":{"state":[{"anything-but":["running","pending"]}],"instance-id":["i-%d"]}}`, i)
	case 5:
		return fmt.Sprintf(`{"detail":{"customer":{"tier":[{"equals-ignore-case":"TIER-%d"}]}}}`, i)
	case 6:
		return fmt.Sprintf(`{"detail":{"object":{"key":[{"wildcard":"archive-%d/*/*.tar.gz"}]}}}`, i)
	case 7:
		return fmt.Sprintf(`{"source":["aws.iam"],"detail":{"sourceIPAddress":[{"cidr":"10.%d.%d.0/24"}]}}`, i/256, i%256)
	case 8:
		return fmt.Sprintf(`{"source":["aws.ecs"],"detail":{"group":["family:svc-%d"],"stoppedReason":[{"exists":true}],"containers":{"name":["app"],"exitCode":[{"anything-but":0}]}}}`, i)
	default:
		return fmt.Sprintf(`{"source":["com.example.shop"],"$or":[{"detail":{"orderId":["o-%d"]}},{"detail":{"cartId":["k-%d"]}}]}`, i, i)
	}
}

// benchPatterns returns n rules: three broad ones, and the rest of the ten
// kinds in turn, each on its own value, spread over the corpus's values, so
// that rule sets of any size stay realistic (an event matches few rules).
func benchPatterns(tb testing.TB, n int) []*Pattern {
	tb.Helper()
	ps := make([]*Pattern, n)
	for i := range n {
		kind := 10 + i
		if i >= 3 {
			kind = i % 10
		}
		p, err := ParsePattern([]byte(benchPatternSource(kind, i*1000/n)))
		if err != nil {
			tb.Fatal(err)
		}
		ps[i] = p
	}
	return ps
}

// BenchmarkMatch matches the corpus against 10, 100 and 1,000 rules.
func BenchmarkMatch(b *testing.B) {
	events := loadCorpus(b)
	size := 0
	for _, ev := range events {
		size += len(ev)
	}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			m := NewMatcher(benchPatterns(b, n))
			dst := make([]int, 0, 16)
			b.SetBytes(int64(size / len(events)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var err error
				dst, err = m.Match(events[i], dst[:0])
				if err != nil {
					b.Fatal(err)
				}
				if i++; i == len(events) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkMatchParallel is BenchmarkMatch with 100 rules on every core.
func BenchmarkMatchParallel(b *testing.B) {
	events := loadCorpus(b)
	m := NewMatcher(benchPatterns(b, 100))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]int, 0, 16)
		i := 0
		for pb.Next() {
			dst, _ = m.Match(events[i], dst[:0])
			if i++; i == len(events) {
				i = 0
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRender renders a typical input template.
func BenchmarkRender(b *testing.B) {
	ev, err := ParseEvent(loadCorpus(b)[0], time.Now())
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTransformer(map[string]string{"bucket": "$.detail.bucket.name", "key": "$.detail.object.key", "size": "$.detail.object.size"},
		`{"bucket": <bucket>, "key": <key>, "size": <size>, "rule": <aws.events.rule-name>}`)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = tr.Render(dst[:0], ev, "thumbnails")
	}
}

// BenchmarkParseEvent reads an event's envelope, as every source does.
func BenchmarkParseEvent(b *testing.B) {
	events := loadCorpus(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := ParseEvent(events[i], time.Time{}); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(events) {
			i = 0
		}
	}
}

// BenchmarkMatchNaive is the baseline the Matcher replaces: each rule
// matched on its own, one scan of the event per rule.
func BenchmarkMatchNaive(b *testing.B) {
	events := loadCorpus(b)
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			ps := benchPatterns(b, n)
			for _, p := range ps {
				p.Match(events[0]) // build each pattern's own matcher
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for _, p := range ps {
					if _, err := p.Match(events[i]); err != nil {
						b.Fatal(err)
					}
				}
				if i++; i == len(events) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
