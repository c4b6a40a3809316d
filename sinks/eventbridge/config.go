// Package eventbridge is the EventBridge target: it puts each delivery on
// an event bus as an event (PutEvents), several deliveries to a call.
package eventbridge

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: eventbridge`.
type Config struct {
	// Bus is the event bus to put events on: its name, or its ARN
	// (arn:aws:events:REGION:ACCOUNT:event-bus/NAME, for a bus of another
	// account or region). Default default.
	Bus string `yaml:"bus"`
	// Source is every event's source. Default: the source of the event
	// being delivered. Sources beginning with "aws." are AWS's own:
	// EventBridge refuses them.
	Source string `yaml:"source"`
	// DetailType is every event's detail-type, at most 128 characters.
	// Default: the detail-type of the event being delivered.
	DetailType string `yaml:"detail_type"`
	// Resources are every event's resources (ARNs); an empty list sends
	// none. Default: the resources of the event being delivered.
	Resources []string `yaml:"resources"`
}

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.Bus == "" {
		c.Bus = "default"
	}
}

// maxDetailType is EventBridge's limit on a detail-type, in characters.
const maxDetailType = 128

// Validate checks the bus, source, detail-type and resources.
func (c *Config) Validate() error {
	var errs []error
	if _, err := ParseBus(c.Bus); err != nil {
		errs = append(errs, router.Fieldf("bus", "%v", err))
	}
	if strings.HasPrefix(c.Source, "aws.") {
		errs = append(errs, router.Fieldf("source", "%q: sources beginning with \"aws.\" are AWS services' own, and EventBridge refuses them (NotAuthorizedForSourceException); use your own, such as com.example.orders", c.Source))
	}
	if n := utf8.RuneCountInString(c.DetailType); n > maxDetailType {
		errs = append(errs, router.Fieldf("detail_type", "%d characters exceed EventBridge's limit of %d", n, maxDetailType))
	}
	for i, r := range c.Resources {
		if strings.TrimSpace(r) == "" {
			errs = append(errs, router.Fieldf(fmt.Sprintf("resources[%d]", i), "an empty resource; resources are ARNs"))
		}
	}
	return errors.Join(errs...)
}

// Bus is an event bus as a target names it.
type Bus struct {
	// Name is the bus's name.
	Name string
	// Partition, Region and Account are the ARN's, or "" when the bus was
	// named by its name alone (the caller's region and account).
	Partition, Region, Account string
}

var (
	busNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[.\-_A-Za-z0-9]{1,256}$`) })
	accountRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })
)

// ParseBus reads an event bus name (letters, digits, '.', '-', '_', up to
// 256) or ARN (arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME). A
// partner event bus (aws.partner/...) is not one PutEvents can put on.
func ParseBus(s string) (Bus, error) {
	if !strings.HasPrefix(s, "arn:") {
		if !busNameRE().MatchString(s) {
			return Bus{}, fmt.Errorf("invalid event bus name %q: use 1 to 256 letters, digits, '.', '-' or '_', or the bus's ARN", s)
		}
		return Bus{Name: s}, nil
	}
	bad := fmt.Errorf("%q is not an event bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)", s)
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || !strings.HasPrefix(p[1], "aws") || p[2] != "events" {
		return Bus{}, bad
	}
	name, ok := strings.CutPrefix(p[5], "event-bus/")
	switch {
	case !ok:
		return Bus{}, bad
	case !names.IsRegion(p[3]):
		return Bus{}, fmt.Errorf("%q: invalid region %q in the event bus ARN", s, p[3])
	case !accountRE().MatchString(p[4]):
		return Bus{}, fmt.Errorf("%q: invalid account %q in the event bus ARN (12 digits)", s, p[4])
	case !busNameRE().MatchString(name):
		return Bus{}, fmt.Errorf("%q: invalid event bus name %q in the ARN (letters, digits, '.', '-' or '_')", s, name)
	}
	return Bus{Name: name, Partition: p[1], Region: p[3], Account: p[4]}, nil
}
