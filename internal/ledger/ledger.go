package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/kvbucket"
	"github.com/switchyard-dev/switchyard/router"
)

// Ledger is a router.Ledger on a JetStream key-value bucket: one key per
// delivery id, its value a version byte and a small JSON record, written
// by compare-and-set.
type Ledger struct {
	kv     jetstream.KeyValue
	nc     *nats.Conn
	bucket string
}

var _ router.Ledger = (*Ledger)(nil)

// Open opens the bucket, creating it (file-backed) when it is missing. A
// bucket that exists with other settings than cfg asks for is an error
// naming the setting and both values: it is not silently changed, as
// other instances may rely on it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Ledger, error) {
	want := jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "switchyard: what became of each delivery (see the ledger in the README)",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}
	kv, err := kvbucket.Open(ctx, js, want)
	if err != nil {
		return nil, fmt.Errorf("ledger: bucket %s: %w", cfg.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: bucket %s: %w", cfg.Bucket, err)
	}
	if err := check(st, want); err != nil {
		return nil, err
	}
	return &Ledger{kv: kv, nc: js.Conn(), bucket: cfg.Bucket}, nil
}

// check compares an existing bucket with the settings the config asks for.
func check(st jetstream.KeyValueStatus, want jetstream.KeyValueConfig) error {
	var errs []error
	mismatch := func(setting string, have, asked any, fix string) {
		errs = append(errs, fmt.Errorf("ledger: bucket %s has %s %v, the config asks for %v (%s)", want.Bucket, setting, have, asked, fix))
	}
	if st.TTL() != want.TTL {
		mismatch("ttl", st.TTL(), want.TTL, "set ledger.ttl to match, or change the bucket: nats kv edit "+want.Bucket+" --ttl "+want.TTL.String())
	}
	if st.History() != int64(want.History) {
		mismatch("history", st.History(), want.History, "the ledger keeps one revision per key; recreate the bucket")
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	if info.Config.Storage != want.Storage {
		mismatch("storage", info.Config.Storage, want.Storage, "the ledger must survive a restart; recreate the bucket with file storage")
	}
	if info.Config.Replicas != want.Replicas {
		mismatch("replicas", info.Config.Replicas, want.Replicas, "set ledger.replicas to match, or change the bucket: nats kv edit "+want.Bucket+" --replicas")
	}
	return errors.Join(errs...)
}

// version is the first byte of every value.
const version = 1

// value is a record as stored, after the version byte.
type value struct {
	State      string `json:"s"`
	Attempts   int    `json:"a,omitempty"`
	Failures   int    `json:"f,omitempty"`
	First      int64  `json:"t,omitempty"` // first attempt, Unix milliseconds
	LastError  string `json:"e,omitempty"`
	Generation int    `json:"g,omitempty"`
	Digest     uint64 `json:"d,omitempty"` // of the message the delivery came from
}

// parseState is the inverse of router.State's String.
func parseState(s string) (router.State, bool) {
	for _, st := range []router.State{router.Pending, router.Backlogged, router.Delivered, router.DeadLettered} {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// maxError bounds the error kept in a record.
const maxError = 512

func encode(r router.Record) []byte {
	v := value{State: r.State.String(), Attempts: r.Attempts, Failures: r.Failures, LastError: truncate(r.LastError), Generation: r.Generation, Digest: r.Digest}
	if !r.FirstAttempt.IsZero() {
		v.First = r.FirstAttempt.UnixMilli()
	}
	b, _ := json.Marshal(v)
	return append([]byte{version}, b...)
}

// truncate cuts an error to maxError bytes, on a character boundary.
func truncate(s string) string {
	if len(s) <= maxError {
		return s
	}
	cut := maxError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// ErrCorrupt marks a value that is not a record this switchyard reads.
var ErrCorrupt = router.ErrCorruptRecord

func decode(b []byte) (router.Record, error) {
	if len(b) == 0 || b[0] != version {
		return router.Record{}, fmt.Errorf("%w: unknown version", ErrCorrupt)
	}
	// Fields this version does not know are left alone: a newer
	// switchyard may add some.
	var v value
	if err := json.Unmarshal(b[1:], &v); err != nil {
		return router.Record{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	st, ok := parseState(v.State)
	if !ok || v.Attempts < 0 || v.Failures < 0 || v.Generation < 0 {
		return router.Record{}, fmt.Errorf("%w: state %q", ErrCorrupt, v.State)
	}
	r := router.Record{State: st, Attempts: v.Attempts, Failures: v.Failures, LastError: truncate(v.LastError), Generation: v.Generation, Digest: v.Digest}
	if v.First > 0 {
		r.FirstAttempt = time.UnixMilli(v.First).UTC()
	}
	return r, nil
}

// errNotConnected fails a call at once while the connection is down,
// rather than waiting for its bound.
var errNotConnected = errors.New("not connected to NATS")

// Get returns a delivery's record. A corrupt value is an error wrapping
// ErrCorrupt (the delivery then goes on as if it had no record).
func (l *Ledger) Get(ctx context.Context, id string) (router.Record, bool, error) {
	if !l.nc.IsConnected() {
		return router.Record{}, false, errNotConnected
	}
	e, err := l.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return router.Record{}, false, nil
	}
	if err != nil {
		return router.Record{}, false, err
	}
	r, err := decode(e.Value())
	if err != nil {
		return router.Record{}, false, fmt.Errorf("delivery %s: %w", id, err)
	}
	return r, true, nil
}

// casWait is the most a write that lost a race waits, times the races it
// lost, before it reads again: writers of one record spread out.
const casWait = time.Millisecond

// Put writes r merged with what the bucket holds, by compare-and-set: a
// write that lost a race waits a little, reads again and merges, for as
// long as ctx allows. A corrupt value is replaced.
func (l *Ledger) Put(ctx context.Context, id string, r router.Record) error {
	if !l.nc.IsConnected() {
		return errNotConnected
	}
	_, err := l.kv.Create(ctx, id, encode(r))
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return err
	}
	for lost := 0; ; lost++ {
		if lost > 0 {
			t := time.NewTimer(rand.N(casWait * time.Duration(min(lost, 20))))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("delivery %s: %d writes in a row lost a race: %w", id, lost, ctx.Err())
			}
		}
		e, err := l.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err = l.kv.Create(ctx, id, encode(r)); !errors.Is(err, jetstream.ErrKeyExists) {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		have, derr := decode(e.Value())
		merged := r
		if derr == nil {
			if merged = have.Merge(r); merged == have {
				return nil // nothing new
			}
		}
		_, err = l.kv.Update(ctx, id, encode(merged), e.Revision())
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
	}
}
