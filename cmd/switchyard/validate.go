package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchyard-dev/switchyard/internal/config"
)

// cmdValidate runs the same loading and checking as run, stopping before
// anything is started.
func cmdValidate(_ context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "validate")
	file := fs.String("c", "", "config file (default $SWITCHYARD_CONFIG, then ./switchyard.yaml)")
	pos, err := parse(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) > 0 {
		return exitUsage, fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	if _, err := loadConfig(e, *file); err != nil {
		return exitFail, err
	}
	fmt.Fprintln(e.stdout, "ok")
	return exitOK, nil
}

// loadConfig loads and validates the config, printing every problem of an
// invalid file to stderr, one per line. The returned error is then nil-ish
// for the caller's purposes: it has been reported.
func loadConfig(e *env, file string) (*config.Config, error) {
	c, err := config.Load(configPath(file))
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, ce := range errs {
			fmt.Fprintln(e.stderr, ce.Error())
		}
		return nil, errReported
	}
	return c, err
}

// errReported is returned once an error has been written out in full.
var errReported = errors.New("reported")
