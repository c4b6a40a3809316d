package router

import (
	"net/netip"
	"testing"
)

func TestParseIP(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" for not an address
	}{
		{"10.0.0.1", "10.0.0.1"},
		{"010.000.000.001", "10.0.0.1"},
		{"255.255.255.255", "255.255.255.255"},
		{"0.0.0.0", "0.0.0.0"},
		{"256.0.0.1", ""},
		{"10.0.0", ""},
		{"10.0.0.1.2", ""},
		{"10..0.1", ""},
		{"10.0.0.", ""},
		{" 10.0.0.1", ""},
		{"10.0.0.1/24", ""},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:DB8:0:0::1", "2001:db8::1"},
		{"::1", "::1"},
		{"::", "::"},
		{"::ffff:a00:1", "10.0.0.1"},
		{"::a00:1", "::a00:1"},
		{"::ffff:10.0.0.1", ""},
		{"fe80::1%eth0", ""},
		{"[::1]", ""},
		{"1:2:3:4:5:6:7:8:9", ""},
		{":::", ""},
		{"08:23", ""},
		{"abc:def", ""},
		{"", ""},
		{"localhost", ""},
	} {
		a, ok := parseIP([]byte(tc.in))
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tc.want {
			t.Errorf("parseIP(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"10.0.0.0/24", "10.0.0.0/24", ""},
		{"10.0.0.5/24", "10.0.0.0/24", ""},
		{"10.0.0.0/+8", "10.0.0.0/8", ""},
		{"0.0.0.0/0", "0.0.0.0/0", ""},
		{"192.168.1.3/31", "192.168.1.2/31", ""},
		{"2001:db8::/64", "2001:db8::/64", ""},
		{"::ffff:a00:0/8", "10.0.0.0/8", ""},
		{"::1/127", "::/127", ""},
		{"10.0.0.1/32", "", "IPv4 mask bits must be less than 32"},
		{"::ffff:a00:0/104", "", "IPv4 mask bits must be less than 32"},
		{"::1/128", "", "IPv6 mask bits must be less than 128"},
		{"10.0.0.0", "", "want ADDRESS/BITS"},
		{"10.0.0.0/", "", "want ADDRESS/BITS"},
		{"a/b/c", "", "want ADDRESS/BITS"},
		{"10.0.0.0/x", "", "must be a whole number"},
		{"10.0.0.0/ 8", "", "must be a whole number"},
		{"::/++0", "", "must be a whole number"},
		{"10.0.0.0/+-8", "", "must be a whole number"},
		{"10.0.0.0/-1", "", "must not be negative"},
		{"10.0.1/24", "", "is not an IPv4 or IPv6 address"},
	} {
		p, err := parseCIDR(tc.in)
		switch {
		case tc.err != "" && (err == nil || !contains(err.Error(), tc.err)):
			t.Errorf("parseCIDR(%q) error = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("parseCIDR(%q): %v", tc.in, err)
		case tc.err == "" && p != netip.MustParsePrefix(tc.want):
			t.Errorf("parseCIDR(%q) = %v, want %v", tc.in, p, tc.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
