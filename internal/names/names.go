// Package names checks and takes apart the names external resources go by
// in a config file: SQS queue URLs, Lambda functions, ECS task definitions,
// Step Functions state machines, NATS subjects.
package names

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Queue is an SQS queue identified by its URL.
type Queue struct {
	Account string
	Name    string
	// Region is the region the URL's host names (sqs.REGION.amazonaws.com,
	// REGION.queue.amazonaws.com, a VPC endpoint's
	// vpce-ID.sqs.REGION.vpce.amazonaws.com, FIPS and dual-stack hosts, in
	// any partition; queue.amazonaws.com is us-east-1), or empty when it
	// names none (a custom endpoint).
	Region string
}

// ParseQueueURL checks that u looks like an SQS queue URL,
// http(s)://host/ACCOUNT/NAME, and returns its account and name.
func ParseQueueURL(u string) (Queue, error) {
	if u == "" {
		return Queue{}, errors.New("required (the queue's URL, https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)")
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return Queue{}, errors.New("not a queue URL: want https://sqs.REGION.amazonaws.com/ACCOUNT/NAME")
	}
	parts := strings.Split(strings.Trim(p.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || !queueName().MatchString(parts[1]) {
		return Queue{}, errors.New("not a queue URL: the path must be /ACCOUNT/NAME, where NAME has 1 to 80 letters, digits, - or _ (and .fifo for FIFO queues)")
	}
	return Queue{Account: parts[0], Name: parts[1], Region: hostRegion(p.Hostname())}, nil
}

// awsDomains are the domains of AWS endpoints in each partition, whose host
// names carry the region.
var awsDomains = []string{".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov", ".cloud.adc-e.uk", ".csp.hci.ic.gov", ".api.amazonwebservices.com.cn"}

// hostRegion is the region an AWS endpoint's host name names, or "": the
// regional hosts (sqs.REGION.amazonaws.com), the legacy
// REGION.queue.amazonaws.com and queue.amazonaws.com (us-east-1), VPC
// endpoint, FIPS and dual-stack hosts, each in any partition; any other host
// (a custom endpoint) names none.
func hostRegion(host string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if net.ParseIP(host) != nil {
		return ""
	}
	if host == "queue.amazonaws.com" {
		return "us-east-1"
	}
	if !slices.ContainsFunc(awsDomains, func(d string) bool { return strings.HasSuffix(host, d) }) {
		return ""
	}
	for label := range strings.SplitSeq(host, ".") {
		if IsRegion(label) {
			return label
		}
	}
	return ""
}

// IsRegion reports whether s is shaped like a region name: us-east-1,
// eu-central-2, us-gov-west-1, cn-north-1.
func IsRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts[0]) != 2 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
	}
	for _, r := range parts[len(parts)-1] {
		if r < '0' || r > '9' {
			return false
		}
	}
	for _, p := range parts[:len(parts)-1] {
		for _, r := range p {
			if r < 'a' || r > 'z' {
				return false
			}
		}
	}
	return true
}

// The expressions are compiled on first use, not when the program starts:
// every command (version too) would pay for their counted repetitions.
var queueName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,75}(\.fifo|[A-Za-z0-9_-]{0,5})$`) })

// functionRE is Lambda's own pattern for Invoke's FunctionName: a name, a
// partial ARN (ACCOUNT:function:NAME) or an ARN, with an optional qualifier.
var functionRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$`)
})

// CheckFunction reports whether f is something Lambda's Invoke accepts as a
// function name, and returns the version or alias it ends with, if any
// (my-function:prod).
func CheckFunction(f string) (qualifier string, err error) {
	fn, err := ParseFunction(f)
	return fn.Qualifier, err
}

// Function is a Lambda function as Invoke's FunctionName names it. Fields
// the name leaves out are empty: a bare name has no Partition, Region or
// Account.
type Function struct {
	Partition, Region, Account, Name, Qualifier string
}

// ParseFunction takes apart what Lambda's Invoke accepts as a function
// name: NAME, ACCOUNT:function:NAME, an ARN, each with an optional
// :QUALIFIER (a version or alias).
func ParseFunction(f string) (Function, error) {
	if f == "" {
		return Function{}, errors.New("required (a function name, or its ARN)")
	}
	m := functionRE().FindStringSubmatch(f)
	if len(f) > 170 || m == nil {
		return Function{}, errors.New("not a Lambda function name or ARN")
	}
	fn := Function{
		Region:    strings.TrimSuffix(m[3], ":"),
		Account:   strings.TrimSuffix(m[8], ":"),
		Name:      m[10],
		Qualifier: m[12],
	}
	if m[1] != "" {
		fn.Partition = m[2]
	}
	return fn, nil
}

// StateMachine is a Step Functions state machine, named by its ARN,
// arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME.
type StateMachine struct {
	Partition, Region, Account, Name string
}

// ARN returns the state machine's ARN.
func (m StateMachine) ARN() string {
	return "arn:" + m.Partition + ":states:" + m.Region + ":" + m.Account + ":stateMachine:" + m.Name
}

