// Package sqsmd5 computes the digests SQS gives a message: MD5OfBody and
// MD5OfMessageAttributes, which Lambda's SQS event-source mapping passes on
// in each record and which switchyard's batch mode writes the same way.
package sqsmd5

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
)

// Body is the MD5 digest of body in lower-case hex.
func Body(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// Attribute is one message attribute: its DataType (String, Number or
// Binary, with an optional custom label after a dot) and its value, text
// for String and Number, bytes for Binary.
type Attribute struct {
	DataType string
	Value    []byte
}

// Attributes digests message attributes the way the SQS Developer Guide
// specifies ("Calculating the MD5 message digest for message attributes"):
// attributes sorted by name; for each, the name and the data type (custom
// label included) as a 4-byte big-endian length and their UTF-8 bytes; one
// transport byte, 1 for String and Number, 2 for Binary; then the value as
// a 4-byte length and its bytes. No attributes: "".
func Attributes(attrs map[string]Attribute) string {
	if len(attrs) == 0 {
		return ""
	}
	h := md5.New()
	var l [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, n := range slices.Sorted(maps.Keys(attrs)) {
		a := attrs[n]
		put([]byte(n))
		put([]byte(a.DataType))
		if IsBinary(a.DataType) {
			h.Write([]byte{2})
		} else {
			h.Write([]byte{1})
		}
		put(a.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// IsBinary reports whether dataType is Binary, with or without a label.
func IsBinary(dataType string) bool {
	t, _, _ := strings.Cut(dataType, ".")
	return t == "Binary"
}
