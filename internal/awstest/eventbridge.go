package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// PutEvents limits (EventBridge quotas and the PutEvents API reference):
// at most 10 entries a call, and entries whose sizes, as EventBridge
// computes them (see EntrySize), add up to at most 256 KiB.
const (
	PutEventsMaxEntries = 10
	PutEventsMaxSize    = 256 * 1024
)

// EventBridgeEntry is one PutEvents request entry as the endpoint received
// it, and, once accepted, the event it put on its bus.
type EventBridgeEntry struct {
	// EventID is the id the endpoint answered for an accepted entry; ""
	// for a failed one.
	EventID string
	// Bus is the event bus's name (an ARN reduced to it); "default" when the
	// entry named none.
	Bus string
	// Source, DetailType, Detail and Resources are the entry's own.
	Source, DetailType, Detail string
	Resources                  []string
	// Time is the entry's Time; zero when it sent none (EventBridge then
	// stamps the event with the time of the call, Received).
	Time time.Time
	// TraceHeader is the entry's X-Ray trace header, "" when none.
	TraceHeader string
	// ErrorCode and ErrorMessage are the per-entry failure answered, ""
	// when the entry was accepted.
	ErrorCode, ErrorMessage string
	// Received is when the call arrived, on the server's clock.
	Received time.Time
}

