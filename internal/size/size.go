// Package size is quantities written the way people write them in a
// config file: a byte count, 1048576, 512KiB, 1MiB, 1GiB (or KB, MB, GB,
// also powers of 1024, as memory sizes usually are); a duration, 1h.
package size

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration writes d as 1h and 2m rather than time's 1h0m0s and 2m0s.
func Duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Bytes is a byte count.
type Bytes int64

const (
	KiB Bytes = 1 << 10
	MiB Bytes = 1 << 20
	GiB Bytes = 1 << 30
)

var units = []struct {
	suffix string
	n      Bytes
}{
	{"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB},
	{"KB", KiB}, {"MB", MiB}, {"GB", GiB},
	{"K", KiB}, {"M", MiB}, {"G", GiB},
	{"B", 1},
}

// UnmarshalText reads a count with an optional unit.
func (b *Bytes) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := Bytes(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("invalid size %q: want a number of bytes, or one with KiB, MiB or GiB, such as 1MiB", string(text))
	}
	if n > int64(1<<62)/int64(mult) {
		return fmt.Errorf("invalid size %q: too large", string(text))
	}
	*b = Bytes(n) * mult
	return nil
}

// String writes the count with the largest unit that divides it.
func (b Bytes) String() string {
	for _, u := range []struct {
		suffix string
		n      Bytes
	}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if b != 0 && b%u.n == 0 {
			return strconv.FormatInt(int64(b/u.n), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
