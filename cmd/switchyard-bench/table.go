package main

import (
	"fmt"
	"io"
	"slices"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// of collects f over the results of one program.
func of(rs []result, program string, f func(result) float64) []float64 {
	var out []float64
	for _, r := range rs {
		if r.program == program {
			out = append(out, f(r))
		}
	}
	return out
}

// pairRatios is f(prog)/f(base) for each run of prog, the base run being
// the latest before it (runs alternate: ceiling, switchyard, and with
// -ledger-off switchyard-ledger-off).
func pairRatios(rs []result, prog, base string, f func(result) float64) []float64 {
	var out []float64
	for i, r := range rs {
		if r.program != prog {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			if rs[j].program == base {
				if f(rs[j]) > 0 {
					out = append(out, f(r)/f(rs[j]))
				}
				break
			}
		}
	}
	return out
}

// writeTable prints one Markdown row per scenario and program: medians over
// the runs, and the median of the per-pair ratios to the ceiling.
func writeTable(w io.Writer, all [][]result) {
	fmt.Fprintln(w, "| scenario | program | runs | events | events/s | ratio to ceiling | CPU s / 1k events | CPU ratio | r→i p50 ms | p90 ms | p99 ms | ready ms | RSS ready / peak / steady MB | anon peak MB |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
	for _, rs := range all {
		for _, prog := range []string{"ceiling", "switchyard", ledgerOffProgram} {
			n := len(of(rs, prog, func(result) float64 { return 0 }))
			if n == 0 {
				continue
			}
			m := func(f func(result) float64) float64 { return median(of(rs, prog, f)) }
			ratio, cpuRatio := "", ""
			if prog != "ceiling" {
				if rr := pairRatios(rs, prog, "ceiling", result.rate); len(rr) > 0 {
					ratio = fmt.Sprintf("%.2f", median(rr))
				}
				if rr := pairRatios(rs, prog, "ceiling", result.cpuPer1k); len(rr) > 0 {
					cpuRatio = fmt.Sprintf("%.2f", median(rr))
				}
			}
			rate, cpu := fmt.Sprintf("%.0f", m(result.rate)), fmt.Sprintf("%.4f", m(result.cpuPer1k))
			if rs[0].events == 0 { // idle
				rate, cpu = "", ""
			}
			lat := func(f func(result) float64) string {
				if m(func(r result) float64 { return float64(r.latency.Count) }) == 0 {
					return ""
				}
				return fmt.Sprintf("%.2f", m(f)/1000)
			}
			fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f / %.1f / %.1f | %.1f |\n",
				rs[0].scenario, prog, n, rs[0].events, rate, ratio, cpu, cpuRatio,
				lat(func(r result) float64 { return r.latency.P50 }), lat(func(r result) float64 { return r.latency.P90 }), lat(func(r result) float64 { return r.latency.P99 }),
				m(func(r result) float64 { return ms(r.ready) }),
				m(func(r result) float64 { return mb(r.rssReady) }), m(func(r result) float64 { return mb(r.peakMem.rss) }), m(func(r result) float64 { return mb(r.rssSteady) }),
				m(func(r result) float64 { return mb(r.peakMem.anon) }))
		}
	}
	for _, rs := range all {
		// The ledger's cost: each switchyard run against the ledger-off run
		// just after it (runs alternate: ceiling, switchyard, ledger off).
		if rr := pairRatios(rs, ledgerOffProgram, "switchyard", result.rate); len(rr) > 0 {
			for i := range rr {
				rr[i] = 1 / rr[i]
			}
			fmt.Fprintf(w, "\n%s: switchyard with the ledger / with it off, events/s: median %.2f (runs %s)\n", rs[0].scenario, median(rr), fmtList(rr))
		}
	}
	for _, rs := range all {
		for _, r := range rs {
			if r.idleMem.rss > 0 {
				fmt.Fprintf(w, "\n%s %s run: idle RSS %.1f MB (anonymous %.1f MB) after 2 s at rest, %.3f CPU s while idle, ready in %.1f ms\n",
					r.scenario, r.program, mb(r.idleMem.rss), mb(r.idleMem.anon), r.cpu.Seconds(), ms(r.ready))
			}
			if o := r.outage; o != [4]mem{} {
				fmt.Fprintf(w, "\n%s %s run: peak RSS before / in the first and second halves of / after the failures %.1f / %.1f / %.1f / %.1f MB (anonymous %.1f / %.1f / %.1f / %.1f MB); %d events drained in %.1f s; %d Lambda calls (%d failed)\n",
					r.scenario, r.program, mb(o[0].rss), mb(o[1].rss), mb(o[2].rss), mb(o[3].rss), mb(o[0].anon), mb(o[1].anon), mb(o[2].anon), mb(o[3].anon),
					r.events, r.elapsed.Seconds(), r.calls, r.faults)
			}
		}
	}
}

func fmtList(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.2f", x)
	}
	return s
}
