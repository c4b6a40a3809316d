package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// vector is one line of testdata/match.jsonl or invalid.jsonl. Patterns
// and events stay raw: some repeat keys on purpose.
type vector struct {
	Name    string            `json:"name"`
	Pattern json.RawMessage   `json:"pattern"`
	Match   []json.RawMessage `json:"match"`
	NoMatch []json.RawMessage `json:"nomatch"`
	Error   string            `json:"error"`
}

func loadVectors(t testing.TB, file string) []vector {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s:%d: %v", file, line, err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestPattern_Vectors(t *testing.T) {
	vs := loadVectors(t, "testdata/match.jsonl")
	patterns := make([]*Pattern, len(vs))
	for i, v := range vs {
		p, err := ParsePattern(v.Pattern)
		if err != nil {
			t.Fatalf("%s: ParsePattern(%s): %v", v.Name, v.Pattern, err)
		}
		patterns[i] = p
	}
	// All patterns in one Matcher, to show that they do not interfere.
	all := NewMatcher(patterns)
	for i, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			check := func(event json.RawMessage, want bool) {
				t.Helper()
				got, err := patterns[i].Match(event)
				if err != nil {
					t.Fatalf("Match(%s): %v", event, err)
				}
				if got != want {
					t.Errorf("pattern %s\nevent   %s\ngot %v, want %v", v.Pattern, event, got, want)
				}
				idx, err := all.Match(event, nil)
				if err != nil {
					t.Fatalf("combined Match(%s): %v", event, err)
				}
				if slices.Contains(idx, i) != want {
					t.Errorf("combined matcher: pattern %s, event %s: got %v, want %v", v.Pattern, event, !want, want)
				}
			}
			for _, e := range v.Match {
				check(e, true)
			}
			for _, e := range v.NoMatch {
				check(e, false)
			}
		})
	}
}

func TestParsePattern_Invalid(t *testing.T) {
	for _, v := range loadVectors(t, "testdata/invalid.jsonl") {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePattern(v.Pattern)
			if err == nil {
				t.Fatalf("ParsePattern(%s) accepted an invalid pattern", v.Pattern)
			}
			if !strings.Contains(err.Error(), v.Error) {
				t.Errorf("ParsePattern(%s)\nerror %q\nwant  %q", v.Pattern, err, v.Error)
			}
			var pe *PatternError
			if !errors.As(err, &pe) {
				t.Errorf("error is %T, want a *PatternError", err)
			}
		})
	}
}

func TestParsePattern_MalformedJSON(t *testing.T) {
	for _, tc := range []struct{ name, pattern, want string }{
		{"empty input", ``, "unexpected end of input"},
		{"unterminated", `{"a":["x"]`, "unexpected end of input, want ',' or '}'"},
		{"trailing comma", `{"a":["x"],}`, "want an object key"},
		{"single quotes", `{'a':['x']}`, "want an object key"},
		{"comment", `{"a":["x"]} // why`, "after the top-level value"},
		{"trailing garbage", `{"a":["x"]} garbage`, "after the top-level value"},
		{"two objects", `{"a":["x"]}{"b":["y"]}`, "after the top-level value"},
		{"leading zero", `{"a":[01]}`, "want ',' or ']'"},
		{"plus sign", `{"a":[+1]}`, "unexpected '+', want a JSON value"},
		{"minus alone", `{"a":[-]}`, "want a digit"},
		{"NaN", `{"a":[NaN]}`, "want a JSON value"},
		{"control character in string", "{\"a\":[\"x\ty\"]}", "control character"},
		{"bad escape", `{"a":["\x"]}`, "invalid escape"},
		{"bad unicode escape", `{"a":["\u12"]}`, "invalid \\u escape"},
		{"unquoted key", `{a:["x"]}`, "want an object key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePattern([]byte(tc.pattern))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParsePattern(%q) = %v, want a *SyntaxError", tc.pattern, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePattern(%q) = %q, want it to contain %q", tc.pattern, err, tc.want)
			}
		})
	}
}

