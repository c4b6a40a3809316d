package awstest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// SQS is the SQS endpoint (AWS JSON 1.0, X-Amz-Target "AmazonSQS.<Op>"):
// CreateQueue, GetQueueUrl, GetQueueAttributes, SetQueueAttributes,
// DeleteQueue, ListQueues, SendMessage, SendMessageBatch, ReceiveMessage,
// DeleteMessage, DeleteMessageBatch, ChangeMessageVisibility,
// ChangeMessageVisibilityBatch and PurgeQueue, plus test helpers. Its methods
// are safe for concurrent use.
//
// Choices where AWS documents a range of behaviour:
//   - ReceiveMessage long-polls for WaitTimeSeconds (else the queue's
//     ReceiveMessageWaitTimeSeconds): it answers as soon as one message is
//     visible, when the wait ends on the server's Clock, or when the caller
//     goes away or the server closes; nothing is taken on an abandoned poll.
//   - Receive order: a standard queue hands out visible messages oldest
//     first (AWS only approximates this); a short poll (WaitTimeSeconds 0)
//     sees every visible message, not a sample of servers.
//   - Stale receipt handles (from an earlier receive of a message received
//     again since): DeleteMessage succeeds and deletes nothing (AWS: "the
//     request will succeed, but the message might not be deleted");
//     ChangeMessageVisibility fails with InvalidParameterValue "The receipt
//     handle has expired", as it does for a message already deleted.
//     DeleteMessage of a message already deleted succeeds. A handle the
//     server never issued, or one for another queue, is ReceiptHandleIsInvalid.
//   - The latest handle of a message whose visibility timeout has expired
//     (but that nobody has received again) still deletes it; changing its
//     visibility is MessageNotInflight.
//   - Redrive: a message is moved to the dead-letter queue by the receive
//     that would raise its receive count above maxReceiveCount; it keeps its
//     id, body, attributes, sent time and receive count, and gains the
//     DeadLetterQueueSourceArn system attribute.
//   - Standard queues accept MessageGroupId (SQS fair queues) and return it
//     as a system attribute; it does not order or lock anything there.
//   - FIFO: ReceiveRequestAttemptId is accepted and ignored.
type SQS struct {
	s *Server

	mu      sync.Mutex
	queues  map[string]*queue
	deleted map[string]time.Time // recently deleted queue names
}

func newSQS(s *Server) *SQS {
	return &SQS{s: s, queues: map[string]*queue{}, deleted: map[string]time.Time{}}
}

// Attribute is a message attribute. DataType is "String", "Number" or
// "Binary", optionally with a custom label ("Number.int"); StringValue
// holds String and Number values, BinaryValue Binary ones.
type Attribute struct {
	DataType    string
	StringValue string
	BinaryValue []byte
}

// Queue attribute limits and defaults (SQS API reference, CreateQueue).
const (
	sqsDefaultVisibility = 30
	sqsDefaultMaxSize    = 262144
	sqsDefaultRetention  = 345600
	sqsMaxVisibility     = 43200
	sqsDedupWindow       = 5 * time.Minute
	sqsPurgeInterval     = 60 * time.Second
	sqsMaxBatch          = 10
	sqsMaxAttributes     = 10
)

type redrivePolicy struct {
	targetARN       string
	maxReceiveCount int
}

type queue struct {
	name    string
	fifo    bool
	created time.Time
	changed time.Time

	visibility, delay, retention, maxSize, wait int
	redrive                                     *redrivePolicy
	contentDedup                                bool
	other                                       map[string]string // settable attributes kept verbatim

	msgs    []*message // in send order
	byID    map[string]*message
	dedup   map[string]dedupEntry
	dedupQ  []string // dedup keys in the order they expire
	seq     uint64
	expired time.Time     // when expireLocked last ran
	notify  chan struct{} // closed and replaced on every change a receiver may wait for
	waiting int
	purged  time.Time
	gone    bool
}

type dedupEntry struct {
	id, seq string
	expires time.Time
}

type message struct {
	id, body     string
	attrs        map[string]Attribute
	sysAttrs     map[string]Attribute
	md5Body      string
	md5Attrs     string
	md5Sys       string
	sentAt       time.Time
	visibleAt    time.Time
	receiveCount int
	firstReceive time.Time
	receivedAt   time.Time
	groupID      string
	dedupID      string
	seq          string
	handle       string // latest receipt handle
	dlqSource    string // ARN of the queue it was moved from
}

func (q *queue) wake() {
	close(q.notify)
	q.notify = make(chan struct{})
}

func (q *queue) arn(s *Server) string {
	return "arn:aws:sqs:" + s.region + ":" + s.account + ":" + q.name
}

// ---- wire shapes ----

