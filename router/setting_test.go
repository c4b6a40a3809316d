package router

import (
	"strings"
	"testing"
	"time"
)

func settingDelivery(t *testing.T, payload string, text bool) *Delivery {
	t.Helper()
	ev, err := ParseEvent([]byte(transformEvent), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return &Delivery{ID: "d-1", Rule: "r", Payload: []byte(payload), Text: text, Message: &Message{Event: ev}}
}

func TestSetting_Render(t *testing.T) {
	t.Parallel()
	d := settingDelivery(t, `{"order":"o-7","n":4,"obj":{"a":1}}`, false)
	for _, tc := range []struct{ setting, want string }{
		{"fixed", "fixed"},
		{"", ""},
		{"<$.detail.payload.acc_id>", "0a787ecb-4015"},
		{"acct-<$.account>/<$.detail.qty>", "acct-111122223333/3"},
		{"<$.detail.msg>", "say \"hi\"\nbye"},
		{"<$.detail.accent>", "café"},
		{"<$.detail.valid>|<$.detail.note>", "true|null"},
		{"<$.detail.spaced>", `{"a":[1,2]}`},
		{"<$.detail.items[*].sku>", `["A","B"]`},
		{"<$.detail-type>", "Account Update"},
		{"<order>-<n>", "o-7-4"},
		{"<obj>", `{"a":1}`},
		{"<switchyard.delivery-id>:<switchyard.rule>:<switchyard.event-id>", "d-1:r:e-1"},
		{"a < b > c", "a < b > c"},
		{"<$.detail.payload.sf_id><order>", "bazo-7"},
	} {
		st, err := ParseSetting(tc.setting)
		if err != nil {
			t.Fatalf("%q: %v", tc.setting, err)
		}
		got, err := st.Render(d)
		if err != nil || got != tc.want {
			t.Errorf("%q renders %q, %v; want %q", tc.setting, got, err, tc.want)
		}
		if st.String() != tc.setting {
			t.Errorf("String() = %q", st.String())
		}
	}
}

func TestSetting_Missing(t *testing.T) {
	t.Parallel()
	d := settingDelivery(t, `{"order":"o-7"}`, false)
	for _, tc := range []struct{ setting, want string }{
		{"<$.detail.nope>", "placeholder <$.detail.nope> has no value: the event has no $.detail.nope"},
		{"<$.detail.items[5].sku>", "the event has no $.detail.items[5].sku"},
		{"<$.detail.none[*]>", "placeholder <$.detail.none[*]> has no value"},
		{"x-<customer>", `placeholder <customer> has no value: the payload has no top-level field "customer"`},
	} {
		_, err := MustParseSetting(tc.setting).Render(d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.setting, err, tc.want)
		}
	}
	// A text payload has no fields; a delivery with no event has no paths.
	if _, err := MustParseSetting("<order>").Render(settingDelivery(t, "order", true)); err == nil {
		t.Error("a text payload's field rendered")
	}
	noEvent := &Delivery{ID: "d", Message: &Message{}}
	if _, err := MustParseSetting("<$.id>").Render(noEvent); err == nil {
		t.Error("a path rendered without an event")
	}
	if got, err := MustParseSetting("<switchyard.delivery-id>").Render(noEvent); err != nil || got != "d" {
		t.Errorf("delivery id without an event: %q, %v", got, err)
	}
}

func TestSetting_Parse(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"<$detail>", "<$.detail[x]>", "k-<$.a..b>"} {
		if _, err := ParseSetting(bad); err == nil || !strings.Contains(err.Error(), "placeholder <$") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	st := MustParseSetting("ord-<$.detail.id>-<n>")
	if st.Constant() || st.Literal("p") != "ord-p-p" {
		t.Errorf("Constant %v, Literal %q", st.Constant(), st.Literal("p"))
	}
	if c := MustParseSetting("plain <not a placeholder>"); !c.Constant() || c.Literal("p") != "plain <not a placeholder>" {
		t.Errorf("constant: %v %q", c.Constant(), c.Literal("p"))
	}
}
