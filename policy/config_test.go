package policy

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in        string
		perSecond float64
		str       string
		err       string
	}{
		{"100/s", 100, "100/s", ""},
		{"6000/m", 100, "6000/m", ""},
		{"3600/h", 1, "3600/h", ""},
		{"1/5s", 0.2, "1/5s", ""},
		{"2.5/s", 2.5, "2.5/s", ""},
		{" 10 / sec ", 10, "10/s", ""},
		{"1/100ms", 10, "1/100ms", ""},
		{"100", 0, "", "want events per period"},
		{"/s", 0, "", "the count must be a positive number"},
		{"0/s", 0, "", "the count must be a positive number"},
		{"-1/s", 0, "", "the count must be a positive number"},
		{"NaN/s", 0, "", "the count must be a positive number"},
		{"1/day", 0, "", "the period must be s, m, h or a duration"},
		{"1/0s", 0, "", "the period must be s, m, h or a duration"},
		{"1/-1s", 0, "", "the period must be s, m, h or a duration"},
	} {
		r, err := ParseRate(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRate(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRate(%q): %v", tc.in, err)
			continue
		}
		if got := r.PerSecond(); got < tc.perSecond*0.999999 || got > tc.perSecond*1.000001 {
			t.Errorf("ParseRate(%q).PerSecond() = %v, want %v", tc.in, got, tc.perSecond)
		}
		if r.String() != tc.str {
			t.Errorf("ParseRate(%q).String() = %q, want %q", tc.in, r, tc.str)
		}
	}
	if (Rate{}).PerSecond() != 0 || (Rate{}).String() != "unlimited" {
		t.Error("the zero Rate is not unlimited")
	}
}

// FuzzParseRate checks that an accepted rate is positive and finite, and
// that its String parses back to the same rate.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "1/5s", "6000/m", "1e3/h", "0.5/1m30s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if ps := r.PerSecond(); !(ps > 0) || ps > 1e18 {
			t.Fatalf("ParseRate(%q) = %v per second", s, ps)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q).String() = %q, which parses to %v, %v", s, r, back, err)
		}
	})
}

func TestDefaultsAndValidate(t *testing.T) {
	d := Default()
	if d.Concurrency != 64 || d.Timeout != 30*time.Second || d.Retry.Attempts != 5 || d.Retry.Initial != 200*time.Millisecond ||
		d.Retry.Max != 30*time.Second || d.Retry.MaxAge != time.Hour || d.Breaker.Failures != 5 || d.Breaker.Open != 30*time.Second ||
		d.Breaker.HalfOpen != 1 || d.Rate.PerSecond() != 0 || d.DeadLetter != "" {
		t.Errorf("Default() = %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	bad := Config{Concurrency: -1, Timeout: -1, Retry: Retry{Attempts: -2, Initial: time.Minute, Max: time.Second}, Breaker: Breaker{Failures: -1, HalfOpen: -1}}
	err := bad.Validate()
	for _, field := range []string{"concurrency", "timeout", "retry.attempts", "retry.initial", "breaker.failures", "breaker.half_open"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate() = %v, want an error for %s", err, field)
		}
	}
}
