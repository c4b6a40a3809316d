package router

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzScanner checks that skip accepts exactly the JSON encoding/json
// accepts, and that parseJSON reads the same values.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2.5e3,-0,"x\u00e9\n",true,false,null,{"b":{}}]}`, `"\ud83d\ude00"`, `[1,]`, `{"a"}`, `01`, "\"\t\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &scanner{data: data}
		err := s.skip()
		if err == nil {
			err = s.end()
		}
		if valid := json.Valid(data); (err == nil) != valid {
			t.Fatalf("skip(%q) error = %v, encoding/json valid = %v", data, err, valid)
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
