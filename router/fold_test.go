package router

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendFold_AgreesWithEqualFold(t *testing.T) {
	words := []string{"", "abc", "ABC", "aBc", "σας", "ΣΑΣ", "ς", "k", "K", "\u212a", "ß", "ẞ", "ǅ", "ǆ", "Ǆ",
		"𐐀", "𐐨", "x😀", "X😀", "İ", "i", "ı", "I", "ﬁ", "FI", "Ａ", "ａ", "\xff", "a\xffb", "ſ", "s", "S"}
	for _, a := range words {
		for _, b := range words {
			if utf8.RuneCountInString(a) != utf8.RuneCountInString(b) {
				continue
			}
			got := string(appendFold(nil, []byte(a))) == string(appendFold(nil, []byte(b)))
			if want := strings.EqualFold(a, b); got != want {
				t.Errorf("fold(%q) == fold(%q) is %v, strings.EqualFold says %v", a, b, got, want)
			}
		}
	}
}

func FuzzAppendFold(f *testing.F) {
	f.Add("Hello", "hELLO")
	f.Add("σας", "ΣΑΣ")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		got := string(appendFold(nil, []byte(a))) == string(appendFold(nil, []byte(b)))
		if want := strings.EqualFold(a, b); got != want {
			t.Fatalf("fold(%q) == fold(%q) is %v, strings.EqualFold says %v", a, b, got, want)
		}
	})
}
