package schema

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// MarshalKeyValue encodes kv as a key bucket value.
func MarshalKeyValue(kv *mvccpb.KeyValue) ([]byte, error) {
	b, err := kv.Marshal()
	if err != nil {
		return nil, fmt.Errorf("schema: marshal KeyValue %q: %w", kv.Key, err)
	}
	return b, nil
}

// UnmarshalKeyValue decodes the value stored under the key bucket key
// revKey. It is strict: revKey must parse, the value must be a well-formed
// mvccpb.KeyValue with no unknown fields. An empty value (the marker that
// `etcdutl snapshot restore --bump-revision` writes) decodes to an empty
// KeyValue. Errors wrap ErrBadRevision or ErrBadValue and name revKey.
func UnmarshalKeyValue(revKey, value []byte) (*mvccpb.KeyValue, error) {
	rev, _, err := ParseRevision(revKey)
	if err != nil {
		return nil, err
	}
	kv := new(mvccpb.KeyValue)
	if err := kv.Unmarshal(value); err != nil {
		return nil, badValue(KeyBucket, revKey, "revision %s: KeyValue: %v", rev, err)
	}
	if len(kv.XXX_unrecognized) > 0 {
		return nil, badValue(KeyBucket, revKey, "revision %s: KeyValue has %d bytes of unknown fields", rev, len(kv.XXX_unrecognized))
	}
	return kv, nil
}

// PutKeyValue writes kv at rev into tx's key bucket.
func PutKeyValue(tx *bolt.Tx, rev Revision, kv *mvccpb.KeyValue) error {
	return putKey(tx, AppendRevision(nil, rev, false), kv)
}

// PutTombstone writes the deletion of key at rev into tx's key bucket.
func PutTombstone(tx *bolt.Tx, rev Revision, key []byte) error {
	return putKey(tx, AppendRevision(nil, rev, true), &mvccpb.KeyValue{Key: key})
}

func putKey(tx *bolt.Tx, revKey []byte, kv *mvccpb.KeyValue) error {
	b := Key(tx)
	if b == nil {
		return fmt.Errorf("%w: %q", ErrBucketMissing, KeyBucket)
	}
	v, err := MarshalKeyValue(kv)
	if err != nil {
		return err
	}
	if err := b.Put(revKey, v); err != nil {
		return fmt.Errorf("schema: put key bucket %x: %w", revKey, err)
	}
	return nil
}

// KeyEntry is one decoded pair of the key bucket.
type KeyEntry struct {
	Rev       Revision
	Tombstone bool
	KV        *mvccpb.KeyValue
}

// ForEachKey calls fn for every pair of the key bucket from revision from
// (inclusive) onwards, in revision order, decoding each strictly. It stops at
// the first error, from decoding or from fn. A db without a key bucket gives
// ErrBucketMissing.
func ForEachKey(tx *bolt.Tx, from Revision, fn func(KeyEntry) error) error {
	b := tx.Bucket(KeyBucket)
	if b == nil {
		return fmt.Errorf("%w: %q", ErrBucketMissing, KeyBucket)
	}
	c := b.Cursor()
	for k, v := c.Seek(RevisionBytes(from)); k != nil; k, v = c.Next() {
		rev, tomb, err := ParseRevision(k)
		if err != nil {
			return err
		}
		kv, err := UnmarshalKeyValue(k, v)
		if err != nil {
			return err
		}
		if err := fn(KeyEntry{Rev: rev, Tombstone: tomb, KV: kv}); err != nil {
			return err
		}
	}
	return nil
}

// LatestRevision returns the revision of the last key bucket pair, and
// false if the bucket is missing or empty.
func LatestRevision(tx *bolt.Tx) (Revision, bool, error) {
	b := tx.Bucket(KeyBucket)
	if b == nil {
		return Revision{}, false, nil
	}
	k, _ := b.Cursor().Last()
	if k == nil {
		return Revision{}, false, nil
	}
	rev, _, err := ParseRevision(k)
	if err != nil {
		return Revision{}, false, err
	}
	return rev, true, nil
}
