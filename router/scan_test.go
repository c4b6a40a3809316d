package router

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScanner checks that skip accepts exactly the JSON encoding/json
// accepts in UTF-8, and that parseJSON reads the same values.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2.5e3,-0,"x\u00e9\n",true,false,null,{"b":{}}]}`, `"\ud83d\ude00"`, `[1,]`, `{"a"}`, `01`, "\"\t\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSkipFast(t, data)
		s := &scanner{data: data}
		err := s.skip()
		if err == nil {
			err = s.end()
		}
		if valid := json.Valid(data) && utf8.Valid(data); (err == nil) != valid {
			t.Fatalf("skip(%q) error = %v, encoding/json valid in UTF-8 = %v", data, err, valid)
		}
		v, perr := parseJSON(data)
		if (perr == nil) != (err == nil) {
			t.Fatalf("parseJSON(%q) = %v, skip = %v", data, perr, err)
		}
		if perr != nil {
			return
		}
		var a, b any
		if err := decodeNumbers(data, &a); err != nil {
			t.Fatal(err)
		}
		if err := decodeNumbers(v.appendJSON(nil), &b); err != nil {
			t.Fatalf("appendJSON of %q is not JSON: %v", data, err)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("parseJSON(%q) round-trips to %s, want %s", data, jb, ja)
		}
	})
}

// checkSkipFast checks that skipFast, when it does not give up, ends where
// skipCareful does and only on what skipCareful accepts.
func checkSkipFast(t *testing.T, data []byte) (ok bool) {
	t.Helper()
	i := bytes.IndexAny(data, "{[")
	if i < 0 {
		return false
	}
	end, ok := skipFast(data, i)
	s := &scanner{data: data, pos: i}
	err := s.skipCareful()
	if ok && (err != nil || s.pos != end) {
		t.Fatalf("skipFast(%q, %d) = %d; skipCareful ends at %d, error %v", data, i, end, s.pos, err)
	}
	return ok
}

// The fast loop handles everything events hold, so that it rarely hands
// over to the careful one; it gives up on what is malformed.
func TestSkipFast(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		ok         bool
	}{
		{"empty object", `{}`, true},
		{"empty array", `[]`, true},
		{"white space", " { \"a\" : [ 1 , { } , [ ] ] ,\n\t\"b\":{ }\r} ", true},
		{"escapes", `{"a\"b":"c\\\"\/\b\f\n\r\t\u00e9\uD83D\uDE00","d":"\\"}`, true},
		{"quote after backslashes", `["\\\\","\\\"]"]`, true},
		{"long strings", `{"` + strings.Repeat("k", 40) + `":"` + strings.Repeat("é", 40) + `"}`, true},
		{"numbers", `[0,-0,1.5,-12e3,4E+2,5e-1,0.0e0,123456789012345678901234567890]`, true},
		{"literals", `[true,false,null,{"a":true}]`, true},
		{"nested", `{"a":{"b":[[{"c":[]}],{}]},"d":[{"e":{"f":"]}"}}]}`, true},
		{"deep", strings.Repeat("[", 256) + strings.Repeat("]", 256), true},
		{"too deep for the fast loop", strings.Repeat("[", 257) + strings.Repeat("]", 257), false},
		{"unterminated", `{"a":"b`, false},
		{"unclosed", `{"a":[1,2]`, false},
		{"trailing comma", `[1,]`, false},
		{"trailing comma in object", `{"a":1,}`, false},
		{"missing colon", `{"a" 1}`, false},
		{"key not a string", `{a:1}`, false},
		{"mismatched", `[1}`, false},
		{"mismatched object", `{"a":1]`, false},
		{"bad escape", `["\q"]`, false},
		{"short unicode escape", `["\u12"]`, false},
		{"bad unicode escape", `["\u12g4"]`, false},
		{"control character", "[\"a\tb\"]", false},
		{"leading zero", `[01]`, false},
		{"bare minus", `[-]`, false},
		{"dot without digits", `[1.]`, false},
		{"exponent without digits", `[1e+]`, false},
		{"plus", `[+1]`, false},
		{"bad literal", `[tru]`, false},
		{"missing comma", `[1 2]`, false},
		{"nan", `[NaN]`, false},
		{"UTF-8", `{"é":"ça 中 😀, and ` + strings.Repeat("é", 11) + `"}`, true},
		{"UTF-8 at the end of a word", `["1234567é"]`, true},
		{"invalid UTF-8", "[\"ab\xffc\"]", false},
		{"invalid UTF-8 in a key", "{\"a\xff\":1}", false},
		{"invalid UTF-8 after eight bytes", "[\"abcdefghij\xe9\"]", false},
		{"truncated UTF-8", "[\"\xe4\xb8\"]", false},
		{"overlong UTF-8", "[\"\xc0\xaf\"]", false},
		{"surrogate in UTF-8", "[\"\xed\xa0\x80\"]", false},
		{"beyond U+10FFFF", "[\"\xf4\x90\x80\x80\"]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ok := checkSkipFast(t, []byte(tc.json)); ok != tc.ok {
				t.Errorf("skipFast(%s) ok = %v, want %v", tc.json, ok, tc.ok)
			}
		})
	}
}

