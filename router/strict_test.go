package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// An event with a key twice is refused, with the path of the key: the
// matcher would read the first, a target's JSON parser most likely the
// last.
func TestParseEvent_RefusesDuplicateKeys(t *testing.T) {
	many := `{"detail":{`
	for i := range 40 {
		many += `"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i) + `,`
	}
	many += `"k17":0}}`
	for _, tc := range []struct {
		name, event, path string
		offset            int
	}{
		{"top level", `{"source":"a","source":"b"}`, `$.source`, 14},
		{"in detail", `{"detail":{"amount":1,"amount":1000000}}`, `$.detail.amount`, 22},
		{"in an array", `{"detail":{"items":[{"id":1},{"id":2,"id":3}]}}`, `$.detail.items[1].id`, 37},
		{"spelled with an escape", `{"detail":{"id":1,"\u0069d":2}}`, `$.detail.id`, 18},
		{"a key that is not a plain word", `{"a.b":{"x y":1,"x y":2}}`, `$["a.b"]["x y"]`, 16},
		{"an empty key", `{"":1,"":2}`, `$[""]`, 6},
		{"in a large object", many, `$.detail.k17`, len(many) - 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvent([]byte(tc.event), time.Time{})
			var de *DuplicateKeyError
			if !errors.As(err, &de) || de.Path != tc.path || de.Offset != tc.offset {
				t.Fatalf("ParseEvent(%s) = %v, want duplicate key %s at offset %d", tc.event, err, tc.path, tc.offset)
			}
			if err := CheckJSON([]byte(tc.event)); err == nil || err.Error() != de.Error() {
				t.Errorf("CheckJSON = %v, want %v", err, de)
			}
		})
	}
	// The same key in different objects is no duplicate.
	for _, ev := range []string{
		`{"id":"1","detail":{"id":2,"items":[{"id":3},{"id":4}],"more":{"id":{"id":5}}}}`,
		`{"a":{"x":1},"b":{"x":1},"c":[{"x":1,"y":2},{"x":1}]}`,
		`{"k":1,"K":2,"k ":3,"\u006b1":4}`,
	} {
		if _, err := ParseEvent([]byte(ev), time.Time{}); err != nil {
			t.Errorf("ParseEvent(%s) = %v", ev, err)
		}
	}
}

// ParseEvent reads the envelope's fields wherever they are, also when the
// key is written with escapes, and checks the values it passes over.
func TestParseEvent(t *testing.T) {
	ev, err := ParseEvent([]byte(`{"detail":{"source":"x"}, "\u0069d":"e-1","source":"a\u00e9","detail-type":"T","time":1}`), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "e-1" || ev.Source != "aé" || ev.DetailType != "T" {
		t.Errorf("event %+v", ev)
	}
	for _, bad := range []string{`{"source":1,"detail":{"a":"` + "\xff" + `"}}`, `{"a":[1,]}`, `{"a":1} x`, `{"id":"x` + "\x01" + `"}`} {
		if _, err := ParseEvent([]byte(bad), time.Time{}); err == nil {
			t.Errorf("ParseEvent(%q) accepted it", bad)
		}
	}
	if _, err := ParseEvent([]byte(` [1] `), time.Time{}); !errors.Is(err, ErrNotObject) {
		t.Errorf("ParseEvent([1]) = %v, want ErrNotObject", err)
	}
}

// FuzzCheckJSON checks CheckJSON against encoding/json's tokens: it
// accepts exactly the JSON that is valid, in UTF-8, with no key twice in
// an object, and names the first duplicate's path.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"b":[{"c":1},{"c":1,"c":2}]}}`, `{"\u0061":1,"a":2}`,
		`[{"x":1},{"x":1}]`, `{"a.b":{"":1,"":2}}`, "{\"a\":\"\xff\"}", `{"a":1,"b":{"a":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckJSON(data)
		if !json.Valid(data) || !utf8.Valid(data) {
			if err == nil {
				t.Fatalf("CheckJSON(%q) accepted invalid JSON", data)
			}
			return
		}
		want := refDuplicate(t, data)
		var de *DuplicateKeyError
		switch {
		case want == "" && err != nil:
			t.Fatalf("CheckJSON(%q) = %v, want nil", data, err)
		case want != "" && (!errors.As(err, &de) || de.Path != want):
			t.Fatalf("CheckJSON(%q) = %v, want duplicate key %s", data, err, want)
		}
		_, perr := ParseEvent(data, time.Time{})
		if (perr == nil || errors.Is(perr, ErrNotObject)) != (err == nil) {
			t.Fatalf("ParseEvent(%q) = %v, CheckJSON = %v", data, perr, err)
		}
	})
}

// refDuplicate returns the path of the first key that repeats one of its
// object, in document order, or "".
func refDuplicate(t *testing.T, data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(path string) string
	walk = func(path string) string {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			found := ""
			for dec.More() {
				kt, _ := dec.Token()
				k := kt.(string)
				step := refStep(k)
				if seen[k] && found == "" {
					found = path + step
				}
				seen[k] = true
				if p := walk(path + step); p != "" && found == "" {
					found = p
				}
			}
			dec.Token()
			return found
		case json.Delim('['):
			found := ""
			for i := 0; dec.More(); i++ {
				if p := walk(path + "[" + strconv.Itoa(i) + "]"); p != "" && found == "" {
					found = p
				}
			}
			dec.Token()
			return found
		}
		return ""
	}
	p := walk("$")
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("reference: data after the value")
	}
	return p
}

func refStep(k string) string {
	if k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return "." + k
	}
	q, _ := json.Marshal(k)
	return "[" + string(q) + "]"
}
