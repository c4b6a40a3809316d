package sqs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchyard-dev/switchyard/router"
)

// DeadLetterOf reads a dead letter back from an SQS message, as Deliver
// writes one (see Attributes): the record from the switchyard-dead-letter
// attribute, or from the switchyard-* attributes; the original message's
// attributes, with their types, from the others (also in the record's
// Attributes, String and Number ones as text); and the original body. A
// message with neither but whose body is a dead letter document
// (router.DeadLetterDocument: written to a target without attributes,
// then moved here) is read from its body. The error wraps
// router.ErrNotDeadLetter, naming what is wrong.
func DeadLetterOf(body string, attrs map[string]types.MessageAttributeValue) (*router.DeadLetter, map[string]router.Attribute, []byte, error) {
	orig := map[string]router.Attribute{}
	text := map[string]string{}
	for k, v := range attrs {
		if strings.HasPrefix(k, "switchyard-") {
			continue
		}
		a := router.Attribute{DataType: aws.ToString(v.DataType), StringValue: aws.ToString(v.StringValue), BinaryValue: v.BinaryValue}
		orig[k] = a
		if !a.IsBinary() {
			text[k] = a.StringValue
		}
	}
	if len(text) == 0 {
		text = nil
	}
	var dl *router.DeadLetter
	switch rec, ok := attrs["switchyard-dead-letter"]; {
	case ok:
		dl = new(router.DeadLetter)
		if err := json.Unmarshal([]byte(aws.ToString(rec.StringValue)), dl); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: attribute switchyard-dead-letter: %v", router.ErrNotDeadLetter, err)
		}
	case attrs["switchyard-attempts"].StringValue != nil:
		var err error
		if dl, err = recordOf(attrs); err != nil {
			return nil, nil, nil, err
		}
	default:
		dl, b, err := router.ParseDeadLetterDocument([]byte(body))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: no switchyard-dead-letter or switchyard-attempts attribute, and the body is no dead letter document", router.ErrNotDeadLetter)
		}
		return dl, (&router.Message{Attributes: dl.Attributes}).MessageAttributes(), b, nil
	}
	dl.Attributes = text
	if err := dl.Check(); err != nil {
		return nil, nil, nil, err
	}
	if len(orig) == 0 {
		orig = nil
	}
	return dl, orig, []byte(body), nil
}

// recordOf reads the record from the nine switchyard-* attributes.
func recordOf(attrs map[string]types.MessageAttributeValue) (*router.DeadLetter, error) {
	get := func(k string) string { return aws.ToString(attrs["switchyard-"+k].StringValue) }
	dl := &router.DeadLetter{
		Source: get("source"), MessageID: get("message-id"), Rule: get("rule"), Target: get("target"),
		FirstError: get("first-error"), LastError: get("last-error"),
	}
	n, err := strconv.Atoi(get("attempts"))
	if err != nil {
		return nil, fmt.Errorf("%w: attribute switchyard-attempts %q is not a number", router.ErrNotDeadLetter, get("attempts"))
	}
	dl.Attempts = n
	for k, dst := range map[string]*time.Time{"first-attempt": &dl.FirstAttempt, "last-attempt": &dl.LastAttempt} {
		v := get(k)
		if v == "" {
			continue
		}
		if *dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, fmt.Errorf("%w: attribute switchyard-%s %q is not a time (RFC 3339)", router.ErrNotDeadLetter, k, v)
		}
	}
	return dl, nil
}
