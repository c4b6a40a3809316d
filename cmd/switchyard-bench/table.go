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

// pairRatios is f(switchyard)/f(ceiling) for each run, the ceiling run being
// the one just before.
func pairRatios(rs []result, f func(result) float64) []float64 {
	var out []float64
	for i := 1; i < len(rs); i++ {
		if rs[i].program == "switchyard" && rs[i-1].program == "ceiling" && f(rs[i-1]) > 0 {
			out = append(out, f(rs[i])/f(rs[i-1]))
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
		for _, prog := range []string{"ceiling", "switchyard"} {
			n := len(of(rs, prog, func(result) float64 { return 0 }))
			if n == 0 {
				continue
			}
			m := func(f func(result) float64) float64 { return median(of(rs, prog, f)) }
			ratio, cpuRatio := "", ""
			if prog == "switchyard" {
				if rr := pairRatios(rs, result.rate); len(rr) > 0 {
					ratio = fmt.Sprintf("%.2f", median(rr))
				}
				if rr := pairRatios(rs, result.cpuPer1k); len(rr) > 0 {
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
