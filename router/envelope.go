package router

import "fmt"

// Envelope says how a source turns what it receives into an Event.
type Envelope string

// The envelopes a source may be configured with.
const (
	// EnvelopeAuto detects an EventBridge event or an SNS notification and
	// wraps anything else, as EnvelopeRaw does.
	EnvelopeAuto Envelope = "auto"
	// EnvelopeEventBridge expects EventBridge events.
	EnvelopeEventBridge Envelope = "eventbridge"
	// EnvelopeSNS expects SNS notifications and unwraps their Message.
	EnvelopeSNS Envelope = "sns"
	// EnvelopeRaw wraps every payload in a new event.
	EnvelopeRaw Envelope = "raw"
)

// UnmarshalText implements encoding.TextUnmarshaler, accepting the four
// envelope names.
func (e *Envelope) UnmarshalText(b []byte) error {
	switch v := Envelope(b); v {
	case EnvelopeAuto, EnvelopeEventBridge, EnvelopeSNS, EnvelopeRaw:
		*e = v
		return nil
	}
	return fmt.Errorf("unknown envelope %q (valid: auto, eventbridge, sns, raw)", b)
}
