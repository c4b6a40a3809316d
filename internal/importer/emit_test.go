package importer

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/internal/config"
)

var scalarSeeds = []string{"", "plain", "Order Placed", "a: b", "a #b", "#x", "- x", "? x", "x\n", "\ny", "two\nlines\n", "three\n\n",
	" lead", "trail ", "it's", `say "hi"`, "tab\there", "null", "~", "true", "False", "1e3", "0x10", "012", "<x>", ">=", "*a", "&a",
	"!tag", "%x", "@x", "`x", "{a}", "[a]", "a,b", "${X}", "$${X}", "é ✓", "\u2028", "ctl\x01", "{\"order\": <id>}", "|", ">"}

// Every string is written so that YAML reads it back as the same string,
// in a block mapping and in a flow list.
func FuzzScalarRoundTrip(f *testing.F) {
	for _, s := range scalarSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("the import writes UTF-8 read from JSON or YAML")
		}
		doc := yMapNode().set("k", yStr(s)).set("l", yStrs([]string{s, "x"})).set("m", ySeqNode().add(yMapNode().set("k", yStr(s))))
		out := emit(doc)
		var got struct {
			K string
			L []string
			M []struct{ K string }
		}
		if err := yaml.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: %v\n%s", s, err, out)
		}
		if got.K != s || len(got.L) != 2 || got.L[0] != s || len(got.M) != 1 || got.M[0].K != s {
			t.Fatalf("%q read back as %q, %q, %+v\n%s", s, got.K, got.L, got.M, out)
		}
	})
}

// A string of an EventBridge pattern reaches switchyard's pattern as it
// was: escaped for YAML, and "${" for the config's expansion.
func FuzzPatternString(f *testing.F) {
	for _, s := range scalarSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Skip()
		}
		pattern := &value{kind: kObject, keys: []string{"detail"}, vals: []*value{{kind: kObject, keys: []string{"v"},
			vals: []*value{{kind: kArray, vals: []*value{{kind: kString, str: lit(s)}}}}}}}
		doc := yMapNode().set("version", yNum("1")).
			set("sources", ySeqNode().add(yMapNode().set("name", yStr("s")).set("type", yStr("http")))).
			set("targets", ySeqNode().add(yMapNode().set("name", yStr("t")).set("type", yStr("log")))).
			set("rules", ySeqNode().add(yMapNode().set("name", yStr("r")).set("pattern", patternNode(pattern)).set("targets", yStrs([]string{"t"}))))
		out := emit(doc)
		c, err := config.Parse("f.yaml", out, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%q: %v\n%s", s, err, out)
		}
		var p struct{ Detail struct{ V []string } }
		if err := json.Unmarshal(c.Rules[0].Pattern.JSON, &p); err != nil || len(p.Detail.V) != 1 || p.Detail.V[0] != s {
			t.Fatalf("%q came out as %s (%v)\n%s", s, c.Rules[0].Pattern.JSON, err, out)
		}
	})
}

func TestEmit_Shapes(t *testing.T) {
	t.Parallel()
	doc := yMapNode().
		set("a", yStr("x"), "a comment").
		set("n", yNum("1e3")).
		set("b", yBool(true)).
		set("list", ySeqNode().add(yMapNode().set("k", yStr("v")).set("l", yMapNode().set("deep", yStr("d")))).add(yStr("s"), "an item's comment")).
		set("empty", ySeqNode()).
		set("flow", yMapNode().set("p", yStrs([]string{"<=", "Order Placed"})))
	doc.get("flow").flow = true
	doc.foot = []string{"the end"}
	want := `# a comment
a: x

n: 1e3

b: true

list:
  - k: v
    l:
      deep: d

  # an item's comment
  - s

empty: []

flow: {p: ["<=", Order Placed]}
# the end
`
	if got := string(emit(doc)); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	r := &envRef{Name: "X", Default: "d"}
	tx := join(lit("a${b}:"), refText(r), lit(":c"))
	if got := tx.config(); got != "a$${b}:${X:-d}:c" {
		t.Errorf("config() = %q", got)
	}
	if got := tx.plain(); got != "a${b}:d:c" {
		t.Errorf("plain() = %q", got)
	}
	parts := tx.split(":")
	if len(parts) != 3 || parts[1].config() != "${X:-d}" || parts[2].plain() != "c" {
		t.Errorf("split: %v", parts)
	}
	f, ok := arnFields(join(lit("arn:aws:sqs:"), refText(r), lit(":111122223333:q:x")))
	if !ok || f[3].config() != "${X:-d}" || f[5].plain() != "q:x" {
		t.Errorf("arnFields: %v %v", f, ok)
	}
	whole := &envRef{Name: "Y", Default: "arn:aws:sqs:us-east-1:1:q"}
	if _, ok := arnFields(refText(whole)); ok {
		t.Error("arnFields of a whole ARN read from the environment: ok")
	}
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	v, err := parseJSON([]byte("{\n \"b\": 1,\n \"a\": [true, null, \"s\", 1.5e3]\n}"))
	if err != nil {
		t.Fatal(err)
	}
	if v.keys[0] != "b" || v.keys[1] != "a" || v.vals[1].line != 3 || v.vals[1].vals[3].num != "1.5e3" {
		t.Errorf("order, lines or numbers lost: %+v", v)
	}
	if got := string(v.appendJSON(nil, true)); got != `{"b":1,"a":[true,null,"s",1.5e3]}` {
		t.Errorf("appendJSON = %s", got)
	}
	for in, want := range map[string]string{
		`{"a": 1, "a": 2}`: `line 1: key "a" given twice`,
		"{\n\"a\": }":      "line 2: invalid character",
		`[1] [2]`:          "more after the JSON value",
		"\xff":             "not UTF-8",
		``:                 "unexpected end of JSON",
	} {
		if _, err := parseJSON([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseJSON(%q): %v, want %q", in, err, want)
		}
	}
	// References inside JSON strings survive a parse.
	r := &envRef{Name: "B", Default: "bucket"}
	v, err = parseJSONText(join(lit(`{"name": ["x-`), refText(r), lit(`"]}`)))
	if err != nil || v.get("name").vals[0].str.config() != "x-${B:-bucket}" {
		t.Errorf("parseJSONText: %v %v", v, err)
	}
	if _, err := parseJSONText(join(lit(`{"n": `), refText(r), lit(`}`))); err == nil || !strings.Contains(err.Error(), "outside a JSON string") {
		t.Errorf("a reference as a number: %v", err)
	}
}
