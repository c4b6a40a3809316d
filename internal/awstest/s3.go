package awstest

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// S3 is the S3 endpoint: GetObject only (REST-XML), enough to fetch a file
// the way switchyard fetches its config. Buckets and objects are put in place
// by tests with CreateBucket and PutObject; nothing else is served on the
// wire (other requests are answered 501 NotImplemented).
//
// Addressing: a request is virtual-hosted style when its host name is
// BUCKET.s3.ANYTHING (as BUCKET.s3.REGION.amazonaws.com is on AWS) or
// BUCKET.localhost (but s3.localhost is an endpoint, not a bucket), path
// style (/BUCKET/KEY) otherwise. The SDK uses path style
// when the client's UsePathStyle is set and when its endpoint is an IP
// address (as 127.0.0.1 is), virtual-hosted style otherwise.
//
// Regions: each bucket has one. AWS answers a request that reaches a
// bucket through another region's endpoint with 301 PermanentRedirect, and
// one signed for another region with 400 AuthorizationHeaderMalformed, both
// carrying x-amz-bucket-region. This server has one endpoint for every
// region, so the region it checks is the signature's (the credential scope
// of the Authorization header), and the answer is the 301, with the header
// and the XML body (Endpoint, Bucket) AWS sends.
type S3 struct {
	s *Server

	mu      sync.Mutex
	buckets map[string]*s3Bucket
}

type s3Bucket struct {
	region  string
	objects map[string]*s3Object
}

type s3Object struct {
	data        []byte
	contentType string
	etag        string
	modified    time.Time
}

func newS3(s *Server) *S3 {
	return &S3{s: s, buckets: map[string]*s3Bucket{}}
}

// CreateBucket creates an empty bucket in region (the server's region when
// empty). Creating a bucket that exists keeps its objects and changes its
// region.
func (b *S3) CreateBucket(name, region string) {
	if region == "" {
		region = b.s.region
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if bk, ok := b.buckets[name]; ok {
		bk.region = region
		return
	}
	b.buckets[name] = &s3Bucket{region: region, objects: map[string]*s3Object{}}
}

// PutObject stores data under key, replacing what was there. contentType
// defaults to binary/octet-stream, as S3's does. The bucket must exist.
func (b *S3) PutObject(bucket, key string, data []byte, contentType string) error {
	if contentType == "" {
		contentType = "binary/octet-stream"
	}
	sum := md5.Sum(data)
	o := &s3Object{
		data:        append([]byte(nil), data...),
		contentType: contentType,
		etag:        `"` + hex.EncodeToString(sum[:]) + `"`,
		modified:    b.s.clock.Now().UTC().Truncate(time.Second),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, ok := b.buckets[bucket]
	if !ok {
		return fmt.Errorf("awstest: no bucket %q", bucket)
	}
	bk.objects[key] = o
	return nil
}

// DeleteObject removes key; a missing key is not an error, as in S3.
func (b *S3) DeleteObject(bucket, key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bk, ok := b.buckets[bucket]; ok {
		delete(bk.objects, key)
	}
}

// s3Address splits a request into bucket and key, by host (virtual-hosted
// style) or by path (path style); see S3.
func s3Address(r *http.Request) (bucket, key string) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if net.ParseIP(host) == nil {
		if i := strings.Index(host, ".s3."); i > 0 {
			return host[:i], path
		}
		if b, ok := strings.CutSuffix(host, ".localhost"); ok && b != "" && b != "s3" {
			return b, path
		}
	}
	bucket, key, _ = strings.Cut(path, "/")
	return bucket, key
}

// s3Resource names the bucket a request is about, for fault matching.
func s3Resource(r *http.Request) string {
	b, _ := s3Address(r)
	return b
}

// signingRegion is the region of a SigV4 Authorization header's credential
// scope (Credential=AKID/DATE/REGION/SERVICE/aws4_request), or "".
func signingRegion(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[2]
}

func (b *S3) serve(w http.ResponseWriter, c *call) {
	bucket, key := s3Address(c.r)
	if c.op != "GetObject" {
		writeS3Error(w, &s3Error{APIError: APIError{Status: http.StatusNotImplemented, Code: "NotImplemented",
			Message: "A header you provided implies functionality that is not implemented"}})
		return
	}
	b.mu.Lock()
	bk, ok := b.buckets[bucket]
	var o *s3Object
	var region string
	if ok {
		o, region = bk.objects[key], bk.region
	}
	b.mu.Unlock()
	switch {
	case !ok:
		writeS3Error(w, &s3Error{APIError: APIError{Code: "NoSuchBucket", Message: "The specified bucket does not exist"}, BucketName: bucket})
		return
	case signingRegion(c.r) != "" && signingRegion(c.r) != region:
		w.Header().Set("X-Amz-Bucket-Region", region)
		writeS3Error(w, &s3Error{
			APIError: APIError{Code: "PermanentRedirect", Message: "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint."},
			Endpoint: bucket + ".s3." + region + ".amazonaws.com", Bucket: bucket,
		})
		return
	case o == nil:
		// AWS answers NoSuchKey to callers allowed s3:ListBucket on the
		// bucket, and 403 AccessDenied to the others; inject AccessDenied to
		// play the latter.
		writeS3Error(w, &s3Error{APIError: APIError{Code: "NoSuchKey", Message: "The specified key does not exist."}, Key: key})
		return
	}
	h := w.Header()
	h.Set("Content-Type", o.contentType)
	h.Set("Content-Length", strconv.Itoa(len(o.data)))
	h.Set("ETag", o.etag)
	h.Set("Last-Modified", o.modified.Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	if strings.EqualFold(c.r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		// S3 computes a CRC64NVME of every object uploaded without a
		// checksum, and returns it when the caller asks; the SDK checks it.
		h.Set("X-Amz-Checksum-Crc64nvme", crc64NVME(o.data))
		h.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(o.data)
}

// crc64NVMETable is CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5),
// the checksum S3 computes by default.
var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// crc64NVME returns the base64 of the big-endian CRC-64/NVME of data, as
// S3's x-amz-checksum-crc64nvme header carries it.
func crc64NVME(data []byte) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], crc64.Checksum(data, crc64NVMETable))
	return base64.StdEncoding.EncodeToString(b[:])
}