// EntrySize is the size EventBridge counts an entry as against the
// PutEvents limit ("Calculating PutEvents event entry size"): 14 bytes for
// a Time, plus the UTF-8 bytes of Source, DetailType, Detail and each of
// Resources.
func EntrySize(e EventBridgeEntry) int {
	n := len(e.Source) + len(e.DetailType) + len(e.Detail)
	if !e.Time.IsZero() {
		n += 14
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// EntryFault fails chosen entries of PutEvents calls with an ErrorCode,
// the call itself succeeding (a partial failure, FailedEntryCount > 0).
type EntryFault struct {
	// Match picks the entries to fail; nil fails every entry.
	Match func(EventBridgeEntry) bool
	// Code is the entry's ErrorCode ("ThrottlingException",
	// "InternalFailure", "MalformedDetail"...). Required.
	Code string
	// Message is the entry's ErrorMessage. Default: a message for Code.
	Message string
	// Times is how many entries the fault fails before it is removed; zero
	// fails every matching entry until removed.
	Times int
}

type entryFault struct {
	EntryFault
	left int
}

// EventBridge is the EventBridge endpoint: PutEvents (AWS JSON 1.1,
// X-Amz-Target AWSEvents.PutEvents) onto event buses the test creates (the
// default bus always exists). Accepted entries are kept as events of their
// bus (Events); every call is kept as it came (PutEventsCalls). Its
// methods are safe for concurrent use.
//
// It validates entries as EventBridge does:
//   - the request: 1 to PutEventsMaxEntries entries, else a
//     ValidationException; entries adding up to more than PutEventsMaxSize,
//     a ValidationException; an entry's TraceHeader outside 1 to 500
//     characters or EventBusName outside 1 to 1600, likewise (the API
//     reference's constraints);
//   - each entry: Source, DetailType and Detail are required (per entry
//     InvalidArgument, "Parameter Source is not valid. Reason: Source is a
//     required argument."); a DetailType over 128 characters is
//     InvalidArgument too; a Detail that is not a JSON object is
//     MalformedDetail ("Detail is malformed."); a Source beginning with
//     "aws." (AWS services' own) is NotAuthorizedForSourceException ("Not
//     authorized for the source."). When no entry has all three of Source,
//     DetailType and Detail, the whole request fails (the API reference:
//     "EventBridge fails the entire request"), here with a
//     ValidationException.
//
// Choices where the API reference leaves room:
//   - An entry for a bus that does not exist fails the whole call with
//     ResourceNotFoundException "Event bus NAME does not exist.", the answer
//     EventBridge's other operations give. (EventBridge itself has been
//     reported to accept such events and drop them; an error is what tests
//     of a misconfigured bus need.) An ARN of another account names a bus
//     that is not here; one of another region fails the call with
//     EventBridge's ValidationException "Cross-region api call is not
//     allowed."
//   - Event ids are random UUIDs, as EventBridge's are.
type EventBridge struct {
	s *Server

	mu     sync.Mutex
	buses  map[string]bool
	events map[string][]EventBridgeEntry
	calls  [][]EventBridgeEntry
	faults []*entryFault
}

func newEventBridge(s *Server) *EventBridge {
	return &EventBridge{s: s, buses: map[string]bool{"default": true}, events: map[string][]EventBridgeEntry{}}
}

var busNameRE = regexp.MustCompile(`^[/\.\-_A-Za-z0-9]{1,256}$`)

// CreateEventBus adds the bus name and returns its ARN; creating one that
// exists is no error.
func (e *EventBridge) CreateEventBus(name string) (string, error) {
	if !busNameRE.MatchString(name) {
		return "", fmt.Errorf("awstest: invalid event bus name %q", name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buses[name] = true
	return e.BusARN(name), nil
}

// BusARN returns the ARN of the bus name on this server.
func (e *EventBridge) BusARN(name string) string {
	return "arn:aws:events:" + e.s.region + ":" + e.s.account + ":event-bus/" + name
}

// Events returns the events put on bus name, in the order they were
// accepted.
func (e *EventBridge) Events(bus string) []EventBridgeEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	return cloneEntries(e.events[bus])
}

// PutEventsCalls returns every PutEvents call that reached the endpoint
// (calls answered by an injected Fault never do), each as its entries
// with what was answered for them, in arrival order. A call refused as a
// whole has its entries with no EventID and no ErrorCode.
func (e *EventBridge) PutEventsCalls() [][]EventBridgeEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([][]EventBridgeEntry, len(e.calls))
	for i, c := range e.calls {
		out[i] = cloneEntries(c)
	}
	return out
}

func cloneEntries(es []EventBridgeEntry) []EventBridgeEntry {
	out := make([]EventBridgeEntry, len(es))
	for i, x := range es {
		x.Resources = append([]string(nil), x.Resources...)
		out[i] = x
	}
	return out
}

// FailEntries adds f, consulted for every entry that passes validation,
// after the faults added before it; the first that matches fails the
// entry. remove deletes it and is idempotent.
func (e *EventBridge) FailEntries(f EntryFault) (remove func()) {
	ef := &entryFault{EntryFault: f, left: f.Times}
	e.mu.Lock()
	e.faults = append(e.faults, ef)
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.removeFaultLocked(ef)
	}
}

func (e *EventBridge) removeFaultLocked(ef *entryFault) {
	for i, x := range e.faults {
		if x == ef {
			e.faults = append(e.faults[:i], e.faults[i+1:]...)
			return
		}
	}
}

// entryFaultFor returns the code and message an injected EntryFault
// fails x with, or "".
func (e *EventBridge) entryFaultFor(x EventBridgeEntry) (code, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.faults {
		if f.Match != nil && !f.Match(x) {
			continue
		}
		if f.Times > 0 {
			f.left--
			if f.left <= 0 {
				e.removeFaultLocked(f)
			}
		}
		return f.Code, cmpStr(f.Message, entryMessages[f.Code])
	}
	return "", ""
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// entryMessages are the ErrorMessages of per-entry failures.
var entryMessages = map[string]string{
	"ThrottlingException":             "Rate exceeded.",
	"InternalFailure":                 "Internal service failure.",
	"MalformedDetail":                 "Detail is malformed.",
	"NotAuthorizedForSourceException": "Not authorized for the source.",
	"AccessDeniedException":           "User is not authorized to perform: events:PutEvents",
	"InvalidArgument":                 "A specified parameter is not valid.",
}

// busName reduces an EventBusName (a name or an ARN of this server's
// region and account) to the bus's name; ok is false for an ARN that is
// not one of this server's buses, otherRegion true for one of another
// region.
func (e *EventBridge) busName(ref string) (name string, ok, otherRegion bool) {
	if ref == "" {
		return "default", true, false
	}
	if !strings.HasPrefix(ref, "arn:") {
		return ref, true, false
	}
	// arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME
	p := strings.SplitN(ref, ":", 6)
	if len(p) != 6 || p[2] != "events" {
		return ref, false, false
	}
	if p[3] != e.s.region {
		return ref, false, true
	}
	name, ok = strings.CutPrefix(p[5], "event-bus/")
	return name, ok && name != "" && p[4] == e.s.account, false
}

// eventsResource names the bus a PutEvents call is about, for fault
// matching: its first entry's, an ARN reduced to the name.
func eventsResource(body []byte) string {
	var in struct {
		Entries []struct {
			EventBusName string `json:"EventBusName"`
		} `json:"Entries"`
	}
	_ = json.Unmarshal(body, &in)
	if len(in.Entries) == 0 || in.Entries[0].EventBusName == "" {
		return "default"
	}
	b := in.Entries[0].EventBusName
	if i := strings.LastIndexByte(b, '/'); i >= 0 && strings.HasPrefix(b, "arn:") {
		return b[i+1:]
	}
	return b
}

func (e *EventBridge) serve(w http.ResponseWriter, c *call) {
	var out any
	var err *APIError
	switch c.op {
	case "PutEvents":
		out, err = e.putEvents(c)
	default:
		err = apiErr("UnknownOperationException", "awstest: EventBridge operation %q is not implemented", c.op)
	}
	if err != nil {
		writeAPIError(w, "events", err)
		return
	}
	writeJSON(w, http.StatusOK, contentJSON11, out)
}

// putEventsEntry is an entry as the JSON 1.1 body has it.
type putEventsEntry struct {
	Detail       *string  `json:"Detail"`
	DetailType   *string  `json:"DetailType"`
	EventBusName *string  `json:"EventBusName"`
	Resources    []string `json:"Resources"`
	Source       *string  `json:"Source"`
	Time         *float64 `json:"Time"`
	TraceHeader  *string  `json:"TraceHeader"`
}

type putEventsResultEntry struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

func (e *EventBridge) putEvents(c *call) (any, *APIError) {
	var in struct {
		Entries    []putEventsEntry `json:"Entries"`
		EndpointID *string          `json:"EndpointId"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	now := e.s.clock.Now()
	entries := make([]EventBridgeEntry, len(in.Entries))
	for i, x := range in.Entries {
		en := EventBridgeEntry{
			Source: deref(x.Source), DetailType: deref(x.DetailType), Detail: deref(x.Detail),
			Resources: x.Resources, TraceHeader: deref(x.TraceHeader), Received: now,
		}
		if x.Time != nil {
			sec, frac := math.Modf(*x.Time)
			en.Time = time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC()
		}
		en.Bus = deref(x.EventBusName)
		entries[i] = en
	}
	// Whatever happens, the call is recorded as it came.
	defer func() {
		e.mu.Lock()
		e.calls = append(e.calls, entries)
		e.mu.Unlock()
	}()
	if err := e.validateRequest(in.Entries, entries); err != nil {
		return nil, err
	}
	e.mu.Lock()
	for i := range entries {
		name, ok, otherRegion := e.busName(entries[i].Bus)
		if otherRegion {
			e.mu.Unlock()
			return nil, apiErr("ValidationException", "Cross-region api call is not allowed.")
		}
		if !ok || !e.buses[name] {
			e.mu.Unlock()
			return nil, apiErr("ResourceNotFoundException", "Event bus %s does not exist.", cmpStr(entries[i].Bus, "default"))
		}
		entries[i].Bus = name
	}
	e.mu.Unlock()

	results := make([]putEventsResultEntry, len(entries))
	failed := 0
	for i := range entries {
		en := &entries[i]
		code, msg := entryError(in.Entries[i], *en)
		if code == "" {
			code, msg = e.entryFaultFor(*en)
		}
		if code == "" && c.entryFault != nil && c.entryFault.failsEntry(strconv.Itoa(i)) {
			code, msg = c.entryFault.Code, cmpStr(c.entryFault.Message, entryMessages[c.entryFault.Code])
		}
		if code != "" {
			en.ErrorCode, en.ErrorMessage = code, msg
			results[i] = putEventsResultEntry{ErrorCode: code, ErrorMessage: msg}
			failed++
			continue
		}
		en.EventID = newID()
		results[i] = putEventsResultEntry{EventID: en.EventID}
	}
	e.mu.Lock()
	for _, en := range entries {
		if en.EventID != "" {
			e.events[en.Bus] = append(e.events[en.Bus], en)
		}
	}
	e.mu.Unlock()
	return map[string]any{"Entries": results, "FailedEntryCount": failed}, nil
}

// validateRequest checks what fails a PutEvents call as a whole.
func (e *EventBridge) validateRequest(raw []putEventsEntry, entries []EventBridgeEntry) *APIError {
	switch n := len(raw); {
	case n == 0:
		return apiErr("ValidationException", "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case n > PutEventsMaxEntries:
		return apiErr("ValidationException", "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to %d", PutEventsMaxEntries)
	}
	size, complete := 0, false
	for i, x := range raw {
		if x.TraceHeader != nil && (len(*x.TraceHeader) < 1 || utf8.RuneCountInString(*x.TraceHeader) > 500) {
			return apiErr("ValidationException", "1 validation error detected: Value at 'entries.%d.member.traceHeader' failed to satisfy constraint: Member must have length between 1 and 500", i+1)
		}
		if x.EventBusName != nil && (len(*x.EventBusName) < 1 || len(*x.EventBusName) > 1600) {
			return apiErr("ValidationException", "1 validation error detected: Value at 'entries.%d.member.eventBusName' failed to satisfy constraint: Member must have length between 1 and 1600", i+1)
		}
		size += EntrySize(entries[i])
		complete = complete || x.Source != nil && *x.Source != "" && x.DetailType != nil && *x.DetailType != "" && x.Detail != nil && *x.Detail != ""
	}
	if size > PutEventsMaxSize {
		return apiErr("ValidationException", "Total size of the entries in the request is over the limit.")
	}
	if !complete {
		return apiErr("ValidationException", "None of the entries have Source, DetailType and Detail, which every event requires.")
	}
	return nil
}

// entryError is the per-entry failure EventBridge answers for an entry
// that the request as a whole let through, or "".
func entryError(raw putEventsEntry, en EventBridgeEntry) (code, msg string) {
	for _, f := range []struct {
		name string
		v    *string
	}{{"Source", raw.Source}, {"DetailType", raw.DetailType}, {"Detail", raw.Detail}} {
		if f.v == nil || *f.v == "" {
			return "InvalidArgument", fmt.Sprintf("Parameter %s is not valid. Reason: %s is a required argument.", f.name, f.name)
		}
	}
	if utf8.RuneCountInString(en.DetailType) > 128 {
		return "InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is longer than 128 characters."
	}
	if strings.HasPrefix(en.Source, "aws.") {
		return "NotAuthorizedForSourceException", entryMessages["NotAuthorizedForSourceException"]
	}
	d := bytes.TrimLeft([]byte(en.Detail), " \t\r\n")
	if len(d) == 0 || d[0] != '{' || !json.Valid(d) {
		return "MalformedDetail", entryMessages["MalformedDetail"]
	}
	return "", ""
}
