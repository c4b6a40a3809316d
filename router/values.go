package router

import (
	"encoding/json"
	"regexp"
	"sync"
)

// PlaceholderRE returns the expression that matches a <name> placeholder
// in a target setting (a URL, a subject). It is compiled on first use.
var PlaceholderRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<[A-Za-z0-9_.\-]+>`) })

// DeliveryValues are the values a target setting's <name> placeholders may
// stand for: the top-level fields of the payload (for a dead letter, of the
// original message's body), and the delivery's switchyard.delivery-id,
// switchyard.event-id and switchyard.rule. Strings stand for themselves;
// numbers, booleans, null, objects and arrays for their JSON.
func DeliveryValues(d *Delivery) map[string]string {
	vars := map[string]string{
		"switchyard.delivery-id": d.ID,
		"switchyard.rule":        d.Rule,
	}
	if d.Message != nil && d.Message.Event != nil {
		vars["switchyard.event-id"] = d.Message.Event.ID
	}
	var fields map[string]json.RawMessage
	if !d.Text && json.Unmarshal(d.Payload, &fields) == nil {
		for k, raw := range fields {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				vars[k] = s
			} else {
				vars[k] = string(raw)
			}
		}
	}
	return vars
}
