package router

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// parseIP reads an IP address the way EventBridge does: IPv4 as four
// decimal parts of 0 to 255 (leading zeros allowed and read as decimal),
// IPv6 as hex digits and colons only (no zone, no dotted tail), and an
// IPv4-mapped IPv6 address as the IPv4 address. Anything else is not an IP.
func parseIP(s []byte) (netip.Addr, bool) {
	if len(s) == 0 || len(s) > 45 {
		return netip.Addr{}, false
	}
	colon := false
	dots := 0
	for _, c := range s {
		switch {
		case c == ':':
			colon = true
		case c == '.':
			dots++
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return netip.Addr{}, false
		}
	}
	switch {
	case colon && dots == 0:
		a, err := netip.ParseAddr(string(s))
		if err != nil {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	case !colon && dots == 3:
		var b [4]byte
		part, digits := 0, 0
		for _, c := range s {
			if c == '.' {
				if digits == 0 {
					return netip.Addr{}, false
				}
				part++
				digits = 0
				continue
			}
			if c < '0' || c > '9' {
				return netip.Addr{}, false
			}
			v := int(b[part])*10 + int(c-'0')
			if v > 255 {
				return netip.Addr{}, false
			}
			b[part] = byte(v)
			digits++
		}
		if digits == 0 {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4(b), true
	}
	return netip.Addr{}, false
}

// parseCIDR reads a cidr operand: ADDRESS/BITS, where host bits may be set
// (they are ignored) and a whole-address mask (/32, /128) is refused, as
// EventBridge does; write the address itself as a value to match one address.
func parseCIDR(s string) (netip.Prefix, error) {
	addr, bits, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(bits, "/") || bits == "" {
		return netip.Prefix{}, errors.New("want ADDRESS/BITS, such as 10.0.0.0/24")
	}
	n, err := strconv.Atoi(bits) // one sign at most, as EventBridge allows
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("mask bits %q must be a whole number", bits)
	}
	if n < 0 {
		return netip.Prefix{}, errors.New("mask bits must not be negative")
	}
	a, ok := parseIP([]byte(addr))
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 or IPv6 address", addr)
	}
	if a.Is4() && n > 31 {
		return netip.Prefix{}, fmt.Errorf("IPv4 mask bits must be less than 32, got %d (for one address, use the address as a value)", n)
	}
	if a.Is6() && n > 127 {
		return netip.Prefix{}, fmt.Errorf("IPv6 mask bits must be less than 128, got %d (for one address, use the address as a value)", n)
	}
	return netip.PrefixFrom(a, n).Masked(), nil
}
