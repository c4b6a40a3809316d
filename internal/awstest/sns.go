package awstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// snsVersion is the API version every SNS request names.
const snsVersion = "2010-03-31"

// snsXMLNS is the namespace of SNS's XML responses.
const snsXMLNS = "http://sns.amazonaws.com/doc/" + snsVersion + "/"

// snsDedupWindow is how long a FIFO topic remembers a deduplication id.
const snsDedupWindow = 5 * time.Minute

// SNSTopic configures a topic made with SNS.CreateTopic.
type SNSTopic struct {
	// Name is the topic's name: 1 to 256 letters, digits, '-' and '_', and
	// .fifo at the end for a FIFO topic.
	Name string
	// ContentBasedDeduplication, on a FIFO topic, derives a missing
	// deduplication id from the message body's SHA-256.
	ContentBasedDeduplication bool
	// MaximumMessageSize is the topic's limit on a message's body and
	// attributes together, 1024 to 1048576 bytes. Default 262144 (256 KiB).
	MaximumMessageSize int
}

// SNSMessage is a message a topic accepted.
type SNSMessage struct {
	MessageID      string
	SequenceNumber string // FIFO topics only
	Message        string
	Subject        string
	// Structure is MessageStructure ("json" or "").
	Structure        string
	Attributes       map[string]SNSAttribute
	GroupID, DedupID string
	// TraceHeader is the request's X-Amzn-Trace-Id header, which X-Ray
	// continues the trace from.
	TraceHeader string
	Published   time.Time
}

// SNSAttribute is a message attribute: String, String.Array and Number
// values in StringValue, Binary ones in BinaryValue.
type SNSAttribute struct {
	DataType    string
	StringValue string
	BinaryValue []byte
}

// SNS is the Simple Notification Service endpoint: Publish, in the
// awsQuery protocol the SDK speaks to SNS (a form-encoded POST with
// Action=Publish&Version=2010-03-31; XML answers, and errors as
// <ErrorResponse><Error><Type/><Code/><Message/></Error>, with the
// @awsQueryError codes and statuses of the SNS model, e.g. NotFound 404,
// AuthorizationError 403, Throttled 429, ParameterValueInvalid 400).
//
// What it checks, as the API reference says SNS does: the topic exists
// (NotFound); the message is not empty and, with its attributes, within
// the topic's MaximumMessageSize (InvalidParameter); the subject is under
// 100 characters with no line breaks or control characters; attribute
// names, types and values (ParameterValueInvalid; at most 10 attributes);
// MessageStructure json has a string "default"; on a FIFO topic a
// MessageGroupId, and a MessageDeduplicationId unless the topic has
// content-based deduplication; on a standard topic no deduplication id
// (a group id is allowed there: SNS forwards it to SQS fair queues).
//
// A FIFO topic remembers each deduplication id for 5 minutes (on the
// server's clock): a message with an id it remembers is accepted again and
// answered with the first one's MessageId and SequenceNumber, and not
// published twice. The deduplication scope is the topic (SNS's default
// FifoThroughputScope).
type SNS struct {
	s *Server

	mu     sync.Mutex
	topics map[string]*snsTopic
	seq    int64
}

type snsTopic struct {
	SNSTopic
	arn      string
	fifo     bool
	messages []SNSMessage
	dedup    map[string]snsDedup
}

type snsDedup struct {
	messageID, seq string
	at             time.Time
}

func newSNS(s *Server) *SNS { return &SNS{s: s, topics: map[string]*snsTopic{}} }

// CreateTopic makes a topic and returns its ARN; a topic of that name is
// replaced, with no messages.
func (n *SNS) CreateTopic(t SNSTopic) (string, error) {
	base, fifo := strings.CutSuffix(t.Name, ".fifo")
	if base == "" || len(t.Name) > 256 || strings.ContainsFunc(base, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return "", fmt.Errorf("awstest: invalid topic name %q", t.Name)
	}
	if t.MaximumMessageSize == 0 {
		t.MaximumMessageSize = 256 << 10
	}
	if t.MaximumMessageSize < 1024 || t.MaximumMessageSize > 1<<20 {
		return "", fmt.Errorf("awstest: topic %s: MaximumMessageSize %d is outside 1024 to 1048576", t.Name, t.MaximumMessageSize)
	}
	arn := "arn:aws:sns:" + n.s.region + ":" + n.s.account + ":" + t.Name
	n.mu.Lock()
	defer n.mu.Unlock()
	n.topics[t.Name] = &snsTopic{SNSTopic: t, arn: arn, fifo: fifo, dedup: map[string]snsDedup{}}
	return arn, nil
}

