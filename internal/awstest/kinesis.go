package awstest

import (
	"crypto/md5"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Kinesis limits PutRecords checks.
const (
	kinesisMaxRecords     = 500
	kinesisMaxRecordBytes = 1 << 20 // data and partition key of one record
	kinesisMaxBatchBytes  = 5 << 20 // data and partition keys of one request
)

// KinesisRecord is a record a stream accepted.
type KinesisRecord struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey string
	ShardID         string
	SequenceNumber  string
	Arrived         time.Time
}

// Kinesis is the Kinesis Data Streams endpoint: PutRecords, in AWS JSON 1.1
// (X-Amz-Target Kinesis_20131202.PutRecords; errors as
// {"__type":"Code","message":...}, 400 for every modelled error but
// InternalFailureException, 500).
//
// What it checks, as the API reference says Kinesis does: the stream (by
// StreamName or StreamARN, which must agree when both are given) exists in
// the server's account and region (ResourceNotFoundException); 1 to 500
// records (ValidationException); each partition key 1 to 256 characters
// and each ExplicitHashKey a decimal 128-bit value (ValidationException);
// each record's data and partition key within 1 MiB, and the request's
// within 5 MiB (InvalidArgumentException). 5 MiB is the request limit the
// API had until it was raised with records of up to 10 MiB; this endpoint
// keeps the older, smaller one, which no sender can exceed by mistake
// against it yet pass against AWS.
//
// Records go to the shard whose hash-key range holds the MD5 of the
// partition key (or the ExplicitHashKey), the stream's key space split
// evenly among its shards; sequence numbers increase per stream.
//
// Fault.BatchEntries fails the records whose partition keys it lists ("*"
// for all) with Code and Message as their ErrorCode and ErrorMessage (a
// ProvisionedThroughputExceededException names the shard, stream and
// account as Kinesis does), counting them in FailedRecordCount; the other
// records are stored and the call succeeds.
type Kinesis struct {
	s *Server

	mu      sync.Mutex
	streams map[string]*kinesisStream
}

type kinesisStream struct {
	name, arn string
	shards    int
	seq       int64
	records   []KinesisRecord
}

func newKinesis(s *Server) *Kinesis { return &Kinesis{s: s, streams: map[string]*kinesisStream{}} }

// CreateStream makes an active stream of shards shards (at least 1) and
// returns its ARN; a stream of that name is replaced, with no records.
func (k *Kinesis) CreateStream(name string, shards int) (string, error) {
	if name == "" || len(name) > 128 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		return "", fmt.Errorf("awstest: invalid stream name %q", name)
	}
	shards = max(shards, 1)
	arn := "arn:aws:kinesis:" + k.s.region + ":" + k.s.account + ":stream/" + name
	k.mu.Lock()
	defer k.mu.Unlock()
	k.streams[name] = &kinesisStream{name: name, arn: arn, shards: shards}
	return arn, nil
}

// Records returns what the stream accepted, in the order it accepted them
// (nil for no stream).
func (k *Kinesis) Records(stream string) []KinesisRecord {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.streams[stream]
	if st == nil {
		return nil
	}
	out := make([]KinesisRecord, len(st.records))
	copy(out, st.records)
	return out
}

type kinesisStreamRef struct {
	StreamName *string `json:"StreamName"`
	StreamARN  *string `json:"StreamARN"`
}

// kinesisResource names the stream a request is about, for fault
// matching: StreamName, else the name in StreamARN.
func kinesisResource(body []byte) string {
	var in kinesisStreamRef
	_ = json.Unmarshal(body, &in)
	if in.StreamName != nil {
		return *in.StreamName
	}
	if in.StreamARN != nil {
		if _, name, ok := strings.Cut(*in.StreamARN, ":stream/"); ok {
			return name
		}
	}
	return ""
}

func (k *Kinesis) serve(w http.ResponseWriter, c *call) {
	var out any
	var err *APIError
	switch c.op {
	case "PutRecords":
		out, err = k.putRecords(c)
	default:
		err = apiErr("UnknownOperationException", "awstest: Kinesis operation %q is not implemented", c.op)
	}
	if err != nil {
		writeAPIError(w, "kinesis", err)
		return
	}
	writeJSON(w, http.StatusOK, contentJSON11, out)
}

// stream finds the stream ref names; k.mu is held.
func (k *Kinesis) stream(ref kinesisStreamRef) (*kinesisStream, *APIError) {
	var name string
	switch {
	case ref.StreamName == nil && ref.StreamARN == nil:
		return nil, apiErr("InvalidArgumentException", "Either StreamName or StreamARN should be provided.")
	case ref.StreamARN != nil:
		arn := *ref.StreamARN
		parts := strings.SplitN(arn, ":", 6)
		res, ok := "", false
		if len(parts) == 6 {
			res, ok = strings.CutPrefix(parts[5], "stream/")
		}
		if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kinesis" || !ok || res == "" {
			return nil, apiErr("ValidationException", "1 validation error detected: Value '%s' at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+", arn)
		}
		if parts[3] != k.s.region || parts[4] != k.s.account {
			return nil, apiErr("ResourceNotFoundException", "Stream %s under account %s not found.", res, parts[4])
		}
		if ref.StreamName != nil && *ref.StreamName != res {
			return nil, apiErr("InvalidArgumentException", "StreamARN %s does not match StreamName %s.", arn, *ref.StreamName)
		}
		name = res
	default:
		name = *ref.StreamName
		if name == "" || len(name) > 128 {
			return nil, apiErr("ValidationException", "1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must have length between 1 and 128", name)
		}
	}
	st := k.streams[name]
	if st == nil {
		return nil, apiErr("ResourceNotFoundException", "Stream %s under account %s not found.", name, k.s.account)
	}
	return st, nil
}

