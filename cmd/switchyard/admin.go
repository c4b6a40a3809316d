package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/configsrc"
	"github.com/switchyard-dev/switchyard/internal/telemetry"
)

// adminOpts are the flags of the commands that talk to a running daemon:
// where its admin endpoint is, and how long to wait for it.
type adminOpts struct {
	file, addr string
	timeout    time.Duration
}

// adminFlags parses -c, --addr and --timeout, and the command's own flags
// (more).
func adminFlags(e *env, name string, args []string, wait time.Duration, more func(fs *flag.FlagSet)) (adminOpts, error) {
	fs := newFlags(e, name)
	file := fs.String("c", "", "the config whose admin.listen to ask, found as run finds it (default $SWITCHYARD_CONFIG, then $SWITCHYARD_CONFIG_YAML, then ./switchyard.yaml; admin.listen's default "+config.DefaultAdminListen+" when there is none)")
	addr := fs.String("addr", "", "the daemon's admin endpoint, host:port, instead of the config's admin.listen")
	timeout := fs.Duration("timeout", wait, "how long to wait for an answer")
	if more != nil {
		more(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return adminOpts{}, err
	}
	if *timeout <= 0 {
		return adminOpts{}, fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	if *addr != "" {
		if _, _, err := net.SplitHostPort(*addr); err != nil {
			return adminOpts{}, fmt.Errorf("%w: --addr %q: want host:port, as admin.listen", errUsage, *addr)
		}
	}
	return adminOpts{file: *file, addr: *addr, timeout: *timeout}, nil
}

// adminTarget is the daemon's admin endpoint, and where its address came
// from, for messages.
type adminTarget struct {
	addr, from string
}

// target finds the admin endpoint: --addr, else admin.listen of the config
// (read as run reads it, within ctx), else, when no config is given and
// there is no ./switchyard.yaml, admin.listen's default. A config that
// cannot be read, or says none, is an error that says so: guessing would
// ask the wrong place.
func (o adminOpts) target(ctx context.Context) (adminTarget, error) {
	t := adminTarget{addr: o.addr, from: "--addr"}
	if t.addr == "" {
		var err error
		if t.addr, t.from, err = configuredAdmin(ctx, o.file); err != nil {
			return adminTarget{}, err
		}
	}
	host, port, err := net.SplitHostPort(t.addr)
	if err != nil {
		return adminTarget{}, fmt.Errorf("%s %q: want host:port", t.from, t.addr)
	}
	// admin.listen may name every interface (":9090", "0.0.0.0:9090"):
	// the daemon is then reached on loopback.
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	t.addr = net.JoinHostPort(host, port)
	return t, nil
}

// configuredAdmin returns admin.listen of the config run would read (file,
// or the environment's), and where it came from.
func configuredAdmin(ctx context.Context, file string) (addr, from string, err error) {
	name, data, err := configsrc.Load(ctx, file, os.LookupEnv)
	if err != nil {
		_, yamlSet := os.LookupEnv(configsrc.EnvYAML)
		if file == "" && os.Getenv(configsrc.EnvRef) == "" && !yamlSet && errors.Is(err, fs.ErrNotExist) {
			return config.DefaultAdminListen, "admin.listen's default: no -c, $" + configsrc.EnvRef + ", $" + configsrc.EnvYAML + " or ./" + configsrc.DefaultFile, nil
		}
		return "", "", fmt.Errorf("reading the config for admin.listen (or give --addr): %w", err)
	}
	listen, err := config.AdminListen(name, data, os.LookupEnv)
	if err != nil {
		return "", "", fmt.Errorf("reading the config for admin.listen (or give --addr):\n%w", err)
	}
	if listen == "none" {
		return "", "", fmt.Errorf("%s: admin.listen is none: the daemon serves no admin endpoint to ask", name)
	}
	return listen, "admin.listen in " + name, nil
}

// cmdHealth exits 0 when the daemon has started and works (/healthz), or
// with --ready when it is ready (/readyz), else 1 with the reason: a
// container health check in an image with no shell or curl. A config that
// cannot be read exits 2, within --timeout as everything else.
func cmdHealth(ctx context.Context, e *env, args []string) (int, error) {
	var ready *bool
	o, err := adminFlags(e, "health", args, 5*time.Second, func(fs *flag.FlagSet) {
		ready = fs.Bool("ready", false, "ask whether the daemon is ready (/readyz: its sources receive), not whether it works (/healthz)")
	})
	if err != nil {
		return exitUsage, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	t, err := o.target(ctx)
	if err != nil {
		return exitUsage, err
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	code, body, err := call(ctx, &http.Client{}, http.MethodGet, t, path)
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
	o, err := adminFlags(e, "reload", args, 2*time.Minute, nil)
	if err != nil {
		return exitUsage, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	t, err := o.target(ctx)
	if err != nil {
		return exitUsage, err
	}
	code, body, err := call(ctx, &http.Client{}, http.MethodPost, t, "/reload")
	if err != nil {
		return exitFail, err
	}
	switch code {
	case http.StatusOK:
	case http.StatusUnprocessableEntity:
		fmt.Fprintf(e.stderr, "switchyard reload: rejected, the running config is kept:\n%s", body)
		return exitFail, errReported
	default:
		return exitFail, fmt.Errorf("%s/reload answered %d: %s", t.addr, code, strings.TrimSpace(body))
	}
	fmt.Fprint(e.stdout, body)
	return exitOK, nil
}

// cmdStatus prints /status as tables, once or every --interval.
func cmdStatus(ctx context.Context, e *env, args []string) (int, error) {
	var watch *bool
	var every *time.Duration
	o, err := adminFlags(e, "status", args, 5*time.Second, func(fs *flag.FlagSet) {
		watch = fs.Bool("watch", false, "refresh until interrupted")
		every = fs.Duration("interval", 2*time.Second, "how often --watch refreshes")
	})
	if err == nil && *every <= 0 {
		err = fmt.Errorf("%w: --interval must be positive", errUsage)
	}
	if err != nil {
		return exitUsage, err
	}
	tctx, cancel := context.WithTimeout(ctx, o.timeout)
	t, err := o.target(tctx)
	cancel()
	if err != nil {
		return exitUsage, err
	}
	client := &http.Client{Timeout: o.timeout}
	// On a terminal --watch redraws the screen; anywhere else (a pipe, a
	// file) it writes plain snapshots, a blank line between them.
	redraw := *watch && isTerminal(e.stdout)
	for n := 0; ; n++ {
		code, body, err := call(ctx, client, http.MethodGet, t, "/status")
		if err != nil {
			if ctx.Err() != nil {
				return exitOK, nil
			}
			return exitFail, err
		}
		var st telemetry.Status
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
			if *watch && ctx.Err() != nil {
				return exitOK, nil // interrupted while it answered
			}
			return exitFail, fmt.Errorf("%s/status answered %d: %.200s", t.addr, code, body)
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
func call(ctx context.Context, client *http.Client, method string, t adminTarget, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+t.addr+path, nil)
	if err != nil {
		return 0, "", fmt.Errorf("%s %q: %v", t.from, t.addr, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("the daemon's admin endpoint %s (%s): %w", t.addr, t.from, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, "", fmt.Errorf("the daemon's admin endpoint %s (%s): %w", t.addr, t.from, err)
	}
	return resp.StatusCode, string(b), nil
}

func renderStatus(w io.Writer, st *telemetry.Status, now time.Time) {
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY: " + strings.Join(st.NotReady, "; ")
	}
	fmt.Fprintf(w, "switchyard %s, up %s, %s\n", st.Version, now.Sub(st.Started).Round(time.Second), ready)
	fmt.Fprintf(w, "config %s, loaded %s ago, %d reloads\n", st.Config.File, now.Sub(st.Config.LoadedAt).Round(time.Second), st.Config.Reloads)
	if r := strings.TrimSpace(st.Config.LastReject); r != "" {
		// Whole, a problem per line: the reason is what to fix.
		fmt.Fprintln(w, "last reload REJECTED, the running config is kept:")
		for line := range strings.Lines(r) {
			fmt.Fprintf(w, "  %s", line)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "in flight %d of %d; rates per second over %gs\n\n", st.InFlight, st.MaxInFlight, st.RateWindow)

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
	fmt.Fprintln(tw, "TARGET\tTYPE\tRATE\tIN FLIGHT\tWAITING\tLIMIT\tBREAKER\tDELIVERED\tDEAD-LETTERED\tRETRIED\tTHROTTLED\tBACKLOG\tLAST ERROR")
	for _, t := range st.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t%d/%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", t.Name, t.Type, t.Rate, t.InFlight, t.Waiting, t.Limit, t.Concurrency,
			t.Breaker, t.Delivered, t.DeadLettered, t.Retried, t.Throttled, backlogColumn(t.Backlog), lastErr(t.LastError, now))
	}
	tw.Flush()
	for _, t := range st.Targets {
		if b := t.Backlog; b != nil && (b.LastError != nil || b.DepthError != "" || b.Corrupt > 0) {
			fmt.Fprintf(w, "backlog of %s (%s): %d moves failed, %d entries unreadable", t.Name, b.Kind, b.Errors, b.Corrupt)
			if b.LastError != nil {
				fmt.Fprintf(w, ", last failure %s", lastErr(b.LastError, now))
			}
			if b.DepthError != "" {
				fmt.Fprintf(w, ", depth unknown: %s", firstLine(b.DepthError))
			}
			fmt.Fprintln(w)
		}
	}
	if f := st.Fleet; showFleet(f) {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "INSTANCE\tHOST\tVERSION\tUP\tSEEN\tLEASES\tSHARES")
		for _, m := range f.Members {
			id := m.ID
			if id == f.Self {
				id += " (this)"
			}
			leases := strings.Join(m.Leases, ",")
			if leases == "" {
				leases = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t%s\n", id, m.Host, m.Version, now.Sub(m.Started).Round(time.Second),
				now.Sub(m.Seen).Round(time.Second), leases, sharesColumn(m.Shares))
		}
		tw.Flush()
	}
	if l := st.Ledger; l != nil {
		fmt.Fprintf(w, "\nledger: %d lookups, %d deliveries skipped as done, %d writes, %d errors, %d calls skipped while it was down",
			l.Lookups, l.Hits, l.Writes, l.Errors, l.Skipped)
		if l.LastError != nil {
			fmt.Fprintf(w, "; last error %s", lastErr(l.LastError, now))
		}
		fmt.Fprintln(w)
	}
}

// showFleet reports whether the fleet is worth a table: more than one
// instance, or one holding leases or shares of fleet-wide limits (an
// instance alone on its embedded server is no news).
func showFleet(f *telemetry.FleetStatus) bool {
	if f == nil {
		return false
	}
	for _, m := range f.Members {
		if len(f.Members) > 1 || len(m.Leases) > 0 || len(m.Shares) > 0 {
			return true
		}
	}
	return false
}

// backlogColumn is a target's backlog in the status table: its depth and
// the age of its oldest delivery, or - for none.
func backlogColumn(b *telemetry.BacklogStatus) string {
	switch {
	case b == nil:
		return "-"
	case b.Depth == 0:
		return "0"
	}
	return fmt.Sprintf("%d (%s)", b.Depth, (time.Duration(b.AgeSeconds) * time.Second).Round(time.Second))
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

// sharesColumn is an instance's shares of fleet-wide limits: target
// concurrency/rate, "fallback" while it keeps to its share.
func sharesColumn(shares map[string]telemetry.FleetShare) string {
	if len(shares) == 0 {
		return "-"
	}
	var parts []string
	for _, target := range slices.Sorted(maps.Keys(shares)) {
		s := shares[target]
		p := fmt.Sprintf("%s %d calls, %.1f/s", target, s.Concurrency, s.Rate)
		if s.Fallback {
			p += " (fallback)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}
