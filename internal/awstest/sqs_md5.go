package awstest

import (
	"strings"

	"github.com/switchyard-dev/switchyard/internal/sqsmd5"
)

// md5Hex is the MD5 digest of s in lower-case hex, as MD5OfBody and
// MD5OfMessageBody carry it (the SDK recomputes and compares it).
func md5Hex(s string) string { return sqsmd5.Body([]byte(s)) }

// md5OfAttributes digests message (or message system) attributes as SQS
// does (sqsmd5.Attributes). No attributes: "".
func md5OfAttributes(attrs map[string]Attribute) string {
	in := make(map[string]sqsmd5.Attribute, len(attrs))
	for n, a := range attrs {
		v := []byte(a.StringValue)
		if isBinaryType(a.DataType) {
			v = a.BinaryValue
		}
		in[n] = sqsmd5.Attribute{DataType: a.DataType, Value: v}
	}
	return sqsmd5.Attributes(in)
}

// baseType is the logical type of an attribute's DataType: the part before
// the first '.', which starts a custom label ("Number.int").
func baseType(dataType string) string {
	t, _, _ := strings.Cut(dataType, ".")
	return t
}

func isBinaryType(dataType string) bool { return sqsmd5.IsBinary(dataType) }