type kinesisPutEntry struct {
	Data            []byte  `json:"Data"`
	PartitionKey    *string `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey"`
}

type kinesisPutResult struct {
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	ShardID        string `json:"ShardId,omitempty"`
	ErrorCode      string `json:"ErrorCode,omitempty"`
	ErrorMessage   string `json:"ErrorMessage,omitempty"`
}

// maxHashKey is 2^128 - 1, the top of a stream's hash-key space.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

func (k *Kinesis) putRecords(c *call) (any, *APIError) {
	var in struct {
		kinesisStreamRef
		Records []kinesisPutEntry `json:"Records"`
		DryRun  *bool             `json:"DryRun"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	if in.DryRun != nil && *in.DryRun {
		return nil, apiErr("InvalidArgumentException", "awstest: DryRun is not implemented")
	}
	switch n := len(in.Records); {
	case in.Records == nil:
		return nil, apiErr("ValidationException", "1 validation error detected: Value null at 'records' failed to satisfy constraint: Member must not be null")
	case n < 1 || n > kinesisMaxRecords:
		return nil, apiErr("ValidationException", "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to %d and greater than or equal to 1", kinesisMaxRecords)
	}
	total := 0
	hashes := make([]*big.Int, len(in.Records))
	for i, r := range in.Records {
		if r.PartitionKey == nil {
			return nil, apiErr("ValidationException", "1 validation error detected: Value null at 'records.%d.member.partitionKey' failed to satisfy constraint: Member must not be null", i+1)
		}
		if n := len([]rune(*r.PartitionKey)); n < 1 || n > 256 {
			return nil, apiErr("ValidationException", "1 validation error detected: Value '%s' at 'records.%d.member.partitionKey' failed to satisfy constraint: Member must have length between 1 and 256", *r.PartitionKey, i+1)
		}
		if r.Data == nil {
			return nil, apiErr("ValidationException", "1 validation error detected: Value null at 'records.%d.member.data' failed to satisfy constraint: Member must not be null", i+1)
		}
		size := len(r.Data) + len(*r.PartitionKey)
		if size > kinesisMaxRecordBytes {
			return nil, apiErr("InvalidArgumentException", "Record %d has a size of %d bytes (data and partition key), over the limit of %d bytes.", i, size, kinesisMaxRecordBytes)
		}
		total += size
		if r.ExplicitHashKey != nil {
			h, ok := new(big.Int).SetString(*r.ExplicitHashKey, 10)
			if !ok || h.Sign() < 0 || h.Cmp(maxHashKey) > 0 || strings.HasPrefix(*r.ExplicitHashKey, "+") {
				return nil, apiErr("ValidationException", "1 validation error detected: Value '%s' at 'records.%d.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})", *r.ExplicitHashKey, i+1)
			}
			hashes[i] = h
		} else {
			sum := md5.Sum([]byte(*r.PartitionKey))
			hashes[i] = new(big.Int).SetBytes(sum[:])
		}
	}
	if total > kinesisMaxBatchBytes {
		return nil, apiErr("InvalidArgumentException", "Records size of %d bytes exceeds the limit of %d bytes.", total, kinesisMaxBatchBytes)
	}

	now := k.s.clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := k.stream(in.kinesisStreamRef)
	if err != nil {
		return nil, err
	}
	results := make([]kinesisPutResult, len(in.Records))
	failed := 0
	span := new(big.Int).Div(new(big.Int).Add(maxHashKey, big.NewInt(1)), big.NewInt(int64(st.shards)))
	for i, r := range in.Records {
		shard := min(int(new(big.Int).Div(hashes[i], span).Int64()), st.shards-1)
		shardID := fmt.Sprintf("shardId-%012d", shard)
		if f := c.entryFault; f != nil && f.failsEntry(*r.PartitionKey) {
			failed++
			msg := f.Message
			if msg == "" && f.Code == "ProvisionedThroughputExceededException" {
				msg = fmt.Sprintf("Rate exceeded for shard %s in stream %s under account %s.", shardID, st.name, k.s.account)
			}
			results[i] = kinesisPutResult{ErrorCode: f.Code, ErrorMessage: msg}
			continue
		}
		st.seq++
		seq := fmt.Sprintf("49%054d", st.seq)
		results[i] = kinesisPutResult{SequenceNumber: seq, ShardID: shardID}
		rec := KinesisRecord{Data: r.Data, PartitionKey: *r.PartitionKey, ShardID: shardID, SequenceNumber: seq, Arrived: now}
		if r.ExplicitHashKey != nil {
			rec.ExplicitHashKey = *r.ExplicitHashKey
		}
		st.records = append(st.records, rec)
	}
	return map[string]any{"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"}, nil
}

// kinesisStatus: the Kinesis model gives InternalFailureException 500; the
// rest are 400.
var kinesisStatus = map[string]int{
	"InternalFailureException": 500, "MissingAuthenticationTokenException": 403,
}
