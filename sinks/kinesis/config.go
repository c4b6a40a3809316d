// Package kinesis is the Kinesis Data Streams target: it puts deliveries
// into a stream as records, several to a PutRecords call.
package kinesis

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/names"
	"github.com/switchyard-dev/switchyard/internal/size"
	"github.com/switchyard-dev/switchyard/router"
)

// Config is a target of `type: kinesis`.
type Config struct {
	// Stream is the stream's name. Set it or StreamARN.
	Stream string `yaml:"stream"`
	// StreamARN is the stream's ARN,
	// arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME, which AWS
	// recommends over the name. Set it or Stream.
	StreamARN string `yaml:"stream_arn"`
	// PartitionKey decides a record's shard: records with the same key go
	// to the same shard, in order. It may hold placeholders: <name> for a
	// top-level field of the payload or switchyard.delivery-id,
	// switchyard.event-id, switchyard.rule; <$.path> for a JSON path into
	// the event (<$.detail.orderId>). A delivery whose key fills to nothing
	// or to more than 256 characters, or has a placeholder with no value,
	// fails for good. Default <switchyard.delivery-id>, which spreads
	// records evenly over the shards.
	PartitionKey string `yaml:"partition_key"`
	// Batch groups deliveries into PutRecords calls.
	Batch Batch `yaml:"batch"`
}

// Batch configures how deliveries are grouped into PutRecords calls. A
// call goes when it is full (Size records, or MaxBytes), when its first
// delivery has waited Window, or, with no window, as soon as nothing else
// is waiting and no call is out. Each record (its data and partition key)
// may have at most 1 MiB, Kinesis's limit: a larger one fails for good.
type Batch struct {
	// Size is the most records in one call, 1 to 500. Default 500.
	Size int `yaml:"size"`
	// MaxBytes is the most data and partition keys in one call, 1MiB to
	// 5MiB. Default 5MiB.
	MaxBytes size.Bytes `yaml:"max_bytes"`
	// Window is how long the first delivery of a call waits for others, at
	// most 5m (and well under the policy's timeout, which it counts
	// against). Default 0: whatever is waiting goes at once.
	Window time.Duration `yaml:"window"`
}

// Limits of PutRecords.
const (
	// MaxRecords is the most records in one call.
	MaxRecords = 500
	// MaxRecordBytes is the most data and partition key in one record.
	MaxRecordBytes = 1 << 20
	// MaxCallBytes is the most data and partition keys in one call that
	// switchyard sends (Kinesis's limit was 5 MiB until it took records of
	// up to 10 MiB).
	MaxCallBytes = 5 << 20
	// MaxPartitionKey is the longest partition key, in characters.
	MaxPartitionKey = 256
)

// DefaultPartitionKey is the default of Config.PartitionKey.
const DefaultPartitionKey = "<switchyard.delivery-id>"

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.PartitionKey == "" {
		c.PartitionKey = DefaultPartitionKey
	}
	if c.Batch.Size == 0 {
		c.Batch.Size = MaxRecords
	}
	if c.Batch.MaxBytes == 0 {
		c.Batch.MaxBytes = MaxCallBytes
	}
}

// Stream is a Kinesis stream, from its ARN.
type Stream struct {
	Partition, Region, Account, Name string
}

// ParseStreamARN takes apart a stream ARN,
// arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME.
func ParseStreamARN(arn string) (Stream, error) {
	f := strings.Split(arn, ":")
	if len(f) != 6 || f[0] != "arn" || !strings.HasPrefix(f[1], "aws") || f[2] != "kinesis" || !strings.HasPrefix(f[5], "stream/") {
		return Stream{}, fmt.Errorf("%q is not a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)", arn)
	}
	if !names.IsRegion(f[3]) {
		return Stream{}, fmt.Errorf("%q is not a Kinesis stream ARN: %q is not a region", arn, f[3])
	}
	if len(f[4]) != 12 || strings.Trim(f[4], "0123456789") != "" {
		return Stream{}, fmt.Errorf("%q is not a Kinesis stream ARN: the account %q is not 12 digits", arn, f[4])
	}
	name := strings.TrimPrefix(f[5], "stream/")
	if err := CheckStreamName(name); err != nil {
		return Stream{}, fmt.Errorf("%q is not a Kinesis stream ARN: %w", arn, err)
	}
	return Stream{Partition: f[1], Region: f[3], Account: f[4], Name: name}, nil
}

// CheckStreamName checks a stream's name: 1 to 128 letters, digits, '_',
// '-' and '.'.
func CheckStreamName(name string) error {
	if name == "" || len(name) > 128 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}) {
		return fmt.Errorf("a stream name has 1 to 128 letters, digits, '_', '-' and '.', not %q", name)
	}
	return nil
}

// Validate checks the stream, the partition key's template and the batch
// settings.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Stream == "" && c.StreamARN == "":
		errs = append(errs, router.Fieldf("stream", "required: the stream's name, or its ARN as stream_arn"))
	case c.Stream != "" && c.StreamARN != "":
		errs = append(errs, router.Fieldf("stream_arn", "set stream or stream_arn, not both"))
	case c.Stream != "":
		if err := CheckStreamName(c.Stream); err != nil {
			errs = append(errs, router.Fieldf("stream", "%v", err))
		}
	default:
		if _, err := ParseStreamARN(c.StreamARN); err != nil {
			errs = append(errs, router.Fieldf("stream_arn", "%v", err))
		}
	}
	if st, err := router.ParseSetting(c.PartitionKey); err != nil {
		errs = append(errs, router.Fieldf("partition_key", "%v", err))
	} else if n := len([]rune(st.Literal(""))); n > MaxPartitionKey || st.Constant() && n == 0 {
		errs = append(errs, router.Fieldf("partition_key", "%d characters: Kinesis takes 1 to %d", n, MaxPartitionKey))
	}
	b := c.Batch
	if b.Size < 1 || b.Size > MaxRecords {
		errs = append(errs, router.Fieldf("batch.size", "%d is outside the range of 1 to %d", b.Size, MaxRecords))
	}
	if b.MaxBytes < size.MiB || b.MaxBytes > MaxCallBytes {
		errs = append(errs, router.Fieldf("batch.max_bytes", "%s is outside the range of 1MiB to 5MiB", b.MaxBytes))
	}
	if b.Window < 0 || b.Window > 5*time.Minute {
		errs = append(errs, router.Fieldf("batch.window", "%s is outside the range of 0 to 5m", b.Window))
	}
	return errors.Join(errs...)
}
