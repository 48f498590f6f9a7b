package schema

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names, as etcd names them.
var (
	KeyBucket            = []byte("key")
	MetaBucket           = []byte("meta")
	LeaseBucket          = []byte("lease")
	AlarmBucket          = []byte("alarm")
	ClusterBucket        = []byte("cluster")
	MembersBucket        = []byte("members")
	MembersRemovedBucket = []byte("members_removed")
	AuthBucket           = []byte("auth")
	AuthUsersBucket      = []byte("authUsers")
	AuthRolesBucket      = []byte("authRoles")
)

// Buckets lists every root bucket of an etcd backend in bbolt's (bytewise)
// order.
var Buckets = [][]byte{
	AlarmBucket, AuthBucket, AuthRolesBucket, AuthUsersBucket, ClusterBucket,
	KeyBucket, LeaseBucket, MembersBucket, MembersRemovedBucket, MetaBucket,
}

// KeyBucketFillPercent is the FillPercent etcd sets on the key bucket before
// writing to it: revisions only grow, so pages are split late.
const KeyBucketFillPercent = 0.9

// Errors. They carry the package name; test them with errors.Is.
var (
	// ErrBucketMissing is returned when a write needs a bucket that the db
	// does not have, or a strict read (ForEachKey) finds none.
	ErrBucketMissing = errors.New("schema: bucket missing")
	// ErrBadRevision is returned for a revision key that is not 17 bytes
	// (18 with the tombstone marker) of etcd's layout.
	ErrBadRevision = errors.New("schema: bad revision key")
	// ErrBadValue is returned for a value that does not decode.
	ErrBadValue = errors.New("schema: bad value")
)

// Options are the bbolt options that Open uses on top of etcd's defaults.
type Options struct {
	// ReadOnly opens the file read-only with a shared lock.
	ReadOnly bool
	// Timeout bounds the wait for the file lock; zero waits forever, as bbolt does.
	Timeout time.Duration
	// NoSync skips fsync on commit (tests and bulk loads only).
	NoSync bool
	// InitialMmapSize is the initial mmap size in bytes; zero lets bbolt choose.
	InitialMmapSize int
}

// Open opens (or, unless ReadOnly, creates with mode 0600) the bbolt file at
// path with etcd's options: the map freelist, and NoFreelistSync on Linux.
// It does not create buckets; see CreateBuckets.
func Open(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		ReadOnly:        opts.ReadOnly,
		Timeout:         opts.Timeout,
		NoSync:          opts.NoSync,
		InitialMmapSize: opts.InitialMmapSize,
		NoFreelistSync:  noFreelistSync,
		FreelistType:    bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("schema: open %s: %w", path, err)
	}
	return db, nil
}

// CreateBuckets creates every bucket of Buckets that tx's db lacks.
func CreateBuckets(tx *bolt.Tx) error {
	for _, name := range Buckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("schema: create bucket %q: %w", name, err)
		}
	}
	return nil
}

// Key returns the key bucket of tx, with FillPercent set to
// KeyBucketFillPercent, or nil if the db has none.
func Key(tx *bolt.Tx) *bolt.Bucket {
	b := tx.Bucket(KeyBucket)
	if b != nil {
		b.FillPercent = KeyBucketFillPercent
	}
	return b
}

// get reads bucket/key; a missing bucket or key gives nil.
func get(tx *bolt.Tx, bucket, key []byte) []byte {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return b.Get(key)
}

// writable returns the bucket for a write, or ErrBucketMissing.
func writable(tx *bolt.Tx, bucket []byte) (*bolt.Bucket, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil, fmt.Errorf("%w: %q", ErrBucketMissing, bucket)
	}
	return b, nil
}

// put writes bucket/key = value.
func put(tx *bolt.Tx, bucket, key, value []byte) error {
	b, err := writable(tx, bucket)
	if err != nil {
		return err
	}
	if err := b.Put(key, value); err != nil {
		return fmt.Errorf("schema: put %s/%q: %w", bucket, key, err)
	}
	return nil
}

// del deletes bucket/key; deleting a missing key is not an error.
func del(tx *bolt.Tx, bucket, key []byte) error {
	b, err := writable(tx, bucket)
	if err != nil {
		return err
	}
	if err := b.Delete(key); err != nil {
		return fmt.Errorf("schema: delete %s/%q: %w", bucket, key, err)
	}
	return nil
}

// badValue builds the error for a malformed value of bucket/key.
func badValue(bucket, key []byte, format string, args ...any) error {
	return fmt.Errorf("%w: %s/%q: %s", ErrBadValue, bucket, key, fmt.Sprintf(format, args...))
}
