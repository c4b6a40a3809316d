package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/ruletest"
	"github.com/switchyard-dev/switchyard/router"
)

// cmdTest runs rule tests: each test's event goes through the code path
// of run (its source's decoding, rules' source lists, matching,
// rendering) and what the rules do is compared with what the test
// expects. It calls nothing. Exit 0 when every test passed, 1 otherwise.
func cmdTest(ctx context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "test")
	file := fs.String("c", "", configFlagUsage)
	junit := fs.String("junit", "", "also write a JUnit XML report to `FILE`, for CI systems")
	update := fs.Bool("update", false, "rewrite each test's expect with what the rules do now (rules, targets, payloads), keeping payload_subset expectations that still hold")
	verbose := fs.Bool("v", false, "name every test, passed ones too")
	pos, err := parse(fs, args)
	if err != nil {
		return exitUsage, err
	}
	cfg, err := loadConfig(ctx, e, *file)
	if err != nil {
		return exitFail, err
	}
	paths, err := testFiles(cfg, pos)
	if err != nil {
		return exitUsage, err
	}
	table, err := router.NewTable(cfg.RouterRules())
	if err != nil {
		return exitFail, err
	}
	var results []ruletest.Result
	passed, failed, broken := 0, 0, 0
	for _, path := range paths {
		f, err := ruletest.Read(path)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			broken++
			continue
		}
		updated := 0
		for _, t := range f.Tests {
			if err := ctx.Err(); err != nil {
				return exitFail, err
			}
			start := time.Now()
			o := routeTest(cfg, table, t)
			failures := t.Check(o)
			if *update && len(failures) > 0 {
				if err := f.Update(t, o); err != nil {
					fmt.Fprintf(e.stderr, "%s:%d: %v\n", path, t.Line, err)
				} else {
					updated++
					failures = nil // the test now says what the rules do
				}
			}
			results = append(results, ruletest.Result{File: path, Test: t, Failures: failures, Took: time.Since(start)})
			if len(failures) == 0 {
				passed++
				if *verbose {
					fmt.Fprintf(e.stdout, "--- PASS: %s (%s:%d)\n", t.Name, path, t.Line)
				}
				continue
			}
			failed++
			fmt.Fprintf(e.stdout, "--- FAIL: %s (%s:%d)\n", t.Name, path, t.Line)
			for _, l := range failures {
				fmt.Fprintf(e.stdout, "    %s\n", strings.ReplaceAll(l, "\n", "\n    "))
			}
		}
		if updated > 0 {
			if err := f.Save(); err != nil {
				return exitFail, fmt.Errorf("%s: %w", path, err)
			}
			fmt.Fprintf(e.stderr, "switchyard test: %s: wrote what the rules do now into %d test(s)\n", path, updated)
		}
	}
	if *junit != "" {
		if err := writeJUnit(*junit, results); err != nil {
			return exitFail, err
		}
	}
	summary := fmt.Sprintf("%d passed, %d failed", passed, failed)
	if broken > 0 {
		summary += fmt.Sprintf(", %d test file(s) unreadable", broken)
	}
	fmt.Fprintln(e.stdout, summary)
	if failed > 0 || broken > 0 {
		return exitFail, nil
	}
	return exitOK, nil
}

// testFiles are the test files named (directories: their *.test.yaml), or
// by default the config's own: FILE.test.yaml beside FILE.yaml.
func testFiles(cfg *config.Config, names []string) ([]string, error) {
	if len(names) == 0 {
		if _, err := os.Stat(cfg.File); err != nil {
			return nil, fmt.Errorf("%w: name the test files (the config %s is not a local file to find them beside)", errUsage, cfg.File)
		}
		def := strings.TrimSuffix(cfg.File, filepath.Ext(cfg.File)) + ".test.yaml"
		if _, err := os.Stat(def); err != nil {
			return nil, fmt.Errorf("%w: no test files named, and no %s beside the config", errUsage, def)
		}
		return []string{def}, nil
	}
	var out []string
	for _, n := range names {
		info, err := os.Stat(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if !info.IsDir() {
			out = append(out, n)
			continue
		}
		found, _ := filepath.Glob(filepath.Join(n, "*.test.yaml"))
		if len(found) == 0 {
			return nil, fmt.Errorf("%w: no *.test.yaml in %s", errUsage, n)
		}
		out = append(out, found...)
	}
	return out, nil
}

// routeTest routes a test's event as run would: decoded as its source
// decodes what it receives (or as it is, with no source), received at the
// test's time.
func routeTest(cfg *config.Config, table *router.Table, t *ruletest.Test) ruletest.Outcome {
	clock := func() time.Time { return t.Time }
	decode, deadLetter := asEvents(clock), ""
	if t.Source != "" {
		i := slices.IndexFunc(cfg.Sources, func(s config.Source) bool { return s.Name == t.Source })
		if i < 0 {
			return ruletest.Outcome{Error: fmt.Sprintf("source %q is not a source of %s", t.Source, cfg.File)}
		}
		decode = sourceDecoder(cfg, cfg.Sources[i], clock)
		if dl, ok := cfg.Sources[i].Config.(interface{ DeadLetterTarget() string }); ok {
			deadLetter = dl.DeadLetterTarget()
		}
	}
	results := routeLine(table, decode, t.Body, t.Line, t.MessageID, t.Source, deadLetter, nil)
	if len(results) != 1 {
		return ruletest.Outcome{Error: fmt.Sprintf("the body holds %d events (an array, as an http source takes them): a test holds one", len(results))}
	}
	res := results[0]
	o := ruletest.Outcome{Error: res.Error, DeadLetter: res.DeadLetter}
	for _, m := range res.Matches {
		match := ruletest.Match{Rule: m.Rule, Targets: m.Targets, Payload: m.Payload, Text: m.Text, Whole: m.Whole}
		if m.Text {
			var s string
			json.Unmarshal(m.Payload, &s)
			match.Payload = []byte(s)
		}
		o.Matches = append(o.Matches, match)
	}
	return o
}

func writeJUnit(path string, results []ruletest.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := ruletest.JUnit(f, results); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