func TestParsePattern_ReportsEveryProblem(t *testing.T) {
	_, err := ParsePattern([]byte(`{"a":[{"prefix":1}],"b":{"c":[{"numeric":["<",5,">",0]}]},"d":"x"}`))
	var errs []*PatternError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *PatternError
		if errors.As(e, &pe) {
			errs = append(errs, pe)
		}
	}
	var paths []string
	for _, e := range errs {
		paths = append(paths, strings.Join(e.Path, "/"))
	}
	if want := []string{"a/[0]", "b/c/[0]", "d"}; !slices.Equal(paths, want) {
		t.Errorf("error paths = %q, want %q (all problems, in order)", paths, want)
	}
}

func TestParsePattern_Limits(t *testing.T) {
	// Eleven $or of two alternatives each expand to 2048 alternatives.
	var b strings.Builder
	b.WriteString("{")
	for i := range 11 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + string(rune('a'+i)) + `":{"$or":[{"x":["1"]},{"y":["2"]}]}`)
	}
	b.WriteString("}")
	if _, err := ParsePattern([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "more than 1024 alternatives") {
		t.Errorf("2048 alternatives: err = %v, want the alternatives limit", err)
	}

	fields := make([]string, 257)
	for i := range fields {
		fields[i] = `"f` + strings.Repeat("x", i) + `":["v"]`
	}
	if _, err := ParsePattern([]byte("{" + strings.Join(fields, ",") + "}")); err == nil || !strings.Contains(err.Error(), "at most 256 fields") {
		t.Errorf("257 fields: err = %v, want the fields limit", err)
	}
	if _, err := ParsePattern([]byte("{" + strings.Join(fields[:256], ",") + "}")); err != nil {
		t.Errorf("256 fields: %v", err)
	}
}