// s3Error is S3's error document: <Error><Code>…</Code><Message>…</Message>
// and members that depend on the code, then RequestId and HostId. The SDK
// (s3shared.GetErrorResponseComponents, unwrapped) reads Code and Message;
// with neither, it derives the code from the HTTP status text.
type s3Error struct {
	APIError
	Key        string
	BucketName string
	Bucket     string
	Endpoint   string
}

// s3Status is the HTTP status S3 sends with each code (S3's error
// responses reference).
var s3Status = map[string]int{
	"AccessDenied": 403, "InvalidAccessKeyId": 403, "SignatureDoesNotMatch": 403,
	"AllAccessDisabled": 403, "RequestTimeTooSkewed": 403,
	"NoSuchBucket": 404, "NoSuchKey": 404, "NoSuchVersion": 404,
	"PermanentRedirect": 301, "TemporaryRedirect": 307,
	"InternalError": 500, "NotImplemented": 501,
	"SlowDown": 503, "ServiceUnavailable": 503,
	"MethodNotAllowed": 405, "InvalidObjectState": 403,
}

func writeS3Error(w http.ResponseWriter, e *s3Error) {
	status := e.Status
	if status == 0 {
		status = defaultStatus("s3", e.Code)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(e.RetryAfter))
	}
	reqID := strings.ToUpper(randomHex(8))
	doc := struct {
		XMLName    xml.Name `xml:"Error"`
		Code       string
		Message    string
		Key        string `xml:",omitempty"`
		BucketName string `xml:",omitempty"`
		Bucket     string `xml:",omitempty"`
		Endpoint   string `xml:",omitempty"`
		RequestID  string `xml:"RequestId"`
		HostID     string `xml:"HostId"`
	}{Code: e.Code, Message: e.Message, Key: e.Key, BucketName: e.BucketName, Bucket: e.Bucket, Endpoint: e.Endpoint,
		RequestID: reqID, HostID: base64.StdEncoding.EncodeToString([]byte(randomHex(24)))}
	body, err := xml.Marshal(doc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body = append([]byte(xml.Header), body...)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amz-Request-Id", reqID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// SlowDown is S3's throttle: 503 SlowDown "Please reduce your request rate."
func SlowDown() Fault {
	return Fault{Status: http.StatusServiceUnavailable, Code: "SlowDown", Message: "Please reduce your request rate."}
}
