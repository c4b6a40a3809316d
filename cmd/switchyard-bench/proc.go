package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ),
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// proc is a process under measurement: its CPU time and resident memory
// are read from /proc.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}
	err     error // valid once exited is closed
	logPath string
}

// startProc runs bin with args, its stdout and stderr going to a file in
// dir (a pipe that nobody drains could stall it).
func startProc(name, dir, bin string, args []string, env []string) (*proc, error) {
	logPath := dir + "/" + name + ".log"
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	cmd.Dir = dir // state (./data/nats) stays with the run
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM and waits up to within, then kills.
func (p *proc) stop(within time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not exit within %v of SIGTERM", p.name, within)
	}
}

// logTail returns the end of the process's output, for error reports.
func (p *proc) logTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitLine waits for a line of the process's output starting with prefix.
func (p *proc) waitLine(ctx context.Context, prefix string) error {
	for {
		f, err := os.Open(p.logPath)
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), prefix) {
					f.Close()
					return nil
				}
			}
			f.Close()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logTail(2048))
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %q: %w", p.name, prefix, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// cpu returns the process's user plus system CPU time.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// mem is resident memory in bytes: all of it (VmRSS), and the anonymous
// part (RssAnon) — heap, stacks and runtime structures, which no other
// process shares. The rest is the binary's own pages mapped from the page
// cache, shared with every process running the same file and dropped first
// under memory pressure.
type mem struct{ rss, anon int64 }

// mem reads the process's resident memory from /proc/<pid>/status.
func (p *proc) mem() mem {
	var m mem
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return m
	}
	defer f.Close()
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n << 10
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			m.rss = kb(v)
		} else if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			m.anon = kb(v)
		}
	}
	return m
}

// sampler records a process's resident memory every interval until stopped.
type sampler struct {
	mu      sync.Mutex
	samples []rssSample
	stopped chan struct{}
	done    chan struct{}
}

type rssSample struct {
	at time.Duration // since the sampler started
	mem
}

func sampleRSS(p *proc, every time.Duration) *sampler {
	s := &sampler{stopped: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m := p.mem(); m.rss > 0 {
				s.mu.Lock()
				s.samples = append(s.samples, rssSample{time.Since(start), m})
				s.mu.Unlock()
			}
			select {
			case <-s.stopped:
				return
			case <-p.exited:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() []rssSample {
	close(s.stopped)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

// peak is the largest samples in [from, to), of each kind.
func peak(ss []rssSample, from, to time.Duration) mem {
	var m mem
	for _, s := range ss {
		if s.at >= from && s.at < to {
			m.rss, m.anon = max(m.rss, s.rss), max(m.anon, s.anon)
		}
	}
	return m
}

// steady is the median sample in the second half of the samples: memory
// once the load has settled.
func steady(ss []rssSample) int64 {
	if len(ss) == 0 {
		return 0
	}
	rs := make([]int64, 0, len(ss)/2+1)
	for _, s := range ss[len(ss)/2:] {
		rs = append(rs, s.rss)
	}
	slices.Sort(rs)
	return rs[len(rs)/2]
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

var errTimeout = errors.New("timed out")

// poll calls cond every interval until it returns true or an error, or
// within has passed.
func poll(within, every time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(every)
	}
}
