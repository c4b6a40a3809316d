package awstest

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"
)

// md5Hex is the MD5 digest of s in lower-case hex, as MD5OfBody and
// MD5OfMessageBody carry it (the SDK recomputes and compares it).
func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// md5OfAttributes digests message (or message system) attributes the way the
// SQS Developer Guide specifies ("Calculating the MD5 message digest for
// message attributes"): attributes sorted by name; for each, the name and
// the data type (custom suffix included) as a 4-byte big-endian length and
// UTF-8 bytes; one transport byte, 1 for String and Number, 2 for Binary;
// then the value as a 4-byte length and its UTF-8 (String) or raw (Binary)
// bytes. No attributes: "".
func md5OfAttributes(attrs map[string]Attribute) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	var l [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, n := range names {
		a := attrs[n]
		put([]byte(n))
		put([]byte(a.DataType))
		if isBinaryType(a.DataType) {
			h.Write([]byte{2})
			put(a.BinaryValue)
		} else {
			h.Write([]byte{1})
			put([]byte(a.StringValue))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// baseType is the logical type of an attribute's DataType: the part before
// the first '.', which starts a custom label ("Number.int").
func baseType(dataType string) string {
	t, _, _ := strings.Cut(dataType, ".")
	return t
}

func isBinaryType(dataType string) bool { return baseType(dataType) == "Binary" }