func TestUnescape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\"b\\c\/d`, `a"b\c/d`},
		{`\b\f\n\r\t`, "\b\f\n\r\t"},
		{`\u00e9\u4e2d`, "é中"},
		{`\ud83d\ude00`, "😀"},
		{`\ud83d`, "\ufffd"},
		{`\ude00`, "\ufffd"},
		{`\ud83dx`, "\ufffdx"},
		{`\ud83d\u0041`, "\ufffdA"},
	} {
		if got := string(unescape(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("unescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func decodeNumbers(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// JSON is UTF-8 (RFC 8259 §8.1): a string with a byte that is not, where
// ever it is, makes the text invalid, and the error says where.
func TestScanner_RefusesInvalidUTF8(t *testing.T) {
	for _, tc := range []struct {
		json   string
		offset int
	}{
		{"\"a\xffb\"", 2},
		{"{\"k\":\"0123456789\xc3\"}", 16},
		{"{\"k\":\"\xe4\xb8\xadx\xed\xbf\xbf\"}", 10},
		{"[\"\\n\xc0\"]", 4},
	} {
		s := &scanner{data: []byte(tc.json)}
		err := s.skip()
		var se *SyntaxError
		if !errors.As(err, &se) || se.Offset != tc.offset || !strings.Contains(se.Msg, "UTF-8") {
			t.Errorf("skip(%q) = %v, want invalid UTF-8 at offset %d", tc.json, err, tc.offset)
		}
		if _, err := parseJSON([]byte(tc.json)); err == nil {
			t.Errorf("parseJSON(%q) accepted it", tc.json)
		}
	}
}

func TestAppendQuoted_InvalidUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"plain":           `"plain"`,
		"é中😀":             `"é中😀"`,
		"a\xffb":          `"a\ufffdb"`,
		"\xe4\xb8":        `"\ufffd\ufffd"`,
		"\xed\xa0\x80\"x": `"\ufffd\ufffd\ufffd\"x"`,
		"\x00\xc3\xa9":    `"\u0000é"`,
	} {
		got := string(appendQuoted(nil, in))
		if got != want {
			t.Errorf("appendQuoted(%q) = %s, want %s", in, got, want)
		}
		if !json.Valid([]byte(got)) || !utf8.ValidString(got) {
			t.Errorf("appendQuoted(%q) = %s: not JSON in UTF-8", in, got)
		}
	}
}

// special's lowest set bit is in the first byte that is a quote, a
// backslash, a control character or not ASCII, for any word.
func TestSpecial(t *testing.T) {
	isSpecial := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	check := func(w [8]byte) {
		want := -1
		for i, c := range w {
			if isSpecial(c) {
				want = i
				break
			}
		}
		m := special(binary.LittleEndian.Uint64(w[:]))
		got := -1
		if m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if got != want {
			t.Fatalf("special(%q): first special byte %d, want %d", w, got, want)
		}
	}
	// Every byte value at every position, after plain bytes and before
	// any bytes (borrows only run upwards).
	for pos := range 8 {
		for c := range 256 {
			for _, fill := range []byte{'a', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xff, '"'} {
				var w [8]byte
				for i := range w {
					w[i] = 'a'
					if i > pos {
						w[i] = fill
					}
				}
				w[pos] = byte(c)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var w [8]byte
		for i := range w {
			w[i] = byte(r.Uint32())
			if r.IntN(3) > 0 {
				w[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		check(w)
	}
}
