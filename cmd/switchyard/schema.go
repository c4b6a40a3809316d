package main

import (
	"context"

	"github.com/switchyard-dev/switchyard/internal/config"
)

// cmdSchema prints the JSON Schema of the config file.
func cmdSchema(_ context.Context, e *env, args []string) (int, error) {
	if err := parseFlags(newFlags(e, "schema"), args); err != nil {
		return exitUsage, err
	}
	s, err := config.Schema()
	if err != nil {
		return exitFail, err
	}
	_, err = e.stdout.Write(s)
	return exitOK, err
}