type wireAttr struct {
	DataType         string   `json:"DataType"`
	StringValue      *string  `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

func toWireAttrs(m map[string]Attribute) map[string]wireAttr {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]wireAttr, len(m))
	for k, a := range m {
		w := wireAttr{DataType: a.DataType}
		if isBinaryType(a.DataType) {
			w.BinaryValue = a.BinaryValue
		} else {
			v := a.StringValue
			w.StringValue = &v
		}
		out[k] = w
	}
	return out
}

type wireMessage struct {
	MessageID              string              `json:"MessageId"`
	ReceiptHandle          string              `json:"ReceiptHandle"`
	MD5OfBody              string              `json:"MD5OfBody"`
	Body                   string              `json:"Body"`
	Attributes             map[string]string   `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string              `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]wireAttr `json:"MessageAttributes,omitempty"`
}

type batchError struct {
	ID          string `json:"Id"`
	SenderFault bool   `json:"SenderFault"`
	Code        string `json:"Code"`
	Message     string `json:"Message,omitempty"`
}

type sendInput struct {
	QueueURL                string              `json:"QueueUrl"`
	ID                      string              `json:"Id"` // batch entries only
	MessageBody             *string             `json:"MessageBody"`
	DelaySeconds            *int32              `json:"DelaySeconds"`
	MessageAttributes       map[string]wireAttr `json:"MessageAttributes"`
	MessageSystemAttributes map[string]wireAttr `json:"MessageSystemAttributes"`
	MessageDeduplicationID  *string             `json:"MessageDeduplicationId"`
	MessageGroupID          *string             `json:"MessageGroupId"`
}

type sendOutput struct {
	ID                           string `json:"Id,omitempty"`
	MessageID                    string `json:"MessageId"`
	MD5OfMessageBody             string `json:"MD5OfMessageBody"`
	MD5OfMessageAttributes       string `json:"MD5OfMessageAttributes,omitempty"`
	MD5OfMessageSystemAttributes string `json:"MD5OfMessageSystemAttributes,omitempty"`
	SequenceNumber               string `json:"SequenceNumber,omitempty"`
}

// sqsResource names the queue a request is about, for fault matching.
func sqsResource(body []byte) string {
	var in struct {
		QueueURL  string `json:"QueueUrl"`
		QueueName string `json:"QueueName"`
	}
	_ = json.Unmarshal(body, &in)
	if in.QueueName != "" {
		return in.QueueName
	}
	if i := strings.LastIndexByte(in.QueueURL, '/'); i >= 0 {
		return in.QueueURL[i+1:]
	}
	return in.QueueURL
}

func (sq *SQS) serve(w http.ResponseWriter, c *call) {
	var out any
	var err *APIError
	base := "http://" + c.r.Host
	switch c.op {
	case "CreateQueue":
		out, err = sq.createQueue(c, base)
	case "GetQueueUrl":
		out, err = sq.getQueueURL(c, base)
	case "GetQueueAttributes":
		out, err = sq.getQueueAttributes(c)
	case "SetQueueAttributes":
		out, err = sq.setQueueAttributes(c)
	case "DeleteQueue":
		out, err = sq.deleteQueue(c)
	case "ListQueues":
		out, err = sq.listQueues(c, base)
	case "SendMessage":
		out, err = sq.sendMessage(c)
	case "SendMessageBatch":
		out, err = sq.sendMessageBatch(c)
	case "ReceiveMessage":
		out, err = sq.receiveMessage(c)
	case "DeleteMessage":
		out, err = sq.deleteMessage(c)
	case "DeleteMessageBatch":
		out, err = sq.deleteMessageBatch(c)
	case "ChangeMessageVisibility":
		out, err = sq.changeVisibility(c)
	case "ChangeMessageVisibilityBatch":
		out, err = sq.changeVisibilityBatch(c)
	case "PurgeQueue":
		out, err = sq.purgeQueue(c)
	default:
		err = apiErr("UnknownOperationException", "awstest: SQS operation %q is not implemented", c.op)
	}
	if err != nil {
		writeAPIError(w, "sqs", err)
		return
	}
	writeJSON(w, http.StatusOK, contentJSON10, out)
}

func missingParam(name string) *APIError {
	return apiErr("MissingParameter", "The request must contain the parameter %s.", name)
}

func invalidValue(name string, value any, reason string) *APIError {
	return apiErr("InvalidParameterValue", "Value %v for parameter %s is invalid. Reason: %s", value, name, reason)
}

// queueFromURL resolves a QueueUrl by its path, /<account>/<name>; the host
// is not checked, so production URLs in a config resolve too.
func (sq *SQS) queueFromURL(raw string) (*queue, *APIError) {
	if raw == "" {
		return nil, missingParam("QueueUrl")
	}
	u, err := url.Parse(raw)
	parts := []string{}
	if err == nil {
		parts = strings.Split(strings.Trim(u.Path, "/"), "/")
	}
	if err != nil || len(parts) != 2 || parts[1] == "" {
		return nil, apiErr("InvalidAddress", "The address %s is not valid for this endpoint.", raw)
	}
	if parts[0] != sq.s.account {
		return nil, apiErr("QueueDoesNotExist", "The specified queue does not exist.")
	}
	q := sq.queues[parts[1]]
	if q == nil {
		return nil, apiErr("QueueDoesNotExist", "The specified queue does not exist.")
	}
	return q, nil
}

func (sq *SQS) queueURL(base, name string) string {
	return base + "/" + sq.s.account + "/" + name
}

// ---- queues ----

var (
	queueNameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	batchIDRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	attrNameRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)
	groupIDRE     = regexp.MustCompile(`^[!-~]{1,128}$`) // alphanumerics and punctuation
	queueIntAttrs = map[string][2]int{
		"DelaySeconds":                  {0, 900},
		"MaximumMessageSize":            {1024, 1048576},
		"MessageRetentionPeriod":        {60, 1209600},
		"ReceiveMessageWaitTimeSeconds": {0, 20},
		"VisibilityTimeout":             {0, sqsMaxVisibility},
		"KmsDataKeyReusePeriodSeconds":  {60, 86400},
	}
	queueVerbatimAttrs = map[string]bool{
		"Policy": true, "KmsMasterKeyId": true, "RedriveAllowPolicy": true,
		"SqsManagedSseEnabled": true, "KmsDataKeyReusePeriodSeconds": true,
	}
	queueFIFOAttrs = map[string]bool{
		"FifoQueue": true, "ContentBasedDeduplication": true, "DeduplicationScope": true, "FifoThroughputLimit": true,
	}
	queueReadOnlyAttrs = map[string]bool{
		"ApproximateNumberOfMessages": true, "ApproximateNumberOfMessagesNotVisible": true,
		"ApproximateNumberOfMessagesDelayed": true, "CreatedTimestamp": true,
		"LastModifiedTimestamp": true, "QueueArn": true,
	}
)

func validQueueName(name string, fifo bool) bool {
	if fifo {
		if !strings.HasSuffix(name, ".fifo") {
			return false
		}
		base := strings.TrimSuffix(name, ".fifo")
		return len(name) <= 80 && base != "" && queueNameRE.MatchString(base)
	}
	return queueNameRE.MatchString(name)
}

// applyAttrs validates attrs and, when q is not nil, applies them. creating
// allows FifoQueue.
func (sq *SQS) applyAttrs(q *queue, fifo bool, attrs map[string]string, creating bool) *APIError {
	for k, v := range attrs {
		switch {
		case queueIntAttrs[k] != [2]int{}:
			r := queueIntAttrs[k]
			n, err := strconv.Atoi(v)
			if err != nil || n < r[0] || n > r[1] {
				return apiErr("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
			}
		case k == "RedrivePolicy":
			if v == "" {
				break
			}
			rp, err := sq.parseRedrive(v, fifo)
			if err != nil {
				return err
			}
			_ = rp
		case queueFIFOAttrs[k]:
			if !fifo {
				if k == "FifoQueue" && v == "false" && creating {
					break
				}
				return apiErr("InvalidAttributeName", "Unknown Attribute %s.", k)
			}
			switch k {
			case "FifoQueue":
				if !creating || v != "true" {
					return apiErr("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
				}
			case "ContentBasedDeduplication":
				if v != "true" && v != "false" {
					return apiErr("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
				}
			case "DeduplicationScope":
				if v != "messageGroup" && v != "queue" {
					return apiErr("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
				}
			case "FifoThroughputLimit":
				if v != "perQueue" && v != "perMessageGroupId" {
					return apiErr("InvalidAttributeValue", "Invalid value for the parameter %s.", k)
				}
			}
		case queueVerbatimAttrs[k]:
		default:
			return apiErr("InvalidAttributeName", "Unknown Attribute %s.", k)
		}
	}
	if q == nil {
		return nil
	}
	for k, v := range attrs {
		n, _ := strconv.Atoi(v)
		switch k {
		case "DelaySeconds":
			q.delay = n
		case "MaximumMessageSize":
			q.maxSize = n
		case "MessageRetentionPeriod":
			q.retention = n
		case "ReceiveMessageWaitTimeSeconds":
			q.wait = n
		case "VisibilityTimeout":
			q.visibility = n
		case "RedrivePolicy":
			q.redrive = nil
			if v != "" {
				q.redrive, _ = sq.parseRedrive(v, fifo)
			}
		case "ContentBasedDeduplication":
			q.contentDedup = v == "true"
		case "FifoQueue":
		default:
			q.other[k] = v
		}
	}
	return nil
}

func (sq *SQS) parseRedrive(v string, fifo bool) (*redrivePolicy, *APIError) {
	bad := func(reason string) *APIError { return invalidValue("RedrivePolicy", v, reason) }
	var raw struct {
		DeadLetterTargetARN string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, bad("Redrive policy is not a valid JSON map.")
	}
	s := strings.Trim(string(raw.MaxReceiveCount), `"`)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return nil, bad("Invalid value for maxReceiveCount: " + s + ", valid values are from 1 to 1000 both inclusive.")
	}
	prefix := "arn:aws:sqs:" + sq.s.region + ":" + sq.s.account + ":"
	name, ok := strings.CutPrefix(raw.DeadLetterTargetARN, prefix)
	if !ok || name == "" {
		return nil, bad("Invalid value for deadLetterTargetArn.")
	}
	dlq := sq.queues[name]
	if dlq == nil {
		return nil, bad("Dead letter target does not exist.")
	}
	if dlq.fifo != fifo {
		return nil, bad("Dead-letter queue must be same type of queue as the source.")
	}
	return &redrivePolicy{targetARN: raw.DeadLetterTargetARN, maxReceiveCount: n}, nil
}