// Messages returns what the topic accepted, in order (nil for no topic).
func (n *SNS) Messages(topic string) []SNSMessage {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.topics[topic]
	if t == nil {
		return nil
	}
	out := make([]SNSMessage, len(t.messages))
	copy(out, t.messages)
	return out
}

// snsAction is the Action of an awsQuery request, whose body it reads (up
// to the server's limit) and puts back for the server to read again.
func snsAction(r *http.Request) string {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
	form, _ := url.ParseQuery(string(body))
	if a := form.Get("Action"); a != "" {
		return a
	}
	return "MissingAction"
}

// errReader returns its error, or io.EOF when it has none.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

// snsResource is the topic a request names, for fault matching.
func snsResource(body []byte) string {
	form, _ := url.ParseQuery(string(body))
	arn := form.Get("TopicArn")
	return arn[strings.LastIndexByte(arn, ':')+1:]
}

func (n *SNS) serve(w http.ResponseWriter, c *call) {
	form, perr := url.ParseQuery(string(c.body))
	if perr != nil {
		writeAPIError(w, "sns", &APIError{Code: "MalformedQueryString", Message: perr.Error()})
		return
	}
	switch c.op {
	case "Publish":
		out, err := n.publish(c, form)
		if err != nil {
			writeAPIError(w, "sns", err)
			return
		}
		writeSNSResult(w, "Publish", out)
	default:
		writeAPIError(w, "sns", &APIError{Code: "InvalidAction", Message: fmt.Sprintf("awstest: SNS action %q is not implemented", c.op)})
	}
}

// snsInvalid is SNS's InvalidParameter answer, "Invalid parameter: what".
func snsInvalid(what string) *APIError {
	return &APIError{Code: "InvalidParameter", Message: "Invalid parameter: " + what}
}

type snsPublishResult struct {
	MessageID      string `xml:"MessageId"`
	SequenceNumber string `xml:"SequenceNumber,omitempty"`
}

