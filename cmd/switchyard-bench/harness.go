package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

// options are the harness's flags.
type options struct {
	scenarios []scenario
	n         int           // messages per preloaded run
	runs      int           // runs of each program per scenario, alternating
	rate      int           // events/s of paced runs
	duration  time.Duration // of paced and outage runs
	bin       string        // directory with prebuilt switchyard and awstestd
	timeout   time.Duration // bound of one run
	noCeiling bool
	cpuprof   string // directory for CPU profiles of switchyard runs
	latency   time.Duration
	memLimit  string // GOMEMLIMIT for switchyard, as a container's memory limit would set it
	// self runs the ceiling program as `self ceiling ...`; default this
	// executable.
	self string
	// devBuild builds switchyard as `go build` does by default (sharing the
	// build cache with tests) instead of static and stripped.
	devBuild bool
	// ledgerOff adds runs of switchyard with the delivery ledger off
	// (program ledgerOffProgram), to measure what the ledger costs.
	ledgerOff bool
}

// ledgerOffProgram is switchyard run with `ledger: {enabled: false}`.
const ledgerOffProgram = "switchyard-ledger-off"

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("switchyard-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var names string
	var all []string
	for _, s := range scenarios {
		all = append(all, s.name)
	}
	fs.StringVar(&names, "scenarios", strings.Join(all, ","), "scenarios to run, comma-separated")
	fs.IntVar(&o.n, "n", 20000, "messages preloaded per run")
	fs.IntVar(&o.runs, "runs", 3, "runs of switchyard and of the ceiling per scenario, alternating")
	fs.IntVar(&o.rate, "rate", 1000, "events/s of the paced scenario (the outage scenario runs at half)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of the paced and outage scenarios' feeding")
	fs.StringVar(&o.bin, "bin", "", "`directory` holding prebuilt switchyard and awstestd binaries (default: build them)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound of one run")
	fs.BoolVar(&o.noCeiling, "no-ceiling", false, "skip the ceiling runs")
	fs.StringVar(&o.cpuprof, "cpuprofile", "", "`directory` to write profiles to: of each switchyard run a CPU profile (5 s), then heap and goroutine profiles, from its admin endpoint's /debug/pprof; of each ceiling run a CPU profile from ready to exit")
	fs.DurationVar(&o.latency, "lambda-latency", 0, "latency of every Lambda invocation in awstestd")
	fs.BoolVar(&o.ledgerOff, "ledger-off", false, "also run switchyard with the delivery ledger off, after each switchyard run, and compare")
	fs.StringVar(&o.memLimit, "gomemlimit", "", "GOMEMLIMIT for switchyard (such as 48MiB), as 90% of a container's memory limit sets it")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, n := range strings.Split(names, ",") {
		i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == n })
		if i < 0 {
			fmt.Fprintf(stderr, "switchyard-bench: unknown scenario %q (known: %s)\n", n, strings.Join(all, ", "))
			return o, errors.New("unknown scenario")
		}
		o.scenarios = append(o.scenarios, scenarios[i])
	}
	if o.n < 1 || o.runs < 1 || o.rate < 1 || o.duration <= 0 {
		fmt.Fprintln(stderr, "switchyard-bench: -n, -runs, -rate and -duration must be positive")
		return o, errors.New("bad flags")
	}
	return o, nil
}

// result is what one run measured.
type result struct {
	scenario, program string
	events            int           // messages handled
	elapsed           time.Duration // from ready (or the first send) to drained
	cpu               time.Duration // the process's CPU time over elapsed
	ready             time.Duration // from process start to ready
	rssReady          int64         // resident memory (VmRSS) when ready
	rssSteady         int64
	peakMem           mem // the largest samples while measuring
	idleMem           mem // idle runs: after 2s at rest
	latency           awstest.LatencySummary
	calls             int64            // target calls awstestd answered
	faults            int64            // of which an injected fault answered
	outage            [4]mem           // outage runs: peak memory before, in the first and second halves of, and after the failures
	stats             map[string]int64 // awstestd call counts
}

func (r result) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// cpuPer1k is CPU seconds per 1,000 events.
func (r result) cpuPer1k() float64 { return r.cpu.Seconds() / float64(r.events) * 1000 }