type createQueueInput struct {
	QueueName  string            `json:"QueueName"`
	Attributes map[string]string `json:"Attributes"`
	Tags       map[string]string `json:"tags"`
}

func (sq *SQS) createQueue(c *call, base string) (any, *APIError) {
	var in createQueueInput
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	if err := sq.createLocked(in.QueueName, in.Attributes); err != nil {
		return nil, err
	}
	return map[string]string{"QueueUrl": sq.queueURL(base, in.QueueName)}, nil
}

func (sq *SQS) createLocked(name string, attrs map[string]string) *APIError {
	if name == "" {
		return missingParam("QueueName")
	}
	fifo := attrs["FifoQueue"] == "true"
	if !validQueueName(name, fifo) {
		if strings.HasSuffix(name, ".fifo") || fifo {
			return apiErr("InvalidParameterValue", "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
		}
		return apiErr("InvalidParameterValue", "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	if err := sq.applyAttrs(nil, fifo, attrs, true); err != nil {
		return err
	}
	now := sq.s.clock.Now()
	if q := sq.queues[name]; q != nil {
		current := sq.attributesLocked(q, now)
		for k, v := range attrs {
			if queueReadOnlyAttrs[k] {
				continue
			}
			if cur, ok := current[k]; !ok && v != "" || ok && !sameAttr(k, cur, v) {
				return apiErr("QueueNameExists", "A queue already exists with the same name and a different value for attribute %s", k)
			}
		}
		return nil
	}
	if at, ok := sq.deleted[name]; ok && now.Sub(at) < 60*time.Second {
		return apiErr("QueueDeletedRecently", "You must wait 60 seconds after deleting a queue before you can create another with the same name.")
	}
	q := &queue{
		name: name, fifo: fifo, created: now, changed: now,
		visibility: sqsDefaultVisibility, maxSize: sqsDefaultMaxSize, retention: sqsDefaultRetention,
		other: map[string]string{"SqsManagedSseEnabled": "true"},
		byID:  map[string]*message{}, dedup: map[string]dedupEntry{}, notify: make(chan struct{}),
	}
	if fifo {
		q.other["DeduplicationScope"] = "queue"
		q.other["FifoThroughputLimit"] = "perQueue"
	}
	_ = sq.applyAttrs(q, fifo, attrs, true)
	sq.queues[name] = q
	return nil
}

func sameAttr(name, cur, v string) bool {
	if name == "RedrivePolicy" {
		var a, b struct {
			T string          `json:"deadLetterTargetArn"`
			N json.RawMessage `json:"maxReceiveCount"`
		}
		if json.Unmarshal([]byte(cur), &a) != nil || json.Unmarshal([]byte(v), &b) != nil {
			return cur == v
		}
		return a.T == b.T && strings.Trim(string(a.N), `"`) == strings.Trim(string(b.N), `"`)
	}
	return cur == v
}

func (sq *SQS) getQueueURL(c *call, base string) (any, *APIError) {
	var in struct {
		QueueName              string `json:"QueueName"`
		QueueOwnerAWSAccountID string `json:"QueueOwnerAWSAccountId"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	if in.QueueName == "" {
		return nil, missingParam("QueueName")
	}
	if sq.queues[in.QueueName] == nil || in.QueueOwnerAWSAccountID != "" && in.QueueOwnerAWSAccountID != sq.s.account {
		return nil, apiErr("QueueDoesNotExist", "The specified queue does not exist.")
	}
	return map[string]string{"QueueUrl": sq.queueURL(base, in.QueueName)}, nil
}

// attributesLocked returns every attribute GetQueueAttributes "All" returns.
func (sq *SQS) attributesLocked(q *queue, now time.Time) map[string]string {
	sq.expireLocked(q, now)
	cnt := q.counts(now)
	a := map[string]string{
		"QueueArn":                              q.arn(sq.s),
		"ApproximateNumberOfMessages":           strconv.Itoa(cnt.Visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(cnt.InFlight),
		"ApproximateNumberOfMessagesDelayed":    strconv.Itoa(cnt.Delayed),
		"CreatedTimestamp":                      strconv.FormatInt(q.created.Unix(), 10),
		"LastModifiedTimestamp":                 strconv.FormatInt(q.changed.Unix(), 10),
		"VisibilityTimeout":                     strconv.Itoa(q.visibility),
		"MaximumMessageSize":                    strconv.Itoa(q.maxSize),
		"MessageRetentionPeriod":                strconv.Itoa(q.retention),
		"DelaySeconds":                          strconv.Itoa(q.delay),
		"ReceiveMessageWaitTimeSeconds":         strconv.Itoa(q.wait),
	}
	if q.redrive != nil {
		b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": q.redrive.targetARN, "maxReceiveCount": q.redrive.maxReceiveCount})
		a["RedrivePolicy"] = string(b)
	}
	if q.fifo {
		a["FifoQueue"] = "true"
		a["ContentBasedDeduplication"] = strconv.FormatBool(q.contentDedup)
	}
	for k, v := range q.other {
		a[k] = v
	}
	return a
}

var queueAttrNames = func() map[string]bool {
	m := map[string]bool{"All": true, "RedrivePolicy": true}
	for _, set := range []map[string]bool{queueVerbatimAttrs, queueFIFOAttrs, queueReadOnlyAttrs} {
		for k := range set {
			m[k] = true
		}
	}
	for k := range queueIntAttrs {
		m[k] = true
	}
	return m
}()

func (sq *SQS) getQueueAttributes(c *call) (any, *APIError) {
	var in struct {
		QueueURL       string   `json:"QueueUrl"`
		AttributeNames []string `json:"AttributeNames"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	for _, n := range in.AttributeNames {
		if !queueAttrNames[n] {
			return nil, apiErr("InvalidAttributeName", "Unknown Attribute %s.", n)
		}
	}
	all := sq.attributesLocked(q, sq.s.clock.Now())
	out := map[string]string{}
	for _, n := range in.AttributeNames {
		if n == "All" {
			out = all
			break
		}
		if v, ok := all[n]; ok {
			out[n] = v
		}
	}
	if len(out) == 0 {
		return struct{}{}, nil
	}
	return map[string]any{"Attributes": out}, nil
}

func (sq *SQS) setQueueAttributes(c *call) (any, *APIError) {
	var in struct {
		QueueURL   string            `json:"QueueUrl"`
		Attributes map[string]string `json:"Attributes"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	if err := sq.applyAttrs(nil, q.fifo, in.Attributes, false); err != nil {
		return nil, err
	}
	_ = sq.applyAttrs(q, q.fifo, in.Attributes, false)
	q.changed = sq.s.clock.Now()
	q.wake()
	return struct{}{}, nil
}

func (sq *SQS) deleteQueue(c *call) (any, *APIError) {
	var in struct {
		QueueURL string `json:"QueueUrl"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	q.gone = true
	q.wake()
	delete(sq.queues, q.name)
	sq.deleted[q.name] = sq.s.clock.Now()
	return struct{}{}, nil
}

func (sq *SQS) listQueues(c *call, base string) (any, *APIError) {
	var in struct {
		QueueNamePrefix string `json:"QueueNamePrefix"`
		MaxResults      *int32 `json:"MaxResults"`
		NextToken       string `json:"NextToken"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1000) {
		return nil, invalidValue("MaxResults", *in.MaxResults, "MaxResults must be an integer between 1 and 1000.")
	}
	sq.mu.Lock()
	names := make([]string, 0, len(sq.queues))
	for n := range sq.queues {
		if strings.HasPrefix(n, in.QueueNamePrefix) {
			names = append(names, n)
		}
	}
	sq.mu.Unlock()
	sort.Strings(names)
	start := 0
	if in.NextToken != "" {
		start = sort.SearchStrings(names, in.NextToken)
	}
	limit := 1000
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	out := map[string]any{}
	var urls []string
	for i := start; i < len(names) && len(urls) < limit; i++ {
		urls = append(urls, sq.queueURL(base, names[i]))
		if len(urls) == limit && i+1 < len(names) && in.MaxResults != nil {
			out["NextToken"] = names[i+1]
		}
	}
	if len(urls) > 0 {
		out["QueueUrls"] = urls
	}
	return out, nil
}

func (sq *SQS) purgeQueue(c *call) (any, *APIError) {
	var in struct {
		QueueURL string `json:"QueueUrl"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	now := sq.s.clock.Now()
	if !q.purged.IsZero() && now.Sub(q.purged) < sqsPurgeInterval {
		return nil, apiErr("PurgeQueueInProgress", "Only one PurgeQueue operation on %s is allowed every 60 seconds.", q.name)
	}
	q.purged = now
	q.msgs = nil
	q.byID = map[string]*message{}
	q.wake()
	return struct{}{}, nil
}

// ---- sending ----

// validText reports whether s holds only the characters SQS accepts in a
// body or string attribute: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to
// #xFFFD | #x10000 to #x10FFFF.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

func validateAttrs(in map[string]wireAttr, system bool) (map[string]Attribute, int, *APIError) {
	kind := "(user)"
	if system {
		kind = "system"
	}
	if len(in) > sqsMaxAttributes && !system {
		return nil, 0, apiErr("InvalidParameterValue", "Number of message attributes [%d] exceeds the allowed maximum [%d].", len(in), sqsMaxAttributes)
	}
	out := make(map[string]Attribute, len(in))
	size := 0
	for name, a := range in {
		lower := strings.ToLower(name)
		if system {
			if name != "AWSTraceHeader" {
				return nil, 0, apiErr("InvalidParameterValue", "Message system attribute name '%s' is invalid.", name)
			}
		} else if !attrNameRE.MatchString(name) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") ||
			strings.Contains(name, "..") || strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
			return nil, 0, apiErr("InvalidParameterValue", "Message (user) attribute name '%s' is invalid. Attribute names can contain alphanumeric characters, underscores, hyphens and periods; must not start or end with a period, contain consecutive periods, or start with AWS. or Amazon.", name)
		}
		bt := baseType(a.DataType)
		if a.DataType == "" || len(a.DataType) > 256 || (bt != "String" && bt != "Number" && bt != "Binary") || (system && a.DataType != "String") {
			return nil, 0, apiErr("InvalidParameterValue", "The type of message %s attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", kind, name)
		}
		if len(a.StringListValues) > 0 || len(a.BinaryListValues) > 0 {
			return nil, 0, apiErr("InvalidParameterValue", "Message %s attribute '%s': list values are not supported.", kind, name)
		}
		v := Attribute{DataType: a.DataType}
		if bt == "Binary" {
			if len(a.BinaryValue) == 0 {
				return nil, 0, apiErr("InvalidParameterValue", "Message %s attribute '%s' must contain a non-empty value of type 'Binary'.", kind, name)
			}
			v.BinaryValue = a.BinaryValue
			size += len(a.BinaryValue)
		} else {
			if a.StringValue == nil || *a.StringValue == "" {
				return nil, 0, apiErr("InvalidParameterValue", "Message %s attribute '%s' must contain a non-empty value of type '%s'.", kind, name, bt)
			}
			if !validText(*a.StringValue) {
				return nil, 0, apiErr("InvalidParameterValue", "Message %s attribute '%s' contains invalid characters.", kind, name)
			}
			if bt == "Number" {
				if _, ok := new(big.Float).SetString(*a.StringValue); !ok {
					return nil, 0, apiErr("InvalidParameterValue", "Can't cast the value of message %s attribute '%s' to a number.", kind, name)
				}
			}
			v.StringValue = *a.StringValue
			size += len(v.StringValue)
		}
		size += len(name) + len(a.DataType)
		out[name] = v
	}
	return out, size, nil
}

// sendLocked validates and enqueues one message. It returns the message's
// size as SQS counts it (body and attributes) for batch limits.
func (sq *SQS) sendLocked(q *queue, in *sendInput, now time.Time) (*sendOutput, *APIError) {
	if in.MessageBody == nil || *in.MessageBody == "" {
		return nil, missingParam("MessageBody")
	}
	body := *in.MessageBody
	if !validText(body) {
		return nil, apiErr("InvalidMessageContents", "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
	}
	attrs, attrSize, err := validateAttrs(in.MessageAttributes, false)
	if err != nil {
		return nil, err
	}
	sys, _, err := validateAttrs(in.MessageSystemAttributes, true)
	if err != nil {
		return nil, err
	}
	if size := len(body) + attrSize; size > q.maxSize {
		return nil, apiErr("InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", q.maxSize)
	}
	delay := q.delay
	if in.DelaySeconds != nil {
		d := *in.DelaySeconds
		if q.fifo {
			return nil, invalidValue("DelaySeconds", d, "The request include parameter that is not valid for this queue type.")
		}
		if d < 0 || d > 900 {
			return nil, invalidValue("DelaySeconds", d, "DelaySeconds must be >= 0 and <= 900.")
		}
		delay = int(d)
	}
	group, dedup := deref(in.MessageGroupID), deref(in.MessageDeduplicationID)
	if in.MessageGroupID != nil && !groupIDRE.MatchString(group) {
		return nil, invalidValue("MessageGroupId", group, "MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.")
	}
	var dedupKey string
	if q.fifo {
		if in.MessageGroupID == nil {
			return nil, missingParam("MessageGroupId")
		}
		switch {
		case in.MessageDeduplicationID != nil:
			if !groupIDRE.MatchString(dedup) {
				return nil, invalidValue("MessageDeduplicationId", dedup, "MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length.")
			}
			dedupKey = dedup
		case q.contentDedup:
			sum := sha256.Sum256([]byte(body))
			dedupKey = hex.EncodeToString(sum[:])
			dedup = dedupKey
		default:
			return nil, apiErr("InvalidParameterValue", "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
		}
		if q.other["DeduplicationScope"] == "messageGroup" {
			dedupKey = group + "\x00" + dedupKey
		}
	} else if in.MessageDeduplicationID != nil {
		return nil, invalidValue("MessageDeduplicationId", dedup, "The request include parameter that is not valid for this queue type.")
	}

	out := &sendOutput{
		MD5OfMessageBody:             md5Hex(body),
		MD5OfMessageAttributes:       md5OfAttributes(attrs),
		MD5OfMessageSystemAttributes: md5OfAttributes(sys),
	}
	if q.fifo {
		for len(q.dedupQ) > 0 {
			k := q.dedupQ[0]
			if e, ok := q.dedup[k]; ok && now.Before(e.expires) {
				break
			}
			delete(q.dedup, k)
			q.dedupQ = q.dedupQ[1:]
		}
		if e, ok := q.dedup[dedupKey]; ok {
			// Accepted, not delivered again, answered with the original ids.
			out.MessageID, out.SequenceNumber = e.id, e.seq
			return out, nil
		}
	}
	m := &message{
		id: newID(), body: body, attrs: attrs, sysAttrs: sys,
		md5Body: out.MD5OfMessageBody, md5Attrs: out.MD5OfMessageAttributes, md5Sys: out.MD5OfMessageSystemAttributes,
		sentAt: now, visibleAt: now.Add(time.Duration(delay) * time.Second),
		groupID: group, dedupID: dedup,
	}
	if q.fifo {
		q.seq++
		// 128-bit, increasing, non-consecutive, as SQS's are.
		n := new(big.Int).Lsh(big.NewInt(1), 64)
		n.Add(n, new(big.Int).SetUint64(q.seq*1000+uint64(now.UnixMilli()%1000)))
		m.seq = n.String()
		q.dedup[dedupKey] = dedupEntry{id: m.id, seq: m.seq, expires: now.Add(sqsDedupWindow)}
		q.dedupQ = append(q.dedupQ, dedupKey)
	}
	out.MessageID, out.SequenceNumber = m.id, m.seq
	q.msgs = append(q.msgs, m)
	q.byID[m.id] = m
	q.wake()
	return out, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (sq *SQS) sendMessage(c *call) (any, *APIError) {
	var in sendInput
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	return sq.sendLocked(q, &in, sq.s.clock.Now())
}

// checkBatch applies the batch-level rules shared by the three batch calls.
func checkBatch(ids []string, entryName string) *APIError {
	if len(ids) == 0 {
		return apiErr("EmptyBatchRequest", "There should be at least one %s in the request.", entryName)
	}
	if len(ids) > sqsMaxBatch {
		return apiErr("TooManyEntriesInBatchRequest", "Maximum number of entries per request are %d. You have sent %d.", sqsMaxBatch, len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !batchIDRE.MatchString(id) {
			return apiErr("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[id] {
			return apiErr("BatchEntryIdsNotDistinct", "Id %s repeated.", id)
		}
		seen[id] = true
	}
	return nil
}

func entryFailure(id string, e *APIError) batchError {
	return batchError{ID: id, SenderFault: defaultStatus("sqs", e.Code) < 500, Code: e.Code, Message: e.Message}
}

func injectedFailure(id string, f *Fault) batchError {
	code := f.Code
	if code == "" {
		code = "InternalError"
	}
	st := f.Status
	if st == 0 {
		st = defaultStatus("sqs", code)
	}
	return batchError{ID: id, SenderFault: st < 500, Code: code, Message: f.Message}
}

func (sq *SQS) sendMessageBatch(c *call) (any, *APIError) {
	var in struct {
		QueueURL string      `json:"QueueUrl"`
		Entries  []sendInput `json:"Entries"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	total := 0
	for i, e := range in.Entries {
		ids[i] = e.ID
		total += len(deref(e.MessageBody))
		for n, a := range e.MessageAttributes {
			total += len(n) + len(a.DataType) + len(deref(a.StringValue)) + len(a.BinaryValue)
		}
	}
	if err := checkBatch(ids, "SendMessageBatchRequestEntry"); err != nil {
		return nil, err
	}
	if total > q.maxSize {
		return nil, apiErr("BatchRequestTooLong", "Batch requests cannot be longer than %d bytes. You have sent %d bytes.", q.maxSize, total)
	}
	now := sq.s.clock.Now()
	out := struct {
		Successful []sendOutput `json:"Successful"`
		Failed     []batchError `json:"Failed"`
	}{Successful: []sendOutput{}, Failed: []batchError{}}
	for i := range in.Entries {
		e := &in.Entries[i]
		if c.entryFault != nil && c.entryFault.failsEntry(e.ID) {
			out.Failed = append(out.Failed, injectedFailure(e.ID, c.entryFault))
			continue
		}
		res, err := sq.sendLocked(q, e, now)
		if err != nil {
			out.Failed = append(out.Failed, entryFailure(e.ID, err))
			continue
		}
		res.ID = e.ID
		out.Successful = append(out.Successful, *res)
	}
	return out, nil
}

// ---- receiving ----

type receiveInput struct {
	QueueURL                    string   `json:"QueueUrl"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	MessageAttributeNames       []string `json:"MessageAttributeNames"`
	MaxNumberOfMessages         *int32   `json:"MaxNumberOfMessages"`
	VisibilityTimeout           *int32   `json:"VisibilityTimeout"`
	WaitTimeSeconds             *int32   `json:"WaitTimeSeconds"`
	ReceiveRequestAttemptID     *string  `json:"ReceiveRequestAttemptId"`
}

func (sq *SQS) receiveMessage(c *call) (any, *APIError) {
	var in receiveInput
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	limit := 1
	if in.MaxNumberOfMessages != nil {
		if n := *in.MaxNumberOfMessages; n < 1 || n > 10 {
			return nil, invalidValue("MaxNumberOfMessages", n, "Must be between 1 and 10, if provided.")
		}
		limit = int(*in.MaxNumberOfMessages)
	}
	if in.VisibilityTimeout != nil {
		if n := *in.VisibilityTimeout; n < 0 || n > sqsMaxVisibility {
			return nil, invalidValue("VisibilityTimeout", n, "Must be >= 0 and <= 43200, if provided.")
		}
	}
	if in.WaitTimeSeconds != nil {
		if n := *in.WaitTimeSeconds; n < 0 || n > 20 {
			return nil, invalidValue("WaitTimeSeconds", n, "Must be >= 0 and <= 20, if provided.")
		}
	}
	for _, n := range in.MessageAttributeNames {
		if n == "" || len(n) > 256 {
			return nil, invalidValue("MessageAttributeNames", n, "Attribute names must be 1 to 256 characters.")
		}
	}
	sysNames := map[string]bool{}
	for _, n := range append(in.AttributeNames, in.MessageSystemAttributeNames...) {
		sysNames[n] = true
	}

	sq.mu.Lock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		sq.mu.Unlock()
		return nil, err
	}
	wait := q.wait
	if in.WaitTimeSeconds != nil {
		wait = int(*in.WaitTimeSeconds)
	}
	start := sq.s.clock.Now()
	deadline := start.Add(time.Duration(wait) * time.Second)
	for {
		now := sq.s.clock.Now()
		vis := q.visibility
		if in.VisibilityTimeout != nil {
			vis = int(*in.VisibilityTimeout)
		}
		got := sq.takeLocked(q, limit, time.Duration(vis)*time.Second, now)
		if len(got) > 0 || q.gone || !now.Before(deadline) {
			out := make([]wireMessage, 0, len(got))
			for _, m := range got {
				out = append(out, sq.render(q, m, sysNames, in.MessageAttributeNames))
				if p := sq.s.probe; p != nil {
					p.receive(m.id, now)
				}
			}
			sq.mu.Unlock()
			if len(out) == 0 {
				return struct{}{}, nil
			}
			return map[string]any{"Messages": out}, nil
		}
		// Sleep until something changes, a hidden message comes due or the
		// wait ends.
		next := deadline
		for _, m := range q.msgs {
			if m.visibleAt.After(now) && m.visibleAt.Before(next) {
				next = m.visibleAt
			}
		}
		notify := q.notify
		q.waiting++
		sq.mu.Unlock()
		timer, stop := sq.s.clock.NewTimer(next.Sub(now))
		select {
		case <-notify:
		case <-timer:
		case <-c.ctx.Done():
		}
		stop()
		sq.mu.Lock()
		q.waiting--
		if c.ctx.Err() != nil {
			sq.mu.Unlock()
			return struct{}{}, nil // nobody is listening; nothing was taken
		}
	}
}

// takeLocked hands out up to limit visible messages, moving those over their
// receive limit to the dead-letter queue first.
func (sq *SQS) takeLocked(q *queue, limit int, vis time.Duration, now time.Time) []*message {
	sq.expireLocked(q, now)
	var got []*message
	deliver := func(m *message) {
		m.receiveCount++
		if m.firstReceive.IsZero() {
			m.firstReceive = now
		}
		m.receivedAt = now
		m.visibleAt = now.Add(vis)
		m.handle = encodeHandle(q.name, m.id, m.receiveCount)
		got = append(got, m)
	}
	if !q.fifo {
		for i := 0; i < len(q.msgs) && len(got) < limit; i++ {
			m := q.msgs[i]
			if m.visibleAt.After(now) {
				continue
			}
			if sq.redriveLocked(q, m, now) {
				i-- // m left q.msgs
				continue
			}
			deliver(m)
		}
		return got
	}
	// FIFO: a group with a message in flight yields nothing; otherwise its
	// messages come in order, as many from one group as possible, and a
	// message not yet visible (delayed) holds back the rest of its group.
	blocked := map[string]bool{}
	var groups []string
	seen := map[string]bool{}
	for _, m := range q.msgs {
		if m.receiveCount > 0 && m.visibleAt.After(now) {
			blocked[m.groupID] = true
		}
		if !seen[m.groupID] {
			seen[m.groupID] = true
			groups = append(groups, m.groupID)
		}
	}
	for _, g := range groups {
		if blocked[g] {
			continue
		}
		for i := 0; i < len(q.msgs); i++ {
			m := q.msgs[i]
			if len(got) == limit {
				return got
			}
			if m.groupID != g {
				continue
			}
			if m.visibleAt.After(now) {
				break
			}
			if sq.redriveLocked(q, m, now) {
				i--
				continue
			}
			deliver(m)
		}
	}
	return got
}

// redriveLocked moves m to q's dead-letter queue if receiving it now would
// take its receive count past maxReceiveCount, and reports whether it did.
func (sq *SQS) redriveLocked(q *queue, m *message, now time.Time) bool {
	if q.redrive == nil || m.receiveCount < q.redrive.maxReceiveCount {
		return false
	}
	name := q.redrive.targetARN[strings.LastIndexByte(q.redrive.targetARN, ':')+1:]
	dlq := sq.queues[name]
	if dlq == nil {
		return false // the dead-letter queue was deleted; AWS keeps the message too
	}
	q.remove(m)
	m.visibleAt = now
	m.handle = ""
	m.dlqSource = q.arn(sq.s)
	if dlq.fifo {
		dlq.seq++
		n := new(big.Int).Lsh(big.NewInt(1), 64)
		n.Add(n, new(big.Int).SetUint64(dlq.seq*1000))
		m.seq = n.String()
	}
	dlq.msgs = append(dlq.msgs, m)
	dlq.byID[m.id] = m
	dlq.wake()
	return true
}

func (q *queue) remove(m *message) {
	delete(q.byID, m.id)
	for i, x := range q.msgs {
		if x == m {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			return
		}
	}
}

// expireLocked drops messages older than the retention period, counted from
// the original enqueue time.
func (sq *SQS) expireLocked(q *queue, now time.Time) {
	if now.Sub(q.expired) < time.Second && !now.Before(q.expired) {
		return // retention is in whole seconds; scanning once a second is enough
	}
	q.expired = now
	limit := time.Duration(q.retention) * time.Second
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		if now.Sub(m.sentAt) >= limit {
			delete(q.byID, m.id)
			continue
		}
		kept = append(kept, m)
	}
	for i := len(kept); i < len(q.msgs); i++ {
		q.msgs[i] = nil
	}
	q.msgs = kept
}

var systemAttrNames = []string{
	"SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
	"SequenceNumber", "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader", "DeadLetterQueueSourceArn",
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func (sq *SQS) render(q *queue, m *message, sysNames map[string]bool, attrNames []string) wireMessage {
	w := wireMessage{MessageID: m.id, ReceiptHandle: m.handle, MD5OfBody: m.md5Body, Body: m.body}
	all := sysNames["All"]
	attrs := map[string]string{}
	for _, n := range systemAttrNames {
		if !all && !sysNames[n] {
			continue
		}
		var v string
		switch n {
		case "SenderId":
			v = AccessKeyID
		case "SentTimestamp":
			v = millis(m.sentAt)
		case "ApproximateReceiveCount":
			v = strconv.Itoa(m.receiveCount)
		case "ApproximateFirstReceiveTimestamp":
			v = millis(m.firstReceive)
		case "SequenceNumber":
			v = m.seq
		case "MessageDeduplicationId":
			v = m.dedupID
		case "MessageGroupId":
			v = m.groupID
		case "AWSTraceHeader":
			v = m.sysAttrs["AWSTraceHeader"].StringValue
		case "DeadLetterQueueSourceArn":
			v = m.dlqSource
		}
		if v != "" {
			attrs[n] = v
		}
	}
	if len(attrs) > 0 {
		w.Attributes = attrs
	}
	sel := map[string]Attribute{}
	for name, a := range m.attrs {
		for _, want := range attrNames {
			prefix, isPrefix := strings.CutSuffix(want, ".*")
			if want == "All" || want == ".*" || want == name || isPrefix && strings.HasPrefix(name, prefix+".") {
				sel[name] = a
				break
			}
		}
	}
	if len(sel) > 0 {
		w.MessageAttributes = toWireAttrs(sel)
		// The digest covers the attributes returned, as the SDKs that check
		// it on receive compute it.
		w.MD5OfMessageAttributes = md5OfAttributes(sel)
	}
	return w
}

// ---- receipt handles ----

func encodeHandle(queue, id string, gen int) string {
	raw := "awstest1|" + queue + "|" + id + "|" + strconv.Itoa(gen) + "|" + randomHex(12)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

type handleRef struct {
	queue, id string
	gen       int
}

func decodeHandle(h string) (handleRef, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return handleRef{}, false
	}
	p := strings.Split(string(raw), "|")
	if len(p) != 5 || p[0] != "awstest1" {
		return handleRef{}, false
	}
	gen, err := strconv.Atoi(p[3])
	if err != nil {
		return handleRef{}, false
	}
	return handleRef{queue: p[1], id: p[2], gen: gen}, true
}

func invalidHandle(h string) *APIError {
	return apiErr("ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", h)
}

func expiredHandle(h string) *APIError {
	return invalidValue("ReceiptHandle", h, "The receipt handle has expired.")
}

func (sq *SQS) deleteLocked(q *queue, handle string) *APIError {
	if handle == "" {
		return missingParam("ReceiptHandle")
	}
	ref, ok := decodeHandle(handle)
	if !ok || ref.queue != q.name {
		return invalidHandle(handle)
	}
	m := q.byID[ref.id]
	if m == nil || m.receiveCount != ref.gen || m.handle == "" {
		return nil // already gone, or a stale handle: succeeds, deletes nothing
	}
	q.remove(m)
	q.wake() // a FIFO group may be unlocked
	return nil
}

func (sq *SQS) changeLocked(q *queue, handle string, timeout int32, now time.Time) *APIError {
	if handle == "" {
		return missingParam("ReceiptHandle")
	}
	ref, ok := decodeHandle(handle)
	if !ok || ref.queue != q.name {
		return invalidHandle(handle)
	}
	if timeout < 0 || timeout > sqsMaxVisibility {
		return invalidValue("VisibilityTimeout", timeout, "Must be between 0 and 43200, if provided.")
	}
	m := q.byID[ref.id]
	if m == nil || m.receiveCount != ref.gen || m.handle == "" {
		return expiredHandle(handle)
	}
	if !m.visibleAt.After(now) {
		return apiErr("MessageNotInflight", "Message does not exist or is not available for visibility timeout change.")
	}
	until := now.Add(time.Duration(timeout) * time.Second)
	if until.Sub(m.receivedAt) > sqsMaxVisibility*time.Second {
		return invalidValue("VisibilityTimeout", timeout, "Total VisibilityTimeout for the message is beyond the limit [43200 seconds].")
	}
	m.visibleAt = until
	q.wake()
	return nil
}

func (sq *SQS) deleteMessage(c *call) (any, *APIError) {
	var in struct {
		QueueURL      string `json:"QueueUrl"`
		ReceiptHandle string `json:"ReceiptHandle"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	if err := sq.deleteLocked(q, in.ReceiptHandle); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (sq *SQS) changeVisibility(c *call) (any, *APIError) {
	var in struct {
		QueueURL          string `json:"QueueUrl"`
		ReceiptHandle     string `json:"ReceiptHandle"`
		VisibilityTimeout *int32 `json:"VisibilityTimeout"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	if in.VisibilityTimeout == nil {
		return nil, missingParam("VisibilityTimeout")
	}
	if err := sq.changeLocked(q, in.ReceiptHandle, *in.VisibilityTimeout, sq.s.clock.Now()); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

type handleEntry struct {
	ID                string `json:"Id"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout *int32 `json:"VisibilityTimeout"`
}

type idOnly struct {
	ID string `json:"Id"`
}

func (sq *SQS) handleBatch(c *call, entryName string, apply func(q *queue, e handleEntry, now time.Time) *APIError) (any, *APIError) {
	var in struct {
		QueueURL string        `json:"QueueUrl"`
		Entries  []handleEntry `json:"Entries"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueFromURL(in.QueueURL)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.ID
	}
	if err := checkBatch(ids, entryName); err != nil {
		return nil, err
	}
	now := sq.s.clock.Now()
	out := struct {
		Successful []idOnly     `json:"Successful"`
		Failed     []batchError `json:"Failed"`
	}{Successful: []idOnly{}, Failed: []batchError{}}
	for _, e := range in.Entries {
		if c.entryFault != nil && c.entryFault.failsEntry(e.ID) {
			out.Failed = append(out.Failed, injectedFailure(e.ID, c.entryFault))
			continue
		}
		if err := apply(q, e, now); err != nil {
			out.Failed = append(out.Failed, entryFailure(e.ID, err))
			continue
		}
		out.Successful = append(out.Successful, idOnly{ID: e.ID})
	}
	return out, nil
}

func (sq *SQS) deleteMessageBatch(c *call) (any, *APIError) {
	return sq.handleBatch(c, "DeleteMessageBatchRequestEntry", func(q *queue, e handleEntry, _ time.Time) *APIError {
		return sq.deleteLocked(q, e.ReceiptHandle)
	})
}

func (sq *SQS) changeVisibilityBatch(c *call) (any, *APIError) {
	return sq.handleBatch(c, "ChangeMessageVisibilityBatchRequestEntry", func(q *queue, e handleEntry, now time.Time) *APIError {
		if e.VisibilityTimeout == nil {
			return missingParam("VisibilityTimeout")
		}
		return sq.changeLocked(q, e.ReceiptHandle, *e.VisibilityTimeout, now)
	})
}

// ---- test helpers ----

// QueueCounts are a queue's message counts, as GetQueueAttributes reports
// them: Visible is ApproximateNumberOfMessages, InFlight
// ApproximateNumberOfMessagesNotVisible, Delayed
// ApproximateNumberOfMessagesDelayed (exact here).
type QueueCounts struct {
	Visible  int `json:"visible"`
	InFlight int `json:"in_flight"`
	Delayed  int `json:"delayed"`
}

func (q *queue) counts(now time.Time) QueueCounts {
	var c QueueCounts
	for _, m := range q.msgs {
		switch m.state(now) {
		case MessageVisible:
			c.Visible++
		case MessageInFlight:
			c.InFlight++
		default:
			c.Delayed++
		}
	}
	return c
}

// MessageState is where a message stands.
type MessageState string

// Message states.
const (
	MessageVisible  MessageState = "visible"
	MessageInFlight MessageState = "in_flight"
	MessageDelayed  MessageState = "delayed"
)

func (m *message) state(now time.Time) MessageState {
	switch {
	case !m.visibleAt.After(now):
		return MessageVisible
	case m.receiveCount > 0 && m.handle != "":
		return MessageInFlight
	default:
		return MessageDelayed
	}
}

// MessageInfo is a snapshot of one message, for assertions.
type MessageInfo struct {
	ID         string
	Body       string
	Attributes map[string]Attribute
	// TraceHeader is the AWSTraceHeader system attribute it was sent with.
	TraceHeader     string
	State           MessageState
	ReceiveCount    int
	SentAt          time.Time
	FirstReceivedAt time.Time // zero before the first receive
	VisibleAt       time.Time
	GroupID         string
	DeduplicationID string
	SequenceNumber  string
	ReceiptHandle   string // the latest, "" before the first receive (or after a move to a DLQ)
	// DeadLetterSourceARN is the ARN of the queue the message was moved from.
	DeadLetterSourceARN string
}

// Message is what Send enqueues.
type Message struct {
	Body            string
	Attributes      map[string]Attribute
	GroupID         string
	DeduplicationID string
	// Delay overrides the queue's DelaySeconds (whole seconds; standard
	// queues only); nil keeps the queue's.
	Delay *time.Duration
	// TraceHeader is the AWSTraceHeader system attribute.
	TraceHeader string
}

// CreateQueue creates a queue as CreateQueue does, with the same validation
// and attributes (e.g. "VisibilityTimeout": "30", "FifoQueue": "true",
// "RedrivePolicy": `{"deadLetterTargetArn":"...","maxReceiveCount":3}`),
// and returns its URL. Creating an existing queue with the same attributes
// returns its URL. Start the server first so the URL has its address.
func (sq *SQS) CreateQueue(name string, attrs map[string]string) (string, error) {
	sq.mu.Lock()
	defer sq.mu.Unlock()
	if err := sq.createLocked(name, attrs); err != nil {
		return "", err
	}
	return sq.queueURL(sq.s.URL(), name), nil
}

// QueueURL returns the URL of queue name (whether or not it exists).
func (sq *SQS) QueueURL(name string) string { return sq.queueURL(sq.s.URL(), name) }

// QueueARN returns the ARN of queue name (whether or not it exists).
func (sq *SQS) QueueARN(name string) string {
	return "arn:aws:sqs:" + sq.s.region + ":" + sq.s.account + ":" + name
}

func (sq *SQS) queueNamed(name string) (*queue, error) {
	q := sq.queues[name]
	if q == nil {
		return nil, apiErr("QueueDoesNotExist", "The specified queue does not exist.")
	}
	return q, nil
}

// Send enqueues m on queue name as SendMessage would, and returns its
// message id.
func (sq *SQS) Send(name string, m Message) (string, error) {
	in := &sendInput{MessageBody: &m.Body, MessageAttributes: toWireAttrs(m.Attributes)}
	if m.GroupID != "" {
		in.MessageGroupID = &m.GroupID
	}
	if m.DeduplicationID != "" {
		in.MessageDeduplicationID = &m.DeduplicationID
	}
	if m.Delay != nil {
		d := int32(*m.Delay / time.Second)
		in.DelaySeconds = &d
	}
	if m.TraceHeader != "" {
		in.MessageSystemAttributes = map[string]wireAttr{"AWSTraceHeader": {DataType: "String", StringValue: &m.TraceHeader}}
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueNamed(name)
	if err != nil {
		return "", err
	}
	out, aerr := sq.sendLocked(q, in, sq.s.clock.Now())
	if aerr != nil {
		return "", aerr
	}
	return out.MessageID, nil
}

// Messages returns every message on queue name, in queue order, without
// changing anything (a peek).
func (sq *SQS) Messages(name string) ([]MessageInfo, error) {
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueNamed(name)
	if err != nil {
		return nil, err
	}
	now := sq.s.clock.Now()
	sq.expireLocked(q, now)
	out := make([]MessageInfo, 0, len(q.msgs))
	for _, m := range q.msgs {
		attrs := make(map[string]Attribute, len(m.attrs))
		for k, v := range m.attrs {
			attrs[k] = v
		}
		out = append(out, MessageInfo{
			ID: m.id, Body: m.body, Attributes: attrs, State: m.state(now), ReceiveCount: m.receiveCount,
			SentAt: m.sentAt, FirstReceivedAt: m.firstReceive, VisibleAt: m.visibleAt,
			GroupID: m.groupID, DeduplicationID: m.dedupID, SequenceNumber: m.seq,
			ReceiptHandle: m.handle, DeadLetterSourceARN: m.dlqSource, TraceHeader: m.sysAttrs["AWSTraceHeader"].StringValue,
		})
	}
	return out, nil
}

// DeadLetters returns the messages on the dead-letter queue that queue
// name's RedrivePolicy names.
func (sq *SQS) DeadLetters(name string) ([]MessageInfo, error) {
	sq.mu.Lock()
	q, err := sq.queueNamed(name)
	if err != nil {
		sq.mu.Unlock()
		return nil, err
	}
	if q.redrive == nil {
		sq.mu.Unlock()
		return nil, fmt.Errorf("awstest: queue %s has no RedrivePolicy", name)
	}
	dlq := q.redrive.targetARN[strings.LastIndexByte(q.redrive.targetARN, ':')+1:]
	sq.mu.Unlock()
	return sq.Messages(dlq)
}

// Counts returns queue name's message counts.
func (sq *SQS) Counts(name string) (QueueCounts, error) {
	sq.mu.Lock()
	defer sq.mu.Unlock()
	q, err := sq.queueNamed(name)
	if err != nil {
		return QueueCounts{}, err
	}
	now := sq.s.clock.Now()
	sq.expireLocked(q, now)
	return q.counts(now), nil
}

// Waiting returns how many ReceiveMessage calls are blocked in a long poll
// on queue name.
func (sq *SQS) Waiting(name string) int {
	sq.mu.Lock()
	defer sq.mu.Unlock()
	if q := sq.queues[name]; q != nil {
		return q.waiting
	}
	return 0
}

func (sq *SQS) allCounts() map[string]QueueCounts {
	sq.mu.Lock()
	defer sq.mu.Unlock()
	now := sq.s.clock.Now()
	out := make(map[string]QueueCounts, len(sq.queues))
	for n, q := range sq.queues {
		out[n] = q.counts(now)
	}
	return out
}