func (n *SNS) publish(c *call, form url.Values) (*snsPublishResult, *APIError) {
	if v := form.Get("Version"); v != snsVersion {
		return nil, &APIError{Code: "InvalidParameterValue", Message: fmt.Sprintf("Version %q is not %s", v, snsVersion)}
	}
	if form.Get("TargetArn") != "" || form.Get("PhoneNumber") != "" {
		return nil, &APIError{Code: "InvalidParameter", Message: "awstest: only topics are served (TargetArn and PhoneNumber are not)"}
	}
	arn := form.Get("TopicArn")
	if arn == "" {
		return nil, snsInvalid("TopicArn or TargetArn Reason: no value for required parameter")
	}
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5] == "" {
		return nil, snsInvalid("TopicArn")
	}
	if _, ok := form["Message"]; !ok {
		return nil, &APIError{Code: "ValidationError", Message: "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null"}
	}
	msg := form.Get("Message")
	if msg == "" {
		return nil, snsInvalid("Empty message")
	}
	if !utf8.ValidString(msg) {
		return nil, snsInvalid("Message must be UTF-8 encoded")
	}
	subject, hasSubject := form.Get("Subject"), form.Has("Subject")
	if hasSubject && (subject == "" || utf8.RuneCountInString(subject) >= 100 || !utf8.ValidString(subject) ||
		strings.ContainsFunc(subject, func(r rune) bool { return r < 0x20 || r == 0x7f })) {
		return nil, snsInvalid("Subject")
	}
	structure := form.Get("MessageStructure")
	switch structure {
	case "":
	case "json":
		var doc map[string]any
		if err := json.Unmarshal([]byte(msg), &doc); err != nil {
			return nil, snsInvalid("Message Structure - JSON message body failed to parse")
		}
		if _, ok := doc["default"].(string); !ok {
			return nil, snsInvalid("Message Structure - No default entry in JSON message body")
		}
	default:
		return nil, snsInvalid("MessageStructure")
	}
	attrs, size, aerr := snsAttributes(form)
	if aerr != nil {
		return nil, aerr
	}
	group, dedup := form.Get("MessageGroupId"), form.Get("MessageDeduplicationId")
	for _, p := range []struct{ name, v string }{{"MessageGroupId", group}, {"MessageDeduplicationId", dedup}} {
		if form.Has(p.name) && !snsTokenOK(p.v) {
			return nil, snsInvalid(p.name + " Reason: " + p.name + " can only contain up to 128 alphanumeric characters and punctuation")
		}
	}

	now := n.s.clock.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.topics[parts[5]]
	if t == nil || t.arn != arn {
		return nil, &APIError{Code: "NotFound", Message: "Topic does not exist"}
	}
	if len(msg)+size > t.MaximumMessageSize {
		return nil, snsInvalid(fmt.Sprintf("Message too long: %d bytes of message and attributes exceed the topic's MaximumMessageSize of %d", len(msg)+size, t.MaximumMessageSize))
	}
	if !t.fifo {
		if dedup != "" {
			return nil, snsInvalid("MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type")
		}
	} else {
		if group == "" {
			return nil, snsInvalid("The MessageGroupId parameter is required for FIFO topics")
		}
		if dedup == "" {
			if !t.ContentBasedDeduplication {
				return nil, snsInvalid("The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
			}
			sum := sha256.Sum256([]byte(msg))
			dedup = hex.EncodeToString(sum[:])
		}
		for id, d := range t.dedup {
			if now.Sub(d.at) >= snsDedupWindow {
				delete(t.dedup, id)
			}
		}
		if d, ok := t.dedup[dedup]; ok {
			return &snsPublishResult{MessageID: d.messageID, SequenceNumber: d.seq}, nil
		}
	}
	m := SNSMessage{
		MessageID: newID(), Message: msg, Structure: structure, Attributes: attrs,
		GroupID: group, DedupID: dedup, TraceHeader: c.r.Header.Get("X-Amzn-Trace-Id"), Published: now,
	}
	if hasSubject {
		m.Subject = subject
	}
	if t.fifo {
		n.seq++
		m.SequenceNumber = fmt.Sprintf("1%019d", n.seq)
		t.dedup[dedup] = snsDedup{messageID: m.MessageID, seq: m.SequenceNumber, at: now}
	}
	t.messages = append(t.messages, m)
	return &snsPublishResult{MessageID: m.MessageID, SequenceNumber: m.SequenceNumber}, nil
}

// snsMaxAttributes is the most message attributes a message may have.
const snsMaxAttributes = 10

