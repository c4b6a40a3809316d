package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/importer"
)

// cmdImport turns EventBridge rules into a switchyard config: a
// CloudFormation template's AWS::Events::Rule resources, or the JSON of
// aws events list-rules and list-targets-by-rule. The config goes to
// stdout (or -o FILE); what did not convert, and the variables to set, to
// stderr. Exit 0 once a valid config is written, 1 when nothing could be
// imported or (a bug) what was written does not validate, 2 when the
// input cannot be read.
func cmdImport(_ context.Context, e *env, args []string) (int, error) {
	fs := newFlags(e, "import")
	cfn := fs.String("cloudformation", "", "a CloudFormation template (`FILE`), YAML or JSON: its AWS::Events::Rule resources are imported")
	rules := fs.String("rules", "", "`FILE`: the output of aws events list-rules (JSON), with --targets")
	targets := fs.String("targets", "", "the rules' targets (`DIR_OR_FILE`): a directory of RULE.json files, each the output of aws events list-targets-by-rule --rule RULE, or one JSON file mapping rule names to them")
	bus := fs.String("bus", "default", "the event bus whose rules are imported (`NAME` or ARN)")
	out := fs.String("o", "", "write the config to `FILE` instead of standard output")
	region := fs.String("region", "", "the rules' `REGION` (CloudFormation's AWS::Region); default: the rules' ARNs, else read from $AWS_REGION by the config")
	account := fs.String("account", "", "the rules' `ACCOUNT` (CloudFormation's AWS::AccountId); default: the rules' ARNs, else read from $AWS_ACCOUNT_ID by the config")
	params := paramFlag{}
	fs.Var(params, "param", "a template parameter's value, or the value of an export Fn::ImportValue names, as `NAME=VALUE` (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	switch {
	case *cfn != "" && (*rules != "" || *targets != ""):
		return exitUsage, fmt.Errorf("%w: give --cloudformation, or --rules and --targets, not both", errUsage)
	case *cfn == "" && *rules == "" && *targets == "":
		return exitUsage, fmt.Errorf("%w: give --cloudformation FILE, or --rules FILE and --targets DIR_OR_FILE", errUsage)
	case *cfn == "" && (*rules == "" || *targets == ""):
		return exitUsage, fmt.Errorf("%w: --rules and --targets go together", errUsage)
	case *bus == "":
		return exitUsage, fmt.Errorf("%w: --bus is empty", errUsage)
	}
	opt := importer.Options{Bus: *bus, Region: *region, Account: *account, Params: params}

	var res *importer.Result
	var err error
	if *cfn != "" {
		data, rerr := os.ReadFile(*cfn)
		if rerr != nil {
			return exitUsage, rerr
		}
		res, err = fromCloudFormation(*cfn, data, opt)
	} else {
		data, rerr := os.ReadFile(*rules)
		if rerr != nil {
			return exitUsage, rerr
		}
		ts, terr := importer.LoadTargets(*targets)
		if terr != nil {
			return exitUsage, terr
		}
		res, err = importer.FromCLI(*rules, data, ts, opt)
	}
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintln(e.stderr, "switchyard import: warning:", w)
		}
	}
	var invalid *importer.InvalidError
	switch {
	case errors.As(err, &invalid):
		for _, p := range invalid.Problems {
			fmt.Fprintln(e.stderr, "switchyard import:", strings.TrimSpace(p))
		}
		return exitFail, errors.New("the config written does not validate: this is a bug in switchyard import, please report it with the input")
	case errors.Is(err, importer.ErrNothing):
		return exitFail, err
	case err != nil:
		return exitUsage, err
	}
	for _, n := range res.Notes {
		fmt.Fprintln(e.stderr, "switchyard import: note:", n)
	}
	if *out != "" {
		if err := os.WriteFile(*out, res.Config, 0o644); err != nil {
			return exitUsage, err
		}
	} else if _, err := e.stdout.Write(res.Config); err != nil {
		return exitFail, err
	}
	fmt.Fprintf(e.stderr, "switchyard import: %d of the %d rules of the event bus %q imported\n", res.Rules, res.Rules+res.Skipped, *bus)
	return exitOK, nil
}

// fromCloudFormation is the import of a template; tests replace it.
var fromCloudFormation = importer.FromCloudFormation

// paramFlag collects repeated --param NAME=VALUE.
type paramFlag map[string]string

func (p paramFlag) String() string { return "" }

func (p paramFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("%s is given twice", name)
	}
	p[name] = value
	return nil
}
