package main

import (
	"context"
	"fmt"

	"github.com/switchyard-dev/switchyard/internal/config"
)

// cmdSchema prints the JSON Schema of the config file.
func cmdSchema(_ context.Context, e *env, args []string) (int, error) {
	pos, err := parse(newFlags(e, "schema"), args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) > 0 {
		return exitUsage, fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
	}
	s, err := config.Schema()
	if err != nil {
		return exitFail, err
	}
	_, err = e.stdout.Write(s)
	return exitOK, err
}