// snsAttributes reads MessageAttributes.entry.N.{Name,Value.DataType,
// Value.StringValue,Value.BinaryValue} and returns them with the bytes they
// count toward the message size (name, type and value).
func snsAttributes(form url.Values) (map[string]SNSAttribute, int, *APIError) {
	const prefix = "MessageAttributes.entry."
	entries := map[int]bool{}
	for k := range form {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(num)
		if err != nil || i < 1 {
			return nil, 0, snsInvalid("MessageAttributes")
		}
		entries[i] = true
	}
	if len(entries) == 0 {
		return nil, 0, nil
	}
	if len(entries) > snsMaxAttributes {
		return nil, 0, &APIError{Code: "ParameterValueInvalid", Message: fmt.Sprintf("Number of message attributes [%d] exceeds the allowed maximum [%d].", len(entries), snsMaxAttributes)}
	}
	idx := make([]int, 0, len(entries))
	for i := range entries {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	attrs := map[string]SNSAttribute{}
	size := 0
	for _, i := range idx {
		p := prefix + strconv.Itoa(i) + "."
		name, typ := form.Get(p+"Name"), form.Get(p+"Value.DataType")
		if err := snsAttributeName(name); err != nil {
			return nil, 0, err
		}
		if _, dup := attrs[name]; dup {
			return nil, 0, &APIError{Code: "ParameterValueInvalid", Message: fmt.Sprintf("Message attribute name '%s' is repeated.", name)}
		}
		a := SNSAttribute{DataType: typ}
		base, _, _ := strings.Cut(typ, ".")
		if typ == "String.Array" {
			base = typ
		}
		switch base {
		case "String", "Number", "String.Array":
			a.StringValue = form.Get(p + "Value.StringValue")
			if a.StringValue == "" {
				return nil, 0, &APIError{Code: "ParameterValueInvalid", Message: fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, typ)}
			}
			if !utf8.ValidString(a.StringValue) {
				return nil, 0, &APIError{Code: "ParameterValueInvalid", Message: fmt.Sprintf("The message attribute '%s' contains invalid characters.", name)}
			}
			if base == "Number" {
				if _, err := strconv.ParseFloat(a.StringValue, 64); err != nil {
					return nil, 0, &APIError{Code: "ParameterValueInvalid", Message: fmt.Sprintf("Could not cast message attribute '%s' value to number.", name)}
				}
			}
			size += len(a.StringValue)
		case "Binary":
			b, err := base64.StdEncoding.DecodeString(form.Get(p + "Value.BinaryValue"))
			if err != nil || len(b) == 0 {
				return nil, 0, &APIError{Code: "ParameterValueInvalid", Message: fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, typ)}
			}
			a.BinaryValue = b
			size += len(b)
		default:
			return nil, 0, &APIError{Code: "ParameterValueInvalid", Message: fmt.Sprintf("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name)}
		}
		size += len(name) + len(typ)
		attrs[name] = a
	}
	return attrs, size, nil
}

// snsAttributeName checks a message attribute's name: up to 256 of
// A-Z a-z 0-9 _ - ., no leading, trailing or doubled '.', not starting
// with AWS. or Amazon. (reserved).
func snsAttributeName(name string) *APIError {
	bad := func(why string) *APIError {
		return &APIError{Code: "ParameterValueInvalid", Message: fmt.Sprintf("Invalid attribute name: %s (%s)", name, why)}
	}
	switch lower := strings.ToLower(name); {
	case name == "" || len(name) > 256:
		return bad("1 to 256 characters")
	case strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon."):
		return bad("reserved prefix")
	case name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, ".."):
		return bad("misplaced period")
	}
	if strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}) {
		return bad("invalid character")
	}
	return nil
}

// snsTokenOK checks a group or deduplication id: 1 to 128 characters of
// a-z, A-Z, 0-9 and ASCII punctuation.
func snsTokenOK(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// writeSNSResult writes <ActionResponse><ActionResult>...</ActionResult>
// <ResponseMetadata><RequestId/></ResponseMetadata></ActionResponse>.
func writeSNSResult(w http.ResponseWriter, action string, result any) {
	var b bytes.Buffer
	b.WriteString(`<` + action + `Response xmlns="` + snsXMLNS + `">`)
	inner, err := xml.Marshal(result)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// The result element is named after the action, whatever the Go type.
	inner = bytes.Replace(inner, []byte("<snsPublishResult>"), []byte("<"+action+"Result>"), 1)
	inner = bytes.Replace(inner, []byte("</snsPublishResult>"), []byte("</"+action+"Result>"), 1)
	b.Write(inner)
	b.WriteString(`<ResponseMetadata><RequestId>` + w.Header().Get("X-Amzn-Requestid") + `</RequestId></ResponseMetadata>`)
	b.WriteString(`</` + action + `Response>`)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// writeSNSError writes e as SNS's XML error document.
func writeSNSError(w http.ResponseWriter, status int, e *APIError) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	var msg bytes.Buffer
	_ = xml.EscapeText(&msg, []byte(e.Message))
	var code bytes.Buffer
	_ = xml.EscapeText(&code, []byte(e.Code))
	body := `<ErrorResponse xmlns="` + snsXMLNS + `"><Error><Type>` + typ + `</Type><Code>` + code.String() + `</Code><Message>` +
		msg.String() + `</Message></Error><RequestId>` + w.Header().Get("X-Amzn-Requestid") + `</RequestId></ErrorResponse>`
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// snsStatus are the statuses of the SNS model's @awsQueryError codes that
// are not 400.
var snsStatus = map[string]int{
	"AuthorizationError": 403, "FilterPolicyLimitExceeded": 403, "InvalidSecurity": 403, "KMSOptInRequired": 403,
	"SubscriptionLimitExceeded": 403, "TopicLimitExceeded": 403, "NotFound": 404, "ResourceNotFound": 404,
	"Throttled": 429, "InternalError": 500, "MissingAuthenticationToken": 403, "InvalidClientTokenId": 403,
}
