package router

import (
	"math"
	"strconv"
	"unsafe"
)

// parseNumber reads a JSON number's text as a float64 and reports whether
// it is representable: finite, and with exactly the value its text says,
// which holds when the text has no more significant digits than the
// shortest spelling of the float64. EventBridge compares numbers this way:
// 300, 300.0, 3e2 and 30000e-2 are one number, while 0.30000000000000001 or
// 12345678901234567 are not numbers it can compare (they only ever equal a
// value spelled the same way). It does not allocate.
func parseNumber(text []byte) (float64, bool) {
	if f, ok := parseShort(text); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(text), len(text)), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	var buf [32]byte
	if !sameDecimal(text, strconv.AppendFloat(buf[:0], f, 'e', -1, 64)) {
		return 0, false
	}
	if f == 0 {
		f = 0 // -0 is 0
	}
	return f, true
}

// parseShort reads a number of at most 15 digits without an exponent, the
// numbers events mostly hold, and reports false for any other text. Such a
// number is always representable: a decimal of at most 15 significant
// digits survives the trip to float64 and back. Its value is exact: the
// digits as an integer (below 2^53) divided by a power of ten (at most
// 10^15), both exact in float64, and IEEE division rounds correctly, as
// ParseFloat does.
func parseShort(text []byte) (float64, bool) {
	i, neg := 0, false
	if len(text) > 0 && text[0] == '-' {
		i, neg = 1, true
	}
	var mant uint64
	digits, point := 0, -1
	for ; i < len(text); i++ {
		c := text[i]
		if c == '.' && point < 0 {
			point = digits
			continue
		}
		if c < '0' || c > '9' || digits == 15 {
			return 0, false
		}
		mant = mant*10 + uint64(c-'0')
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	f := float64(mant)
	if point >= 0 {
		f /= pow10[digits-point]
	}
	if neg && f != 0 {
		f = -f
	}
	return f, true
}

var pow10 = [16]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// decimal locates the significant digits of a decimal number's text.
type decimal struct {
	s           []byte
	first, last int  // indexes in s of the first and last significant digit; -1 for zero
	neg         bool // a minus sign
	exp         int  // the power of ten of the first significant digit
	ok          bool // the exponent could be read
}

func scanDecimal(s []byte) decimal {
	d := decimal{s: s, first: -1, last: -1, ok: true}
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		d.neg = s[i] == '-'
		i++
	}
	intDigits, n, firstPos := -1, 0, 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			intDigits = n
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		if c != '0' {
			if d.first < 0 {
				d.first, firstPos = i, n
			}
			d.last = i
		}
		n++
	}
	if intDigits < 0 {
		intDigits = n
	}
	e := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		v, err := strconv.Atoi(unsafe.String(unsafe.SliceData(s[i+1:]), len(s)-i-1))
		if err != nil || v > 1<<30 || v < -(1<<30) {
			d.ok = false
		}
		e = v
	}
	d.exp = e + intDigits - 1 - firstPos
	return d
}

// sameDecimal reports whether two decimal numbers (the JSON grammar, or Go's
// 'e' format) have the same value; zero equals minus zero.
func sameDecimal(a, b []byte) bool {
	x, y := scanDecimal(a), scanDecimal(b)
	if x.first < 0 || y.first < 0 {
		return x.first < 0 && y.first < 0 // zero, whatever the exponent
	}
	if !x.ok || !y.ok {
		return false
	}
	if x.neg != y.neg || x.exp != y.exp {
		return false
	}
	i, j := x.first, y.first
	for {
		if x.s[i] == '.' {
			i++
		}
		if y.s[j] == '.' {
			j++
		}
		if x.s[i] != y.s[j] {
			return false
		}
		if i == x.last || j == y.last {
			return i == x.last && j == y.last
		}
		i++
		j++
	}
}