// ExecutionARN returns the ARN of the state machine's standard execution
// called name: arn:PARTITION:states:REGION:ACCOUNT:execution:NAME:EXECUTION.
func (m StateMachine) ExecutionARN(name string) string {
	return "arn:" + m.Partition + ":states:" + m.Region + ":" + m.Account + ":execution:" + m.Name + ":" + name
}

// partitionRE is an ARN's partition: aws, aws-cn, aws-us-gov, aws-iso-b...
var partitionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^aws(-[a-z]+)*$`) })

// ParseStateMachineARN checks that a is a state machine's ARN,
// arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME, and takes it
// apart. NAME is 1 to 80 characters, none of them those Step Functions
// refuses in names (white space, < > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /,
// control characters). The ARN of a version or alias (:NAME:QUALIFIER) is
// refused: switchyard finds its executions by the state machine's own ARN.
func ParseStateMachineARN(a string) (StateMachine, error) {
	const want = "want arn:aws:states:REGION:ACCOUNT:stateMachine:NAME"
	if a == "" {
		return StateMachine{}, errors.New("required (the state machine's ARN, arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)")
	}
	f := strings.Split(a, ":")
	if len(f) < 7 || f[0] != "arn" || !partitionRE().MatchString(f[1]) || f[2] != "states" || f[5] != "stateMachine" {
		return StateMachine{}, errors.New("not a state machine ARN: " + want)
	}
	m := StateMachine{Partition: f[1], Region: f[3], Account: f[4], Name: f[6]}
	switch {
	case !IsRegion(m.Region):
		return StateMachine{}, fmt.Errorf("not a state machine ARN: %q is not a region (%s)", m.Region, want)
	case !isAccount(m.Account):
		return StateMachine{}, fmt.Errorf("not a state machine ARN: the account must be 12 digits, got %q", m.Account)
	case len(f) > 7:
		return StateMachine{}, fmt.Errorf("the ARN of a version or alias (%q) is not supported: name the state machine itself, %s", strings.Join(f[7:], ":"), m.ARN())
	case !ValidStepFunctionsName(m.Name):
		return StateMachine{}, errors.New("not a state machine ARN: NAME must be 1 to 80 characters, without white space, brackets, wildcards, control characters or any of \" # % \\ ^ | ~ ` $ & , ; : /")
	}
	return m, nil
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ValidStepFunctionsName reports whether Step Functions accepts s as the
// name of a state machine or an execution: 1 to 80 characters, none of
// them white space, brackets (< > { } [ ]), wildcards (? *), the special
// characters " # % \ ^ | ~ ` $ & , ; : /, or control characters
// (U+0000-001F, U+007F-009F, U+FFFE-FFFF).
func ValidStepFunctionsName(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > 80 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r), r <= 0x1f, r >= 0x7f && r <= 0x9f, r == 0xfffe, r == 0xffff:
			return false
		case strings.ContainsRune("<>{}[]?*\"#%\\^|~`$&,;:/", r):
			return false
		}
	}
	return true
}

var taskDefRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([A-Za-z0-9_-]{1,255}(:[0-9]+)?|arn:aws[a-zA-Z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}(:[0-9]+)?)$`)
})

// CheckTaskDefinition reports whether t names a task definition: FAMILY,
// FAMILY:REVISION or an ARN.
func CheckTaskDefinition(t string) error {
	if t == "" {
		return errors.New("required (FAMILY, FAMILY:REVISION or an ARN)")
	}
	if !taskDefRE().MatchString(t) {
		return errors.New("not a task definition: want FAMILY, FAMILY:REVISION or a task-definition ARN")
	}
	return nil
}

// CheckSubject reports whether s is a valid NATS subject; wildcards (* and
// a final >) are allowed when wild is true.
func CheckSubject(s string, wild bool) error {
	if s == "" {
		return errors.New("required")
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return errors.New("empty token (subjects are dot-separated tokens, such as events.orders)")
		case strings.ContainsAny(t, " \t\r\n"):
			return errors.New("subjects may not contain white space")
		case (t == "*" || t == ">") && !wild:
			return errors.New("wildcards are not allowed here")
		case t == ">" && i != len(tokens)-1:
			return errors.New("> may only be the last token")
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			return errors.New("* and > must be whole tokens")
		}
	}
	return nil
}

// Token turns a config name (letters, digits, '.', '-', '_') into one that
// NATS accepts in stream, consumer and bucket names (letters, digits, '-',
// '_'), keeping distinct names distinct: '_' becomes "__" and '.' "_0".
func Token(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '_':
			b.WriteString("__")
		case r == '.':
			b.WriteString("_0")
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "_%x_", r)
		}
	}
	return b.String()
}

// CheckGroupID checks a FIFO message group or deduplication id, as SQS and
// SNS take them: 1 to 128 letters, digits and punctuation, no spaces.
func CheckGroupID(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%d characters: AWS takes 1 to 128", len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%q: AWS takes only letters, digits and punctuation (no spaces)", s)
		}
	}
	return nil
}
