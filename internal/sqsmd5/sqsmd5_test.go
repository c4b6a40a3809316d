package sqsmd5

import "testing"

// The digests SQS's ReceiveMessage answers are checked by the SDK against
// this package through internal/awstest's SQS endpoint; here, what makes
// two sets of attributes digest alike or not.
func TestAttributes(t *testing.T) {
	base := map[string]Attribute{"b": {"String", []byte("x")}, "a": {"Number.int", []byte("7")}}
	same := map[string]Attribute{"a": {"Number.int", []byte("7")}, "b": {"String", []byte("x")}}
	if Attributes(base) != Attributes(same) {
		t.Error("the order of attributes changed the digest")
	}
	for name, other := range map[string]map[string]Attribute{
		"another label": {"b": {"String", []byte("x")}, "a": {"Number", []byte("7")}},
		"binary":        {"b": {"Binary", []byte("x")}, "a": {"Number.int", []byte("7")}},
		"another name":  {"c": {"String", []byte("x")}, "a": {"Number.int", []byte("7")}},
		"one fewer":     {"a": {"Number.int", []byte("7")}},
	} {
		if Attributes(other) == Attributes(base) {
			t.Errorf("%s: the same digest", name)
		}
	}
	if Attributes(nil) != "" || len(Attributes(base)) != 32 {
		t.Errorf("no attributes %q, some %q: want empty, then 32 hex digits", Attributes(nil), Attributes(base))
	}
	if Body([]byte("test")) != "098f6bcd4621d373cade4e832627b4f6" {
		t.Errorf("Body(test) = %s", Body([]byte("test")))
	}
}
