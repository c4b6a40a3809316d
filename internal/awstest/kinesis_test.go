package awstest_test

import (
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func createStream(t *testing.T, s *awstest.Server, name string, shards int) string {
	t.Helper()
	arn, err := s.Kinesis().CreateStream(name, shards)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

func entries(keys ...string) []ktypes.PutRecordsRequestEntry {
	var out []ktypes.PutRecordsRequestEntry
	for _, k := range keys {
		out = append(out, ktypes.PutRecordsRequestEntry{Data: []byte("data of " + k), PartitionKey: aws.String(k)})
	}
	return out
}

func TestKinesis_PutRecords(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	arn := createStream(t, s, "clicks", 4)
	if arn != "arn:aws:kinesis:us-east-1:123456789012:stream/clicks" {
		t.Fatalf("arn %s", arn)
	}
	c := s.KinesisClient()
	recs := entries("a", "b", "c", "d", "e", "f")
	recs = append(recs, ktypes.PutRecordsRequestEntry{Data: []byte{0, 0xff}, PartitionKey: aws.String("x"), ExplicitHashKey: aws.String("340282366920938463463374607431768211455")})
	out, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 || len(out.Records) != len(recs) || out.EncryptionType != ktypes.EncryptionTypeNone {
		t.Fatalf("answer %+v", out)
	}
	stored := s.Kinesis().Records("clicks")
	if len(stored) != len(recs) {
		t.Fatalf("%d records stored", len(stored))
	}
	quarter := new(big.Int).Lsh(big.NewInt(1), 126)
	prev := ""
	for i, r := range stored {
		res := out.Records[i]
		wantShard := 3 // the explicit hash key is the top of the key space
		if i < 6 {
			sum := md5.Sum([]byte(*recs[i].PartitionKey))
			wantShard = int(new(big.Int).Div(new(big.Int).SetBytes(sum[:]), quarter).Int64())
		}
		if r.PartitionKey != *recs[i].PartitionKey || string(r.Data) != string(recs[i].Data) || r.ShardID != fmt.Sprintf("shardId-%012d", wantShard) ||
			aws.ToString(res.ShardId) != r.ShardID || aws.ToString(res.SequenceNumber) != r.SequenceNumber || res.ErrorCode != nil || !r.Arrived.Equal(clk.Now()) {
			t.Errorf("record %d: stored %+v, answered %+v, want shard %d", i, r, res, wantShard)
		}
		if r.SequenceNumber <= prev {
			t.Errorf("sequence number %s after %s", r.SequenceNumber, prev)
		}
		prev = r.SequenceNumber
	}
	if stored[6].ExplicitHashKey != "340282366920938463463374607431768211455" {
		t.Errorf("explicit hash key %q", stored[6].ExplicitHashKey)
	}

	// By ARN, as the SDK recommends; both may be given when they agree.
	if _, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamARN: aws.String(arn), StreamName: aws.String("clicks"), Records: entries("g")}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Kinesis().Records("clicks")); n != 8 || s.Calls("kinesis:PutRecords") != 2 {
		t.Errorf("%d records, %d calls", n, s.Calls("kinesis:PutRecords"))
	}
}

// Fault.BatchEntries fails chosen records; the others are stored.
func TestKinesis_PartialFailure(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	createStream(t, s, "clicks", 2)
	c := s.KinesisClient()
	s.InjectFault(awstest.FaultRule{Op: "kinesis:PutRecords", Resource: "clicks", Times: 1,
		Fault: awstest.Fault{Code: "ProvisionedThroughputExceededException", BatchEntries: []string{"b", "d"}}})
	out, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries("a", "b", "c", "d")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 2 {
		t.Errorf("FailedRecordCount %d", aws.ToInt32(out.FailedRecordCount))
	}
	for i, r := range out.Records {
		failed := i == 1 || i == 3
		if failed != (r.ErrorCode != nil) || failed == (r.SequenceNumber != nil) {
			t.Errorf("record %d: %+v", i, r)
		}
		if failed && (aws.ToString(r.ErrorCode) != "ProvisionedThroughputExceededException" ||
			!strings.HasPrefix(aws.ToString(r.ErrorMessage), "Rate exceeded for shard shardId-00000000000") || !strings.HasSuffix(aws.ToString(r.ErrorMessage), "in stream clicks under account 123456789012.")) {
			t.Errorf("record %d: %s: %s", i, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
		}
	}
	stored := s.Kinesis().Records("clicks")
	if len(stored) != 2 || stored[0].PartitionKey != "a" || stored[1].PartitionKey != "c" {
		t.Errorf("stored %+v", stored)
	}
	// The rule applied once.
	out, err = c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries("b", "d")})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 || len(s.Kinesis().Records("clicks")) != 4 {
		t.Errorf("retry: %+v, %v", out, err)
	}
	if st := s.Stats(); st.Faults["kinesis:PutRecords"] != 1 {
		t.Errorf("faults %v", st.Faults)
	}
	s.InjectFault(awstest.FaultRule{Op: "kinesis:PutRecords", Times: 1, Fault: awstest.Fault{Code: "InternalFailure", Message: "Internal service failure.", BatchEntries: []string{"*"}}})
	out, err = c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries("e", "f")})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 2 || aws.ToString(out.Records[1].ErrorCode) != "InternalFailure" || aws.ToString(out.Records[1].ErrorMessage) != "Internal service failure." {
		t.Errorf("all failed: %+v, %v", out, err)
	}
}

