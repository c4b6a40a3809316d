package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/switchyard-dev/switchyard/internal/config"
	"github.com/switchyard-dev/switchyard/internal/configsrc"
)

// cmdValidate runs the same loading and checking as run, stopping before
// anything is started.
func cmdValidate(ctx context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "validate")
	file := fs.String("c", "", configFlagUsage)
	if err := parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	c, err := loadConfig(ctx, e, *file)
	if err != nil {
		return exitFail, err
	}
	for _, n := range c.Notes() {
		fmt.Fprintln(e.stderr, "note: "+n)
	}
	fmt.Fprintln(e.stdout, "ok")
	return exitOK, nil
}

// configFlagUsage describes -c for every command that loads the config.
const configFlagUsage = "config: a file, s3://BUCKET/KEY, ssm:NAME or an SSM parameter ARN (default $SWITCHYARD_CONFIG, then $SWITCHYARD_CONFIG_YAML, then ./switchyard.yaml)"

// loadConfig fetches (internal/configsrc: -c, $SWITCHYARD_CONFIG,
// $SWITCHYARD_CONFIG_YAML, ./switchyard.yaml), parses and validates the
// config, printing every problem of an invalid one to stderr, one per line;
// the returned error is then errReported. Each call fetches anew, so a
// reload calls it again.
func loadConfig(ctx context.Context, e *env, file string) (*config.Config, error) {
	c, err := readConfig(ctx, file)
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

// readConfig fetches and parses the config; an invalid one yields
// config.Errors. Each call fetches again: a reload sees the new version.
func readConfig(ctx context.Context, file string) (*config.Config, error) {
	name, data, err := configsrc.Load(ctx, file, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return config.Parse(name, data, os.LookupEnv)
}