// bench runs every scenario and prints the table; it returns the results of
// every run, grouped by scenario.
func bench(ctx context.Context, o options, stdout, stderr io.Writer) ([][]result, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("the harness reads CPU time and memory from /proc: linux only")
	}
	bin := o.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "switchyard-bench")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := build(ctx, dir, o.devBuild); err != nil {
			return nil, err
		}
		bin = dir
	}
	self := o.self
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	nproc := runtime.NumCPU()
	fmt.Fprintf(stderr, "switchyard-bench: %d CPUs, GOMAXPROCS %d\n", nproc, runtime.GOMAXPROCS(0))
	var all [][]result
	for _, sc := range o.scenarios {
		var rs []result
		programs := []string{"switchyard"}
		if sc.ceiling != nil && !o.noCeiling {
			programs = []string{"ceiling", "switchyard"}
		}
		if o.ledgerOff {
			programs = append(programs, ledgerOffProgram)
		}
		for i := range o.runs {
			for _, prog := range programs {
				r, err := runOnce(ctx, o, sc, prog, i, bin, self)
				if err != nil {
					return all, fmt.Errorf("%s (%s, run %d): %w", sc.name, prog, i+1, err)
				}
				fmt.Fprintln(stderr, r.line())
				rs = append(rs, r)
			}
		}
		all = append(all, rs)
	}
	fi, _ := os.Stat(filepath.Join(bin, "switchyard"))
	limit := ""
	if o.memLimit != "" {
		limit = "; switchyard with GOMEMLIMIT=" + o.memLimit
	}
	fmt.Fprintf(stdout, "\n%d CPUs (runtime.NumCPU); -n %d, -runs %d, -rate %d, -duration %v; switchyard binary %.1f MB%s\n\n",
		nproc, o.n, o.runs, o.rate, o.duration, float64(fi.Size())/1e6, limit)
	writeTable(stdout, all)
	return all, nil
}