func TestKinesis_Errors(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	createStream(t, s, "clicks", 1)
	c := s.KinesisClient()
	big := make([]byte, 1<<20)
	var (
		notFound   *ktypes.ResourceNotFoundException
		invalidArg *ktypes.InvalidArgumentException
		validation *ktypes.ValidationException
	)
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	// 5 MiB and one byte: within the server's body limit when encoded.
	fiveMiB := make([]ktypes.PutRecordsRequestEntry, 5)
	for i := range fiveMiB {
		fiveMiB[i] = ktypes.PutRecordsRequestEntry{Data: big[:1<<20-1], PartitionKey: aws.String("k")}
	}
	fiveMiB = append(fiveMiB, ktypes.PutRecordsRequestEntry{Data: []byte{}, PartitionKey: aws.String("k")})
	for _, tc := range []struct {
		name string
		in   kinesis.PutRecordsInput
		as   any
		code string
		msg  string
	}{
		{"no stream", kinesis.PutRecordsInput{StreamName: aws.String("gone"), Records: entries("a")}, &notFound, "ResourceNotFoundException", "Stream gone under account 123456789012 not found."},
		{"another account", kinesis.PutRecordsInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:999999999999:stream/clicks"), Records: entries("a")}, &notFound, "ResourceNotFoundException", "under account 999999999999"},
		{"another region", kinesis.PutRecordsInput{StreamARN: aws.String("arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"), Records: entries("a")}, &notFound, "ResourceNotFoundException", "not found"},
		{"name and ARN disagree", kinesis.PutRecordsInput{StreamName: aws.String("other"), StreamARN: aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/clicks"), Records: entries("a")}, &invalidArg, "InvalidArgumentException", "does not match"},
		{"no stream named", kinesis.PutRecordsInput{Records: entries("a")}, &invalidArg, "InvalidArgumentException", "Either StreamName or StreamARN"},
		{"no records", kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: []ktypes.PutRecordsRequestEntry{}}, &validation, "ValidationException", "'records'"},
		{"501 records", kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries(many...)}, &validation, "ValidationException", "less than or equal to 500"},
		{"empty partition key", kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries("a", "")}, &validation, "ValidationException", "records.2.member.partitionKey"},
		{"257-character partition key", kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries(strings.Repeat("k", 257))}, &validation, "ValidationException", "between 1 and 256"},
		{"hash key out of range", kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: []ktypes.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456")}}}, &validation, "ValidationException", "explicitHashKey"},
		{"record over 1 MiB with its key", kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: []ktypes.PutRecordsRequestEntry{{Data: big, PartitionKey: aws.String("k")}}}, &invalidArg, "InvalidArgumentException", "over the limit of 1048576 bytes"},
		{"request over 5 MiB", kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: fiveMiB}, &invalidArg, "InvalidArgumentException", "exceeds the limit of 5242880 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutRecords(t.Context(), &tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.As(err, tc.as) {
				t.Errorf("%v (%T): not the SDK's typed error", err, err)
			}
			if code, status := apiCode(t, err), httpStatus(t, err); code != tc.code || status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s %d %v, want %s 400 %q", code, status, err, tc.code, tc.msg)
			}
		})
	}
	if n := len(s.Kinesis().Records("clicks")); n != 0 {
		t.Errorf("%d records stored by failed calls", n)
	}
}

// Whole-call faults reach the SDK as Kinesis's typed errors.
func TestKinesis_Faults(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	createStream(t, s, "clicks", 1)
	c := s.KinesisClient()
	in := &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries("a")}
	s.FailNext("kinesis:PutRecords", 1, awstest.Fault{Code: "ProvisionedThroughputExceededException", Message: "Rate exceeded for stream clicks under account 123456789012."})
	_, err := c.PutRecords(t.Context(), in)
	var pte *ktypes.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) || httpStatus(t, err) != http.StatusBadRequest {
		t.Errorf("throughput: %v", err)
	}
	s.FailNext("kinesis:PutRecords", 1, awstest.InternalError("InternalFailureException"))
	_, err = c.PutRecords(t.Context(), in)
	var internal *ktypes.InternalFailureException
	if !errors.As(err, &internal) || httpStatus(t, err) != http.StatusInternalServerError {
		t.Errorf("internal: %v", err)
	}
	s.FailNext("kinesis:PutRecords", 1, awstest.Fault{Code: "AccessDeniedException", Message: "not authorized to perform: kinesis:PutRecords"})
	_, err = c.PutRecords(t.Context(), in)
	var denied *ktypes.AccessDeniedException
	if !errors.As(err, &denied) || httpStatus(t, err) != http.StatusBadRequest {
		t.Errorf("denied: %v", err)
	}
	if n := len(s.Kinesis().Records("clicks")); n != 0 {
		t.Errorf("%d records stored by faulted calls", n)
	}
}
