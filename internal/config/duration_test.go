package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"30s", 30 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{" 2m ", 2 * time.Minute, ""},
		{"0", 0, ""},
		{"10", 0, "a unit is required"},
		{"1.5", 0, "a unit is required"},
		{"10x", 0, "want a number with a unit"},
		{"", 0, "want a number with a unit"},
		{"-5s", 0, "must not be negative"},
	} {
		got, err := parseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseDuration(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseDuration checks that errors are fixed texts, never repeating
// the input (it may be a secret from the environment), and that accepted
// durations are not negative.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "1h30m", "-1s", "10", "secret-value"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			switch err.Error() {
			case "a unit is required: ms, s, m or h (such as 30s)",
				"want a number with a unit, such as 500ms, 30s, 5m or 1h30m",
				"must not be negative":
			default:
				t.Fatalf("parseDuration(%q) error %q is not one of the fixed messages", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("parseDuration(%q) = %v", s, d)
		}
	})
}
