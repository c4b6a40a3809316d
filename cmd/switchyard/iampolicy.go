package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchyard-dev/switchyard/deploy/iam"
)

// cmdIAMPolicy prints the least-privilege IAM policy a config needs, as
// JSON on stdout; what a reader should know about it (where it is broader
// than the config's resources, its size) goes to stderr.
func cmdIAMPolicy(ctx context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "iam-policy")
	file := fs.String("c", "", configFlagUsage)
	if err := parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	cfg, err := loadConfig(ctx, e, *file)
	if err != nil {
		return exitFail, err
	}
	doc, err := iam.Policy(cfg)
	if err != nil {
		return exitFail, err
	}
	if len(doc.Statement) == 0 {
		// IAM rejects a policy without statements; there is nothing to attach.
		fmt.Fprintln(e.stderr, "switchyard iam-policy: the config calls no AWS API: it needs no IAM policy")
		return exitOK, nil
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return exitFail, err
	}
	for _, n := range doc.Notes {
		fmt.Fprintln(e.stderr, "switchyard iam-policy: note:", n)
	}
	if n := doc.Size(); n > iam.ManagedPolicyLimit {
		fmt.Fprintf(e.stderr, "switchyard iam-policy: warning: the policy has %d characters, more than the %d a managed policy may have; attach it as an inline policy (10,240 for all of a role's), or split it\n", n, iam.ManagedPolicyLimit)
	}
	return exitOK, nil
}
