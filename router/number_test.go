package router

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		text string
		want float64
		ok   bool
	}{
		{"300", 300, true},
		{"300.0", 300, true},
		{"3e2", 300, true},
		{"3.0E+2", 300, true},
		{"30000e-2", 300, true},
		{"0.1", 0.1, true},
		{"0.10", 0.1, true},
		{"1e-1", 0.1, true},
		{"-0", 0, true},
		{"-0.0", 0, true},
		{"0e10", 0, true},
		{"0.000", 0, true},
		{"301.8", 301.8, true},
		{"3.018e2", 301.8, true},
		{"9007199254740992", 9007199254740992, true},
		{"1234567890123456", 1234567890123456, true},
		{"1000000000000000000", 1e18, true},
		{"1.7976931348623157e308", math.MaxFloat64, true},
		// Go spells the smallest subnormal 5e-324 where Java spells it
		// 4.9E-324; the rule follows Go's shortest spelling.
		{"5e-324", 5e-324, true},
		{"-12.5e-3", -0.0125, true},
		{"0.30000000000000001", 0, false},
		{"1.23456789012345678", 0, false},
		{"9007199254740993", 0, false},
		{"12345678901234567", 0, false},
		{"1152921504606846976", 0, false},
		{"1e400", 0, false},
		{"-1e400", 0, false},
		{"1e-400", 0, false},
		{"4.9e-324", 0, false},
		{"1e99999999999", 0, false},
	} {
		got, ok := parseNumber([]byte(tc.text))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseNumber(%s) = %v, %v; want %v, %v", tc.text, got, ok, tc.want, tc.ok)
		}
		if ok && got == 0 && math.Signbit(got) {
			t.Errorf("parseNumber(%s) returned minus zero", tc.text)
		}
	}
}

// parseShort, the fast path for numbers of up to 15 digits, agrees with
// ParseFloat and the arbitrary-precision check on such numbers, and leaves
// every other number to the general path.
func TestParseShort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	texts := []string{"0", "-0", "-0.0", "0.00000000000000", "999999999999999", "-999999999999999",
		"0.00000000000001", "99999999999999.9", "9.99999999999999", "1234567890.12345", "0.1", "0.3", "2.675"}
	for range 200000 {
		n := 1 + r.IntN(15)
		digits := make([]byte, n)
		for i := range digits {
			digits[i] = byte('0' + r.IntN(10))
		}
		if n > 1 && digits[0] == '0' && r.IntN(4) > 0 {
			digits[0] = '1' // mostly no leading zero; JSON allows one only before a point
		}
		text := string(digits)
		if p := r.IntN(n + 1); p > 0 && p < n {
			text = text[:p] + "." + text[p:]
		}
		if r.IntN(2) == 0 {
			text = "-" + text
		}
		texts = append(texts, text)
	}
	for _, text := range texts {
		got, ok := parseShort([]byte(text))
		if !ok {
			t.Fatalf("parseShort(%s) gave up on a number of at most 15 digits", text)
		}
		want, _ := strconv.ParseFloat(text, 64)
		if got != want || got == 0 && math.Signbit(got) || !exact(text) {
			t.Fatalf("parseShort(%s) = %v; ParseFloat says %v, representable %v", text, got, want, exact(text))
		}
	}
	for _, text := range []string{"1234567890123456", "0.1234567890123456", "1e2", "1E2", "-", "", "1.2.3", "12345678901234567890"} {
		if f, ok := parseShort([]byte(text)); ok {
			t.Errorf("parseShort(%s) = %v, want it to leave the number to the general path", text, f)
		}
	}
}

func TestParseNumber_DoesNotAllocate(t *testing.T) {
	text := []byte("3.0180000000000002e2")
	if n := testing.AllocsPerRun(100, func() { parseNumber(text) }); n != 0 {
		t.Errorf("parseNumber allocates %v times", n)
	}
}

// exact decides representability with arbitrary precision, independently.
func exact(text string) bool {
	if mant, _, _ := strings.Cut(strings.ToLower(text), "e"); strings.Trim(mant, "-0.") == "" {
		return true // zero, whatever the exponent (big.Rat refuses huge ones)
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return false
	}
	f, _ := r.Float64()
	if math.IsInf(f, 0) {
		return false
	}
	short, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'e', -1, 64))
	return r.Cmp(short) == 0
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "1e2", "0.30000000000000001", "12345678901234567", "1.5e-300", "123.456e+78"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		sc := &scanner{data: []byte(text)}
		if _, end, err := sc.num(); err != nil || end != len(text) {
			return // only JSON numbers
		}
		got, ok := parseNumber([]byte(text))
		if want := exact(text); ok != want {
			t.Fatalf("parseNumber(%s) ok = %v, arbitrary precision says %v", text, ok, want)
		}
		if ok {
			want, _ := strconv.ParseFloat(text, 64)
			if got != want && !(got == 0 && want == 0) {
				t.Fatalf("parseNumber(%s) = %v, want %v", text, got, want)
			}
		}
	})
}
