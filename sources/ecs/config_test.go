package ecs

import (
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/router"
)

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    Config
		fields []string // the fields in error, in order; nil: valid
	}{
		{"cluster", Config{Cluster: "jobs"}, nil},
		{"cluster with filters", Config{Cluster: "arn:aws:ecs:us-east-1:1:cluster/jobs", Family: "transcode", StartedBy: "switchyard/rule_1"}, nil},
		{"self", Config{Task: "self"}, nil},
		{"neither", Config{}, []string{""}},
		{"both", Config{Cluster: "jobs", Task: "self"}, []string{"task"}},
		{"task other than self", Config{Task: "other"}, []string{"task"}},
		{"filters with self", Config{Task: "self", Family: "x", StartedBy: "y"}, []string{"family", "started_by"}},
		{"bad family", Config{Cluster: "jobs", Family: "trans:code"}, []string{"family"}},
		{"bad started_by", Config{Cluster: "jobs", StartedBy: "rule one"}, []string{"started_by"}},
		{"interval too short", Config{Cluster: "jobs", Interval: 500 * time.Millisecond}, []string{"interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.SetDefaults()
			var got []string
			for _, fe := range router.FieldErrors(cfg.Validate()) {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Fatalf("fields in error %q, want %q (%v)", got, tt.fields, cfg.Validate())
			}
		})
	}
}

func TestConfig_Defaults(t *testing.T) {
	t.Parallel()
	var c Config
	c.SetDefaults()
	if c.Interval != 10*time.Second {
		t.Fatalf("interval %s", c.Interval)
	}
}
