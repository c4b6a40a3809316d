// Package kindtest checks a config block (a source's, a target's, NATS's)
// the way the config file loader does: defaults applied, then Validate.
package kindtest

import (
	"strings"
	"testing"
)

// Check applies defaults to cfg, validates it, and checks what validation
// says: want "" for valid, else a piece of the error.
func Check[T any, P interface {
	*T
	SetDefaults()
	Validate() error
}](t *testing.T, cfg T, want string) {
	t.Helper()
	p := P(&cfg)
	p.SetDefaults()
	err := p.Validate()
	switch {
	case want == "" && err != nil:
		t.Errorf("%+v: %v", cfg, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%+v: err = %v, want %q", cfg, err, want)
	}
}
