package schema

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
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
	if _, _, err := ParseRevision(revKey); err != nil {
		return nil, err
	}
	kv := new(mvccpb.KeyValue)
	if err := kv.Unmarshal(value); err != nil {
		return nil, badKeyValue(revKey, "%v", err)
	}
	if len(kv.XXX_unrecognized) > 0 {
		return nil, badKeyValue(revKey, "%d bytes of unknown fields", len(kv.XXX_unrecognized))
	}
	return kv, nil
}

// KeyValueView is a key bucket value decoded without copying: it has the
// fields of mvccpb.KeyValue, and Key and Value alias the bytes it was
// decoded from, so it is valid only as long as they are.
type KeyValueView struct {
	Key            []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Value          []byte
	Lease          int64
}

// The field numbers of mvccpb.KeyValue.
const (
	kvKey            protowire.Number = 1
	kvCreateRevision protowire.Number = 2
	kvModRevision    protowire.Number = 3
	kvVersion        protowire.Number = 4
	kvValue          protowire.Number = 5
	kvLease          protowire.Number = 6
)

// ViewKeyValue decodes value, stored under the key bucket key revKey, for
// readers that look at every pair of the bucket and keep nothing: it
// copies nothing and allocates only when it fails. It is at least as strict
// as UnmarshalKeyValue (every value it accepts, UnmarshalKeyValue decodes
// to the same fields), and rejects in addition the non-canonical varints
// that protowire rejects. revKey only names the pair in errors: check it
// with ParseRevision. Errors wrap ErrBadValue.
func ViewKeyValue(revKey, value []byte) (KeyValueView, error) {
	var kv KeyValueView
	for b := value; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return KeyValueView{}, badKeyValue(revKey, "offset %d: tag: %v", len(value)-len(b), protowire.ParseError(n))
		}
		var dst *int64
		switch num {
		case kvCreateRevision:
			dst = &kv.CreateRevision
		case kvModRevision:
			dst = &kv.ModRevision
		case kvVersion:
			dst = &kv.Version
		case kvLease:
			dst = &kv.Lease
		case kvKey, kvValue:
		default:
			return KeyValueView{}, badKeyValue(revKey, "offset %d: unknown field %d", len(value)-len(b), num)
		}
		want := protowire.BytesType
		if dst != nil {
			want = protowire.VarintType
		}
		if typ != want {
			return KeyValueView{}, badKeyValue(revKey, "offset %d: field %d has wire type %d, want %d", len(value)-len(b), num, typ, want)
		}
		b = b[n:]
		if dst != nil {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return KeyValueView{}, badKeyValue(revKey, "field %d: %v", num, protowire.ParseError(n))
			}
			*dst, b = int64(v), b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return KeyValueView{}, badKeyValue(revKey, "field %d: %v", num, protowire.ParseError(n))
		}
		if num == kvKey {
			kv.Key = v
		} else {
			kv.Value = v
		}
		b = b[n:]
	}
	return kv, nil
}

// badKeyValue builds the error for a key bucket value that does not
// decode, naming its key and, when the key parses, its revision.
func badKeyValue(revKey []byte, format string, args ...any) error {
	what := "KeyValue"
	if rev, _, err := ParseRevision(revKey); err == nil {
		what = "revision " + rev.String() + ": KeyValue"
	}
	return badValue(KeyBucket, revKey, "%s: %s", what, fmt.Sprintf(format, args...))
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
// (inclusive) onwards, in revision order, decoding each strictly into a
// KeyValue of its own (ForEachKeyView's decoding, copied). It stops at the
// first error, from decoding or from fn. A db without a key bucket gives
// ErrBucketMissing.
func ForEachKey(tx *bolt.Tx, from Revision, fn func(KeyEntry) error) error {
	return ForEachKeyView(tx, from, func(e *KeyView) error {
		kv := &mvccpb.KeyValue{Key: bytes.Clone(e.KV.Key), CreateRevision: e.KV.CreateRevision, ModRevision: e.KV.ModRevision,
			Version: e.KV.Version, Value: bytes.Clone(e.KV.Value), Lease: e.KV.Lease}
		return fn(KeyEntry{Rev: e.Rev, Tombstone: e.Tombstone, KV: kv})
	})
}

// KeyView is one pair of the key bucket decoded without copying
// (ViewKeyValue): its KV aliases the transaction's pages.
type KeyView struct {
	Rev       Revision
	Tombstone bool
	KV        KeyValueView
}

// ForEachKeyView is ForEachKey for readers that keep nothing of a pair but
// what they copy: fn sees each pair as a KeyView, valid only during the
// call, and nothing is allocated per pair.
func ForEachKeyView(tx *bolt.Tx, from Revision, fn func(*KeyView) error) error {
	b := tx.Bucket(KeyBucket)
	if b == nil {
		return fmt.Errorf("%w: %q", ErrBucketMissing, KeyBucket)
	}
	c := b.Cursor()
	var e KeyView
	for k, v := c.Seek(RevisionBytes(from)); k != nil; k, v = c.Next() {
		var err error
		if e.Rev, e.Tombstone, err = ParseRevision(k); err != nil {
			return err
		}
		if e.KV, err = ViewKeyValue(k, v); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
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
