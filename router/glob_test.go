package router

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		yes, no []string
	}{
		{"", []string{""}, []string{"a"}},
		{"*", []string{"", "a", "abc"}, nil},
		{"abc", []string{"abc"}, []string{"ab", "abcd", ""}},
		{"a*", []string{"a", "abc"}, []string{"", "ba"}},
		{"*a", []string{"a", "cba"}, []string{"ab"}},
		{"a*b*c", []string{"abc", "aXbYc", "abbc", "acbc", "abcbc"}, []string{"ac", "abcx"}},
		{"*aab", []string{"aab", "aaab", "aabaab"}, []string{"aaba"}},
		{"*x*", []string{"x", "axb"}, []string{"", "ab"}},
		{"a*a", []string{"aa", "aba"}, []string{"a"}},
		{`a\*b`, []string{"a*b"}, []string{"axb", "ab"}},
		{`a\\b`, []string{`a\b`}, []string{"ab"}},
		{`\**`, []string{"*", "*x"}, []string{"x"}},
		{`*\*`, []string{"*", "x*"}, []string{"x"}},
	} {
		g, err := compileGlob(tc.pattern)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", tc.pattern, err)
		}
		for _, s := range tc.yes {
			if !g.match([]byte(s)) {
				t.Errorf("%q should match %q", tc.pattern, s)
			}
		}
		for _, s := range tc.no {
			if g.match([]byte(s)) {
				t.Errorf("%q should not match %q", tc.pattern, s)
			}
		}
	}
}

func TestCompileGlob_Invalid(t *testing.T) {
	for _, p := range []string{"a**b", "**", `a\b`, `a\`, `\`, `a*\x`} {
		if _, err := compileGlob(p); err == nil {
			t.Errorf("compileGlob(%q) accepted an invalid wildcard", p)
		}
	}
}

// FuzzGlob checks the matcher against a regular expression built from
// the same wildcard.
func FuzzGlob(f *testing.F) {
	f.Add("a*b*c", "aXbYc")
	f.Add("*aab", "aabaab")
	f.Add(`a\*b*`, "a*bcd")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		g, err := compileGlob(pattern)
		if err != nil || !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return // regexp needs UTF-8; the matcher itself is byte-wise
		}
		var re strings.Builder
		re.WriteString(`(?s)\A`)
		for i, p := range g.parts {
			if i > 0 {
				re.WriteString(".*")
			}
			re.WriteString(regexp.QuoteMeta(p))
		}
		re.WriteString(`\z`)
		want := regexp.MustCompile(re.String()).MatchString(s)
		if got := g.match([]byte(s)); got != want {
			t.Fatalf("wildcard %q on %q: got %v, regexp says %v", pattern, s, got, want)
		}
	})
}
