package router

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
)

// refEval evaluates a compiled path over a decoded value, independently of
// the scanner.
func refEval(steps []pathStep, v any, out *[]string) {
	if len(steps) == 0 {
		b, _ := json.Marshal(v)
		*out = append(*out, string(b))
		return
	}
	st := steps[0]
	switch x := v.(type) {
	case map[string]any:
		switch st.kind {
		case stepKey:
			if c, ok := x[st.key]; ok {
				refEval(steps[1:], c, out)
			}
		case stepWild:
			for _, c := range x {
				refEval(steps[1:], c, out)
			}
		}
	case []any:
		switch st.kind {
		case stepIndex:
			if st.index < len(x) {
				refEval(steps[1:], x[st.index], out)
			}
		case stepWild:
			for _, c := range x {
				refEval(steps[1:], c, out)
			}
		}
	}
}

// FuzzJSONPath compares the scanner's path walk with refEval on events
// without repeated keys. Order is compared as a multiset, since Go maps
// forget member order.
func FuzzJSONPath(f *testing.F) {
	f.Add("$.a[*].b", `{"a":[{"b":1,"c":2},{"b":[3]},{"c":4},5]}`)
	f.Add("$.*.x", `{"p":{"x":1},"q":{"x":{"y":2}},"r":[]}`)
	f.Add("$.a[1][0]", `{"a":[[1],[2,3]]}`)
	f.Add("$", `{"a":1}`)
	f.Fuzz(func(t *testing.T, path, event string) {
		jp, err := compilePath(path)
		if err != nil || !json.Valid([]byte(event)) {
			return
		}
		v, err := parseJSON([]byte(event))
		if err != nil || hasRepeatedKeys(v) {
			return
		}
		var doc any
		d := json.NewDecoder(strings.NewReader(event))
		d.UseNumber()
		if d.Decode(&doc) != nil {
			return
		}
		var want, got []string
		refEval(jp.steps, doc, &want)
		jp.eval([]byte(event), func(a, b int) bool {
			var x any
			dd := json.NewDecoder(strings.NewReader(event[a:b]))
			dd.UseNumber()
			if err := dd.Decode(&x); err != nil {
				t.Fatalf("path %s emitted %q, not a JSON value", path, event[a:b])
			}
			bb, _ := json.Marshal(x)
			got = append(got, string(bb))
			return jp.wild
		})
		if !jp.wild && len(want) > 1 {
			want = want[:1]
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Fatalf("path %s on %s: got %q, want %q", path, event, got, want)
		}
	})
}

func hasRepeatedKeys(v *jvalue) bool {
	for i, k := range v.keys {
		if slices.Contains(v.keys[:i], k) {
			return true
		}
	}
	for _, c := range append(slices.Clone(v.vals), v.arr...) {
		if hasRepeatedKeys(c) {
			return true
		}
	}
	return false
}