func TestMatch_InvalidEvents(t *testing.T) {
	p, err := ParsePattern([]byte(`{"a":["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, event string
		want        error
	}{
		{"array", `["x"]`, ErrNotObject},
		{"string", `"x"`, ErrNotObject},
		{"null", `null`, ErrNotObject},
		{"number", `5`, ErrNotObject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Match([]byte(tc.event)); !errors.Is(err, tc.want) {
				t.Errorf("Match(%s) = %v, want %v", tc.event, err, tc.want)
			}
		})
	}
	for _, event := range []string{
		``, `{`, `{"a":"x"`, `{"a":"x",}`, `{"a":["x",]}`, `{"b":{"c":[1,2}}`,
		`{"a":"x"} trailing`, `{"b":tru}`, `{"b":"\q"}`, `{"b":01}`,
	} {
		if _, err := p.Match([]byte(event)); err == nil {
			t.Errorf("Match(%q): no error for malformed JSON", event)
		} else if se := (*SyntaxError)(nil); !errors.As(err, &se) {
			t.Errorf("Match(%q) = %v, want a *SyntaxError", event, err)
		}
	}
}

// The matcher skips fields no pattern mentions, but still rejects them
// when they are malformed.
func TestMatch_ValidatesSkippedFields(t *testing.T) {
	p, _ := ParsePattern([]byte(`{"a":["x"]}`))
	if _, err := p.Match([]byte(`{"a":"x","big":{"deep":[1,2,{"bad":tru}]}}`)); err == nil {
		t.Error("a malformed field the pattern does not mention was accepted")
	}
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if _, err := p.Match([]byte(`{"b":` + deep + `}`)); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
		t.Errorf("deeply nested skipped value: err = %v, want a nesting error", err)
	}
	deepMentioned := `{"a":` + strings.Repeat("[", maxDepth+1) + `"x"` + strings.Repeat("]", maxDepth+1) + `}`
	if _, err := p.Match([]byte(deepMentioned)); err == nil || !strings.Contains(err.Error(), "nesting deeper") {
		t.Errorf("deeply nested mentioned value: err = %v, want a nesting error", err)
	}
}

func TestMatcher_ReportsIndexesAscending(t *testing.T) {
	var ps []*Pattern
	for _, src := range []string{`{"a":["x"]}`, `{"b":["y"]}`, `{"a":[{"prefix":"x"}]}`, `{"$or":[{"a":["x"]},{"b":["y"]}]}`, `{"c":[{"exists":false}]}`} {
		p, err := ParsePattern([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	m := NewMatcher(ps)
	got, err := m.Match([]byte(`{"b":"y","a":"x"}`), []int{99})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{99, 0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("Match = %v, want %v (appended to dst, each pattern once, ascending)", got, want)
	}
}

// Two predicates whose operands differ only in how strings split must not
// be interned as one.
func TestMatcher_DistinctAnythingButLists(t *testing.T) {
	var ps []*Pattern
	for _, src := range []string{`{"x":[{"anything-but":["a\u0000b"]}]}`, `{"x":[{"anything-but":["a","b"]}]}`, `{"x":[{"anything-but":{"wildcard":["a\u0000b"]}}]}`, `{"x":[{"anything-but":{"wildcard":["a","b"]}}]}`} {
		p, err := ParsePattern([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}} {
		var set []*Pattern
		for _, i := range order {
			set = append(set, ps[i])
		}
		got, err := NewMatcher(set).Match([]byte(`{"x":"a"}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		var matched []int
		for _, i := range got {
			matched = append(matched, order[i])
		}
		slices.Sort(matched)
		if want := []int{0, 2}; !slices.Equal(matched, want) {
			t.Errorf("order %v: patterns %v matched, want %v", order, matched, want)
		}
	}
}

// A large array of objects is checked without looking at every value for
// every choice: a rule that cannot hold in any one element is answered,
// not abandoned.
func TestMatch_LargeArrayOfObjects(t *testing.T) {
	p, err := ParsePattern([]byte(`{"x":{"a":[{"exists":true}],"b":[{"exists":false}],"c":[{"exists":true}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(`{"x":[`)
	for range 32000 {
		b.WriteString(`{"a":1},`)
	}
	b.WriteString(`{"b":1},{"c":1}]}`)
	ok, err := p.Match([]byte(b.String()))
	if err != nil || ok {
		t.Errorf("Match = %v, %v; want false, nil (no element has a and c)", ok, err)
	}
	ok, err = p.Match([]byte(strings.Replace(b.String(), `{"c":1}`, `{"a":2,"c":1}`, 1)))
	if err != nil || !ok {
		t.Errorf("Match = %v, %v; want true (the last element has a and c, and no b)", ok, err)
	}
}

// An event whose arrays admit too many combinations to check is refused
// with ErrTooComplex rather than tying up a core.
func TestMatch_TooComplex(t *testing.T) {
	p, err := ParsePattern([]byte(`{"x":{"a":[{"exists":true}],"b":[{"exists":true}],"c":[{"exists":true}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(`{"x":[`)
	for i := range 3300 { // 1,100 elements each with only a, only b, only c
		fmt.Fprintf(&b, `{"%c":1},`, 'a'+i/1100)
	}
	b.WriteString(`{}]}`)
	if _, err := p.Match([]byte(b.String())); !errors.Is(err, ErrTooComplex) {
		t.Errorf("Match = %v, want ErrTooComplex", err)
	}
}

// Keys are found in the trie by length and first eight bytes, then
// compared in full; keys with dots are split. Patterns on keys that share
// long prefixes, on keys of seven to nine bytes and on many siblings, in
// one Matcher, agree with the reference on events with near misses,
// escaped keys and dotted keys.
func TestMatcher_KeyLookup(t *testing.T) {
	keys := []string{"sourceIPAddress", "sourceIPAddressV6", "abcdefg", "abcdefgh", "abcdefghi", "abcdefgh.i", "a.b.c", "a", "b", ""}
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("sibling-%d", i), fmt.Sprintf("s.%d", i))
	}
	var srcs []string
	var ps []*Pattern
	for _, k := range keys {
		var pat any = []any{"x"}
		parts := strings.Split(k, ".")
		for i := len(parts) - 1; i >= 0; i-- {
			pat = map[string]any{parts[i]: pat}
		}
		src, _ := json.Marshal(pat)
		p, err := ParsePattern(src)
		if err != nil {
			t.Fatalf("ParsePattern(%s): %v", src, err)
		}
		srcs = append(srcs, string(src))
		ps = append(ps, p)
	}
	m := NewMatcher(ps)
	var events []string
	for _, k := range append(keys, "sourceIPAddresS", "sourceIPAddressV7", "sourceIPAddres", "abcdefgh ", "abcdefgi", "abcdefh", "sibling-20", "sibling-1.", ".a", "a..b.c", "s.20", "s") {
		q, _ := json.Marshal(k)
		events = append(events, fmt.Sprintf(`{%s:"x"}`, q), fmt.Sprintf(`{"pad":[1,"a"],%s:"x","z":{}}`, q))
		if parts := strings.SplitN(k, ".", 2); len(parts) == 2 {
			q0, _ := json.Marshal(parts[0])
			q1, _ := json.Marshal(parts[1])
			events = append(events, fmt.Sprintf(`{%s:{%s:"x"}}`, q0, q1))
		}
	}
	events = append(events,
		`{"abc\u0064efgh":"x"}`, `{"sourceIPAddress\u0056\u0036":"x"}`, `{"a.b":{"c":"x"}}`, `{"a":{"b.c":"x"}}`,
		`{"abcdefgh":{"i":"x"}}`, `{"abcdefgh.i":"x"}`, `{"s":{"1":"x","19":"x"}}`, `{"sibling-3":"y","sibling-4":"x"}`)
	for _, ev := range events {
		matchLikeReference(t, m, srcs, ev)
	}
}

// strIndex finds every typed value it holds, and nothing else, among
// values that share first or last eight bytes, differ only in length or
// only in type.
func TestStrIndex(t *testing.T) {
	var x strIndex
	if _, ok := x.get('s', []byte("a")); ok {
		t.Fatal("empty index found a key")
	}
	var keys []string
	for i := range 300 {
		keys = append(keys,
			fmt.Sprintf("sbucket-%d", i), fmt.Sprintf("sarn:aws:s3:::bucket-%d", i), fmt.Sprintf("s%d-suffix-shared", i),
			"s"+strings.Repeat("x", i%40), "N"+strings.Repeat("x", i%40))
	}
	keys = append(keys, "s", "t", "f", "z", "ss", "s\x00", "sabcdefgh", "Nabcdefgh", "sabcdefghabcdefgh", "sabcdefgh\x00abcdefgh", exactNumber(5), exactNumber(-0.5))
	want := map[string]int32{}
	for i, k := range keys {
		x.set(k, int32(i))
		want[k] = int32(i)
	}
	for k, id := range want {
		if got, ok := x.get(k[0], []byte(k[1:])); !ok || got != id {
			t.Errorf("get(%q, %q) = %d, %v; want %d", k[0], k[1:], got, ok, id)
		}
	}
	if x.len() != len(want) {
		t.Errorf("len = %d, want %d", x.len(), len(want))
	}
	for _, k := range []string{"sbucket-300", "sarn:aws:s3:::bucket-3000", "sx-suffix-shared", "s" + strings.Repeat("x", 40),
		"sabcdefg", "sabcdefgh\x00", "ss\x00\x00", "Tt", "n", "sz", "ns", "Sabcdefgh", exactNumber(6), "s" + exactNumber(5)[1:]} {
		if got, ok := x.get(k[0], []byte(k[1:])); ok {
			t.Errorf("get(%q, %q) = %d, want none", k[0], k[1:], got)
		}
	}
}

// Malformed events are rejected with the error the careful scanner gives,
// wherever the fast loops meet the problem: they hand over to it at the
// same place. The messages were taken from the matcher before the fast
// loops were added.
func TestMatch_MalformedEventErrors(t *testing.T) {
	p, err := ParsePattern([]byte(`{"source":["aws.s3"],"detail":{"bucket":{"name":["b"]},"size":[{"numeric":[">",5]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ event, want string }{
		{"{\"skip\":{\"a\":\"x\\\"}", "invalid JSON at offset 18: unterminated string"},
		{"{\"skip\":{\"a\":\"x\\q\"}}", "invalid JSON at offset 15: invalid escape \\q"},
		{"{\"skip\":{\"a\":\"\\u12\"}}", "invalid JSON at offset 14: invalid \\u escape"},
		{"{\"skip\":{\"a\":\"\\u12x4\"}}", "invalid JSON at offset 14: invalid \\u escape"},
		{"{\"skip\":{\"a\":\"x\ty\"}}", "invalid JSON at offset 15: control character 0x09 in string"},
		{"{\"skip\":{\"a\":[1,2,]}}", "invalid JSON at offset 18: unexpected ']', want a JSON value"},
		{"{\"skip\":{\"a\":[1 2]}}", "invalid JSON at offset 16: unexpected '2', want ',' or ']'"},
		{"{\"skip\":{\"a\" 1}}", "invalid JSON at offset 13: unexpected '1', want ':'"},
		{"{\"skip\":{a:1}}", "invalid JSON at offset 9: unexpected 'a', want an object key"},
		{"{\"skip\":{\"a\":1,}}", "invalid JSON at offset 15: unexpected '}', want an object key"},
		{"{\"skip\":{\"a\":[1}}", "invalid JSON at offset 15: unexpected '}', want ',' or ']'"},
		{"{\"skip\":{\"a\":{\"b\":1]}}", "invalid JSON at offset 19: unexpected ']', want ',' or '}'"},
		{"{\"skip\":{\"a\":01}}", "invalid JSON at offset 14: unexpected '1', want ',' or '}'"},
		{"{\"skip\":{\"a\":-}}", "invalid JSON at offset 14: unexpected '}', want a digit"},
		{"{\"skip\":{\"a\":1.}}", "invalid JSON at offset 15: unexpected '}', want a digit after the decimal point"},
		{"{\"skip\":{\"a\":1e+}}", "invalid JSON at offset 16: unexpected '}', want a digit in the exponent"},
		{"{\"skip\":{\"a\":tru}}", "invalid JSON at offset 13: unexpected 't', want a JSON value"},
		{"{\"skip\":{\"a\":nul}}", "invalid JSON at offset 13: unexpected 'n', want a JSON value"},
		{"{\"skip\":[[[[", "invalid JSON at offset 12: unexpected end of input, want a JSON value"},
		{"{\"skip\":\"abc", "invalid JSON at offset 12: unterminated string"},
		{"{\"skip\":\"a\\", "invalid JSON at offset 11: unterminated string"},
		{"{\"skip\":\"a\\\"", "invalid JSON at offset 12: unterminated string"},
		{"{\"skip\":tru}", "invalid JSON at offset 8: unexpected 't', want a JSON value"},
		{"{\"skip\" :\"x\" , \"source\":\"aws.s3\",}", "invalid JSON at offset 33: unexpected '}', want an object key"},
		{"{\"source\":\"aws.s3\\q\"}", "invalid JSON at offset 17: invalid escape \\q"},
		{"{\"source\":\"aws.s3", "invalid JSON at offset 17: unterminated string"},
		{"{\"source\" \"aws.s3\"}", "invalid JSON at offset 10: unexpected '\"', want ':'"},
		{"{\"source\":\"aws.s3\" \"detail\":{}}", "invalid JSON at offset 19: unexpected '\"', want ',' or '}'"},
		{"{\"detail\":{\"bucket\":{\"name\":\"b\",}}}", "invalid JSON at offset 32: unexpected '}', want an object key"},
		{"{\"detail\":{\"size\":5.}}", "invalid JSON at offset 20: unexpected '}', want a digit after the decimal point"},
		{"{\"detail\":{\"size\":[5,]}}", "invalid JSON at offset 21: unexpected ']', want a JSON value"},
		{"{\"detail\":{\"bucket\":[{\"name\":\"b\"},]}}", "invalid JSON at offset 34: unexpected ']', want a JSON value"},
		{"{\"detail\":{\"bucket\":{\"name\":\"b\"}}", "invalid JSON at offset 33: unexpected end of input, want ',' or '}'"},
		{"{\"detail\":{\"bucket\":{\"name\":\"b\"}}} x", "invalid JSON at offset 35: unexpected 'x' after the top-level value"},
		{"{\"source\":\"aws.s3\"}}", "invalid JSON at offset 19: unexpected '}' after the top-level value"},
		{"{\"skip\":{\"k\":\"v\", \"k2\": [ 1, {\"x\":\"\\u00zz\"} ] }}", "invalid JSON at offset 35: invalid \\u escape"},
		{"{\"skip\":\"\x01\"}", "invalid JSON at offset 9: control character 0x01 in string"},
		{"{\"source\":\"\x1f\"}", "invalid JSON at offset 11: control character 0x1f in string"},
		{"{\"a\":{\"b\":[{\"c\":\"d\"}],\"e\":\"\\\\\\\"}", "invalid JSON at offset 32: unterminated string"},
		{"{\"a\":[\"\\\"]\"]", "invalid JSON at offset 12: unexpected end of input, want ',' or '}'"},
	} {
		_, err := p.Match([]byte(tc.event))
		if se := (*SyntaxError)(nil); !errors.As(err, &se) || err.Error() != tc.want {
			t.Errorf("Match(%q) = %v, want %s", tc.event, err, tc.want)
		}
	}
}

// Strings that look like JSON structure, escapes and white space, inside
// skipped values and in mentioned ones, and keys that are rule keys in
// escaped spelling or share their prefixes: the matcher agrees with the
// reference.
func TestMatch_FastPathsAgreeWithReference(t *testing.T) {
	srcs := []string{
		`{"source":["aws.s3"],"detail":{"bucket":{"name":["b\"]}"]}}}`,
		`{"source":["aws.s3"]}`,
		`{"detail":{"key":[{"prefix":"a\\"}],"n":[{"numeric":[">",1.5]}]}}`,
		`{"detail":{"list":{"x":["é\"\\"]}}}`,
		`{"sourceX":["y"]}`,
	}
	skipped := []string{
		`"a\"b"`, `"\\"`, `"\\\""`, `"]}"`, `"\u0022}"`, `"\ud83d\ude00"`, `"\/\b\f\n\r\t"`, `""`,
		`[]`, `{}`, `[[[{"a":[{"b":"\"]"}]}]]]`, `{"a\"":{"\\":["}",{"":""}]}}`, `[1,-0.5e3,true,false,null]`,
		"[ 1 , { \"a\" : \"b\" } ]", `"` + strings.Repeat("x", 30) + `\"` + strings.Repeat("y", 30) + `"`,
	}
	var events []string
	for _, v := range skipped {
		events = append(events,
			`{"skip":`+v+`,"source":"aws.s3","detail":{"bucket":{"name":"b\"]}"},"skip":`+v+`}}`,
			`{"source":"aws.s3","detail":{"bucket":{"skip":`+v+`,"name":"b\"]}"}},"skip":`+v+`}`,
			`{"detail":{"key":"a\\b","skip":`+v+`,"n":2,"list":[{"x":"é\"\\","skip":`+v+`}]}}`,
			"{ \"source\" : \"aws.s3\" , \"skip\" : "+v+" , \"sourceX\" : \"y\" }",
		)
	}
	events = append(events,
		`{"sour\u0063e":"aws.s3"}`, `{"sourc":"aws.s3","sourceXY":"y","source\u0058":"y"}`, `{"source":"aws.s\u0033"}`,
		`{"detail":{"bucket":{"na\u006de":"b\u0022]}"}},"source":"aws.s3"}`, `{"detail":{"key":"a\u005c","n":1.50000000000001}}`,
		`{"detail":{"list":{"x":"\u00e9\u0022\u005c"}}}`, `{"detail":{"list":{"x":"é\"\\ "}}}`, `{"detail":{"n":15e-1,"key":"a\\"}}`,
		`{"detail":{"n":1.5000000000000001,"key":"a\\"}}`, `{"detail":{"n":100000000000000000000,"key":"a\\"}}`,
	)
	var ps []*Pattern
	for _, src := range srcs {
		p, err := ParsePattern([]byte(src))
		if err != nil {
			t.Fatalf("ParsePattern(%s): %v", src, err)
		}
		ps = append(ps, p)
	}
	m := NewMatcher(ps)
	matched := 0
	for _, ev := range events {
		if !json.Valid([]byte(ev)) {
			t.Fatalf("test event is not JSON: %s", ev)
		}
		matched += len(matchLikeReference(t, m, srcs, ev))
	}
	if matched < len(events) {
		t.Errorf("%d matches over %d events: the events should mostly match", matched, len(events))
	}
}

// matchLikeReference matches ev with m, whose patterns are srcs, checks
// that the reference matcher picks the same patterns, and returns them.
func matchLikeReference(t *testing.T, m *Matcher, srcs []string, ev string) []int {
	t.Helper()
	got, err := m.Match([]byte(ev), nil)
	if err != nil {
		t.Fatalf("Match(%s): %v", ev, err)
	}
	var want []int
	for i, src := range srcs {
		ok, err := refMatch([]byte(src), []byte(ev))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			want = append(want, i)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("event %s: Match = %v, reference %v", ev, got, want)
	}
	return got
}
