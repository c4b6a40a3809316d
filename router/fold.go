package router

import (
	"unicode"
	"unicode/utf8"
)

// appendFold appends s with every character replaced by the smallest
// character of its simple case-folding orbit (as unicode.SimpleFold defines
// it), so that two strings are equal ignoring case exactly when their folds
// are equal (the relation strings.EqualFold tests). Bytes that are not
// UTF-8 are kept.
func appendFold(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, c)
			i++
			continue
		}
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}

// foldRune returns the smallest character of r's case-folding orbit.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// isASCIIFolded reports whether s needs no folding (upper-case ASCII and no
// letters a-z or non-ASCII), so it can be used as is.
func isASCIIFolded(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf || 'a' <= c && c <= 'z' {
			return false
		}
	}
	return true
}