// build compiles switchyard as it is shipped (static, stripped; with dev, as
// go build does by default) and awstestd.
func build(ctx context.Context, dir string, dev bool) error {
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return fmt.Errorf("go list -m: %w", err)
	}
	for _, b := range []struct{ out, pkg string }{{"switchyard", "./cmd/switchyard"}, {"awstestd", "./internal/awstest/awstestd"}} {
		args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, b.out), b.pkg}
		env := append(os.Environ(), "CGO_ENABLED=0")
		if dev {
			args, env = []string{"build", "-o", filepath.Join(dir, b.out), b.pkg}, os.Environ()
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = strings.TrimSpace(string(root))
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

func (r result) line() string {
	s := fmt.Sprintf("%-12s %-10s events %6d", r.scenario, r.program, r.events)
	if r.events > 0 {
		s += fmt.Sprintf("  %8.0f/s  cpu %.4f s/1k", r.rate(), r.cpuPer1k())
	}
	s += fmt.Sprintf("  ready %5.1f ms  rss ready/peak/steady %.1f/%.1f/%.1f MB (anon peak %.1f)", ms(r.ready), mb(r.rssReady), mb(r.peakMem.rss), mb(r.rssSteady), mb(r.peakMem.anon))
	if r.calls > 0 {
		s += fmt.Sprintf("  calls %d", r.calls)
	}
	if r.latency.Count > 0 {
		s += fmt.Sprintf("  r2i p50/p90/p99 %.2f/%.2f/%.2f ms (n %d, unattributed %d)", r.latency.P50/1000, r.latency.P90/1000, r.latency.P99/1000, r.latency.Count, r.latency.Unattributed)
	}
	if r.idleMem.rss > 0 {
		s += fmt.Sprintf("  idle rss %.1f MB (anon %.1f)", mb(r.idleMem.rss), mb(r.idleMem.anon))
	}
	if r.outage != [4]mem{} {
		o := r.outage
		s += fmt.Sprintf("  outage rss before/during (1st, 2nd half)/after %.1f/%.1f/%.1f/%.1f MB (anon %.1f/%.1f/%.1f/%.1f)",
			mb(o[0].rss), mb(o[1].rss), mb(o[2].rss), mb(o[3].rss), mb(o[0].anon), mb(o[1].anon), mb(o[2].anon), mb(o[3].anon))
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b int64) float64         { return float64(b) / (1 << 20) }

// runOnce runs one program on one scenario against a fresh awstestd.
func runOnce(ctx context.Context, o options, sc scenario, program string, run int, bin, self string) (r result, err error) {
	r = result{scenario: sc.name, program: program}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "switchyard-bench-run")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)

	addr, err := freePort()
	if err != nil {
		return r, err
	}
	awsArgs := []string{"-addr", addr, "-probe-latency", "-queue", "bench?VisibilityTimeout=60", "-cluster", "bench", "-task-definition", "work=app"}
	if o.latency > 0 {
		awsArgs = append(awsArgs, "-latency", o.latency.String())
	}
	fake, err := startProc("awstestd", dir, filepath.Join(bin, "awstestd"), awsArgs, os.Environ())
	if err != nil {
		return r, err
	}
	defer fake.stop(10 * time.Second)
	awsURL := "http://" + addr
	if err := fake.waitLine(ctx, "awstestd: listening"); err != nil {
		return r, err
	}
	api := newAPI(awsURL)
	q, err := api.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("bench")})
	if err != nil {
		return r, fmt.Errorf("get queue url: %w", err)
	}
	queueURL := *q.QueueUrl

	events := o.n
	if sc.load == preload {
		if err := api.preload(ctx, queueURL, events); err != nil {
			return r, err
		}
	}

	admin, err := freePort()
	if err != nil {
		return r, err
	}
	w := world{awsURL: awsURL, queueURL: queueURL, admin: admin, pprof: o.cpuprof != ""}
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+awstest.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+awstest.SecretAccessKey, "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	var p *proc
	if program == "ceiling" {
		args := append([]string{"ceiling"}, sc.ceiling(w)...)
		if o.cpuprof != "" {
			args = append(args, "-cpuprofile", filepath.Join(o.cpuprof, fmt.Sprintf("%s-%d.ceiling.pprof", sc.name, run+1)))
		}
		p, err = startProc("ceiling", dir, self, args, env)
	} else {
		file := filepath.Join(dir, "switchyard.yaml")
		config := sc.config(w)
		if program == ledgerOffProgram {
			config = strings.Replace(config, "version: 1\n", "version: 1\nledger: {enabled: false}\n", 1)
		}
		if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
			return r, err
		}
		if o.memLimit != "" {
			env = append(env, "GOMEMLIMIT="+o.memLimit)
		}
		p, err = startProc("switchyard", dir, filepath.Join(bin, "switchyard"), []string{"run", "-c", file, "-log-level", "warn"}, env)
	}
	if err != nil {
		return r, err
	}
	defer func() {
		if serr := p.stop(30 * time.Second); serr != nil && err == nil {
			err = fmt.Errorf("stop: %w\n%s", serr, p.logTail(2048))
		}
	}()
	if program == "ceiling" {
		err = p.waitLine(ctx, "ready")
	} else {
		err = waitReady(ctx, p, admin)
	}
	if err != nil {
		return r, err
	}
	r.ready = time.Since(p.started)
	r.rssReady = p.mem().rss
	samples := sampleRSS(p, 20*time.Millisecond)
	cpu0, t0 := p.cpu(), time.Now()

	var prof chan error
	if o.cpuprof != "" && program == "switchyard" && sc.load != idle {
		prof = make(chan error, 1)
		go func() {
			prof <- fetchProfiles(ctx, admin, o.cpuprof, fmt.Sprintf("%s-%d", sc.name, run+1))
		}()
	}

	var fed chan error
	var faultAt [2]time.Duration
	switch sc.load {
	case idle:
		events = 0
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return r, ctx.Err()
		}
		r.idleMem = p.mem()
	case paced, outage:
		rate := o.rate
		if sc.load == outage {
			rate /= 2
			faultAt = [2]time.Duration{o.duration / 3, 2 * o.duration / 3}
		}
		events = max(1, int(float64(rate)*o.duration.Seconds()))
		fed = make(chan error, 1)
		go func() { fed <- api.feed(ctx, queueURL, events, rate, faultAt) }()
	}
	if sc.load != idle {
		if err := api.waitDrained(ctx, queueURL, fed); err != nil {
			return r, fmt.Errorf("%w\n%s", err, p.logTail(2048))
		}
	}
	r.elapsed, r.cpu, r.events = time.Since(t0), p.cpu()-cpu0, events
	ss := samples.stop()
	r.peakMem, r.rssSteady = peak(ss, 0, time.Hour), steady(ss)
	if sc.load == outage {
		mid := (faultAt[0] + faultAt[1]) / 2
		r.outage = [4]mem{peak(ss, 0, faultAt[0]), peak(ss, faultAt[0], mid), peak(ss, mid, faultAt[1]), peak(ss, faultAt[1], time.Hour)}
	}
	if prof != nil {
		if err := <-prof; err != nil {
			return r, err
		}
	}
	if r.latency, err = api.latency(ctx); err != nil {
		return r, err
	}
	st, err := api.stats(ctx)
	if err != nil {
		return r, err
	}
	r.stats = st.Calls
	r.calls = st.Calls["lambda:Invoke"] + st.Calls["ecs:RunTask"]
	r.faults = st.Faults["lambda:Invoke"]
	return r, nil
}

