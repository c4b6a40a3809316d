package size

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for in, want := range map[string]Bytes{
		"1048576": MiB, "512KiB": 512 * KiB, "1MiB": MiB, "1 MiB": MiB, "2GiB": 2 * GiB,
		"10MB": 10 * MiB, "64K": 64 * KiB, "100B": 100, "0": 0,
	} {
		var b Bytes
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q: %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "1TiB", "ten", "99999999999999GiB"} {
		var b Bytes
		if err := b.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q: accepted as %d", in, b)
		}
	}
	for b, want := range map[Bytes]string{MiB: "1MiB", 1536 * KiB: "1536KiB", 100: "100", 3 * GiB: "3GiB", 0: "0"} {
		if got := b.String(); got != want {
			t.Errorf("%d: %q, want %q", b, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 2 * time.Minute: "2m", 90 * time.Second: "1m30s", 336 * time.Hour: "336h", 1500 * time.Millisecond: "1.5s"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}
