package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

// defaultAdmin is admin.listen's default, where health, status and reload
// look unless told otherwise.
const defaultAdmin = "127.0.0.1:9090"

// adminFlags parses --addr and --timeout, the flags of the commands that
// talk to a running daemon.
func adminFlags(e *env, name string, args []string, wait time.Duration, more func(fs *flag.FlagSet)) (addr string, client *http.Client, err error) {
	fs := newFlags(e, name)
	a := fs.String("addr", defaultAdmin, "the daemon's admin endpoint (admin.listen)")
	timeout := fs.Duration("timeout", wait, "how long to wait for an answer")
	if more != nil {
		more(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return "", nil, err
	}
	host, port, err := net.SplitHostPort(*a)
	if err != nil {
		return "", nil, fmt.Errorf("%w: --addr %q: want host:port, as admin.listen", errUsage, *a)
	}
	// admin.listen may name every interface (":9090", "0.0.0.0:9090"):
	// the daemon is then reached on loopback.
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if *timeout <= 0 {
		return "", nil, fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	return net.JoinHostPort(host, port), &http.Client{Timeout: *timeout}, nil
}

// cmdHealth exits 0 when the daemon answers /readyz with 200, else 1: an
// ECS container health check in an image with no shell or curl.
func cmdHealth(ctx context.Context, e *env, args []string) (int, error) {
	addr, client, err := adminFlags(e, "health", args, 5*time.Second, nil)
	if err != nil {
		return exitUsage, err
	}
	code, body, err := call(ctx, client, http.MethodGet, addr, "/readyz")
	if err != nil {
		return exitFail, err
	}
	fmt.Fprint(e.stdout, body)
	if code != http.StatusOK {
		return exitFail, errReported
	}
	return exitOK, nil
}

// cmdReload asks the daemon to reload its config, as SIGHUP does, and says
// whether the new config runs or why it was rejected.
func cmdReload(ctx context.Context, e *env, args []string) (int, error) {
	addr, client, err := adminFlags(e, "reload", args, 2*time.Minute, nil)
	if err != nil {
		return exitUsage, err
	}
	code, body, err := call(ctx, client, http.MethodPost, addr, "/reload")
	if err != nil {
		return exitFail, err
	}
	switch code {
	case http.StatusOK:
	case http.StatusUnprocessableEntity:
		fmt.Fprintf(e.stderr, "switchyard reload: rejected, the running config is kept:\n%s", body)
		return exitFail, errReported
	default:
		return exitFail, fmt.Errorf("%s/reload answered %d: %s", addr, code, strings.TrimSpace(body))
	}
	fmt.Fprint(e.stdout, body)
	return exitOK, nil
}

// cmdStatus prints /status as tables, once or every --interval.
func cmdStatus(ctx context.Context, e *env, args []string) (int, error) {
	var watch *bool
	var every *time.Duration
	addr, client, err := adminFlags(e, "status", args, 5*time.Second, func(fs *flag.FlagSet) {
		watch = fs.Bool("watch", false, "refresh until interrupted")
		every = fs.Duration("interval", 2*time.Second, "how often --watch refreshes")
	})
	if err == nil && *every <= 0 {
		err = fmt.Errorf("%w: --interval must be positive", errUsage)
	}
	if err != nil {
		return exitUsage, err
	}
	// On a terminal --watch redraws the screen; anywhere else (a pipe, a
	// file) it writes plain snapshots, a blank line between them.
	redraw := *watch && isTerminal(e.stdout)
	for n := 0; ; n++ {
		code, body, err := call(ctx, client, http.MethodGet, addr, "/status")
		if err != nil {
			if ctx.Err() != nil {
				return exitOK, nil
			}
			return exitFail, err
		}
		var st telemetry.Status
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
			return exitFail, fmt.Errorf("%s/status answered %d: %.200s", addr, code, body)
		}
		switch {
		case redraw:
			fmt.Fprint(e.stdout, "\x1b[H\x1b[2J") // home, clear screen
		case n > 0:
			fmt.Fprintln(e.stdout)
		}
		renderStatus(e.stdout, &st, time.Now())
		if !*watch {
			return exitOK, nil
		}
		select {
		case <-ctx.Done():
			return exitOK, nil
		case <-time.After(*every):
		}
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// call makes one request to the admin endpoint.
func call(ctx context.Context, client *http.Client, method, addr, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", fmt.Errorf("%w: --addr %q: %v", errUsage, addr, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("the daemon's admin endpoint: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, "", fmt.Errorf("the daemon's admin endpoint: %w", err)
	}
	return resp.StatusCode, string(b), nil
}

func renderStatus(w io.Writer, st *telemetry.Status, now time.Time) {
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY: " + strings.Join(st.NotReady, "; ")
	}
	fmt.Fprintf(w, "switchyard %s, up %s, %s\n", st.Version, now.Sub(st.Started).Round(time.Second), ready)
	fmt.Fprintf(w, "config %s, loaded %s ago, %d reloads", st.Config.File, now.Sub(st.Config.LoadedAt).Round(time.Second), st.Config.Reloads)
	if st.Config.LastReject != "" {
		fmt.Fprintf(w, ", last reload REJECTED: %s", firstLine(st.Config.LastReject))
	}
	fmt.Fprintf(w, "\nin flight %d of %d; rates per second over %gs\n\n", st.InFlight, st.MaxInFlight, st.RateWindow)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tTYPE\tRATE\tRECEIVED\tACKED\tNACKED\tUNMATCHED\tERRORS\tLAST ERROR")
	for _, s := range st.Sources {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Type, s.Rate, s.Received, s.Acked, s.Nacked, s.Unmatched, s.ReceiveErrors, lastErr(s.LastError, now))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "RULE\tRATE\tMATCHED")
	for _, r := range st.Rules {
		fmt.Fprintf(tw, "%s\t%.1f\t%d\n", r.Name, r.Rate, r.Matched)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "TARGET\tTYPE\tRATE\tIN FLIGHT\tWAITING\tLIMIT\tBREAKER\tDELIVERED\tDEAD-LETTERED\tRETRIED\tTHROTTLED\tLAST ERROR")
	for _, t := range st.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t%d/%d\t%s\t%d\t%d\t%d\t%d\t%s\n", t.Name, t.Type, t.Rate, t.InFlight, t.Waiting, t.Limit, t.Concurrency,
			t.Breaker, t.Delivered, t.DeadLettered, t.Retried, t.Throttled, lastErr(t.LastError, now))
	}
	tw.Flush()
}

func lastErr(e *telemetry.LastError, now time.Time) string {
	if e == nil {
		return "-"
	}
	// AWS errors say what happened last ("... ResourceNotFoundException:
	// Function not found"): keep both ends of a long one.
	msg := firstLine(e.Error)
	if len(msg) > 140 {
		msg = msg[:40] + "..." + msg[len(msg)-96:]
	}
	return fmt.Sprintf("%s ago: %s", now.Sub(e.At).Round(time.Second), msg)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