// waitReady polls switchyard's /readyz every millisecond.
func waitReady(ctx context.Context, p *proc, admin string) error {
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("switchyard exited: %v\n%s", p.err, p.logTail(2048))
		case <-ctx.Done():
			return fmt.Errorf("switchyard not ready: %w\n%s", ctx.Err(), p.logTail(2048))
		case <-time.After(time.Millisecond):
		}
	}
}

// fetchProfiles asks switchyard's admin endpoint for a CPU profile of the
// next 5 seconds, then for heap and goroutine profiles of that moment, and
// writes them to dir as <name>.pprof, <name>.heap.pprof and
// <name>.goroutine.pprof.
func fetchProfiles(ctx context.Context, admin, dir, name string) error {
	for _, p := range []struct{ path, file string }{
		{"profile?seconds=5", name + ".pprof"},
		{"heap", name + ".heap.pprof"},
		{"goroutine", name + ".goroutine.pprof"},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/"+p.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("profile %s: %s (is admin.pprof on?)", p.path, resp.Status)
		}
		if err := os.WriteFile(filepath.Join(dir, p.file), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// api is the harness's own view of awstestd.
type api struct {
	url string
	sqs *sqs.Client
	hc  *http.Client
}

func newAPI(url string) *api {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(awstest.AccessKeyID, awstest.SecretAccessKey, ""),
		BaseEndpoint: aws.String(url),
	}
	return &api{url: url, sqs: sqs.NewFromConfig(cfg), hc: &http.Client{Timeout: 10 * time.Second}}
}

// preload sends n messages, ten to a call, from four senders.
func (a *api) preload(ctx context.Context, queueURL string, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				first := int(next.Add(10)) - 10
				if first >= n || ctx.Err() != nil {
					return
				}
				var entries []sqstypes.SendMessageBatchRequestEntry
				for i := first; i < min(first+10, n); i++ {
					entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body(i))})
				}
				out, err := a.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &queueURL, Entries: entries})
				if err == nil && len(out.Failed) > 0 {
					err = fmt.Errorf("%d entries failed", len(out.Failed))
				}
				if err != nil {
					errs <- fmt.Errorf("preload: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// feed sends n messages one at a time at rate per second, each when its
// time comes (so a late send does not shift the rest). With a fault window,
// Lambda answers 503 ServiceException from faultAt[0] to faultAt[1].
func (a *api) feed(ctx context.Context, queueURL string, n, rate int, faultAt [2]time.Duration) error {
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						errs <- ctx.Err()
						return
					}
				}
				if _, err := a.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &queueURL, MessageBody: aws.String(body(i))}); err != nil {
					errs <- fmt.Errorf("feed: %w", err)
					return
				}
			}
		})
	}
	if faultAt[1] > 0 {
		wg.Go(func() {
			time.Sleep(time.Until(start.Add(faultAt[0])))
			rule, _ := json.Marshal(awstest.FaultRule{Op: "lambda:Invoke", Fault: awstest.Fault{Status: 503, Code: "ServiceException", Message: "bench outage"}})
			if err := a.control(ctx, http.MethodPost, rule); err != nil {
				errs <- err
				return
			}
			time.Sleep(time.Until(start.Add(faultAt[1])))
			if err := a.control(ctx, http.MethodDelete, nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (a *api) control(ctx context.Context, method string, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, method, a.url+awstest.FaultsPath, bytes.NewReader(body))
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, awstest.FaultsPath, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%s %s: %s", method, awstest.FaultsPath, resp.Status)
	}
	return nil
}

func (a *api) getJSON(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.url+path, nil)
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitDrained polls awstestd every 10ms until the queue holds nothing and
// feeding (if any) has ended.
func (a *api) waitDrained(ctx context.Context, queueURL string, fed chan error) error {
	feeding := fed != nil
	for {
		if feeding {
			select {
			case err := <-fed:
				if err != nil {
					return err
				}
				feeding = false
			default:
			}
		}
		var st awstest.Stats
		if err := a.getJSON(ctx, awstest.StatsPath, &st); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		if q := st.Queues["bench"]; !feeding && q.Visible+q.InFlight+q.Delayed == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("queue not drained: %w (%+v)", ctx.Err(), st.Queues["bench"])
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (a *api) latency(ctx context.Context) (awstest.LatencySummary, error) {
	var l awstest.LatencySummary
	err := a.getJSON(ctx, awstest.LatencyPath, &l)
	return l, err
}

func (a *api) stats(ctx context.Context) (awstest.Stats, error) {
	var st awstest.Stats
	err := a.getJSON(ctx, awstest.StatsPath, &st)
	return st, err
}
