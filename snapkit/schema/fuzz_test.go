package schema

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

// fuzzSeedPairs is how many key bucket pairs of each fixture seed a fuzzer.
const fuzzSeedPairs = 64

// seedKeyPairs feeds add the first pairs of every fixture snapshot's key
// bucket, and the meta compaction revisions.
func seedKeyPairs(f *testing.F, add func(k, v []byte)) {
	for _, set := range fixture.Sets {
		view(f, snapshotDB(f, set), func(tx *bolt.Tx) {
			c := tx.Bucket(KeyBucket).Cursor()
			n := 0
			for k, v := c.First(); k != nil && n < fuzzSeedPairs; k, v = c.Next() {
				add(bytes.Clone(k), bytes.Clone(v))
				n++
			}
			add(bytes.Clone(get(tx, MetaBucket, ScheduledCompactRevKey)), nil)
		})
	}
	add(TombstoneBytes(Revision{Main: 9, Sub: 1}), []byte{0x0a, 0x01, 'k'})
}

func FuzzParseRevision(f *testing.F) {
	seedKeyPairs(f, func(k, _ []byte) { f.Add(k) })
	f.Fuzz(func(t *testing.T, b []byte) {
		rev, tomb, err := ParseRevision(b)
		if err != nil {
			return
		}
		if again := AppendRevision(nil, rev, tomb); !bytes.Equal(again, b) {
			t.Fatalf("ParseRevision(%x) = %s %v, which encodes as %x", b, rev, tomb, again)
		}
	})
}

func FuzzUnmarshalKeyValue(f *testing.F) {
	seedKeyPairs(f, func(k, v []byte) { f.Add(k, v) })
	f.Fuzz(func(t *testing.T, k, v []byte) {
		kv, err := UnmarshalKeyValue(k, v)
		if err != nil {
			return
		}
		b, err := MarshalKeyValue(kv)
		if err != nil {
			t.Fatalf("decoded %v does not encode: %v", kv, err)
		}
		again, err := UnmarshalKeyValue(k, b)
		if err != nil || again.String() != kv.String() {
			t.Fatalf("re-encoding of %v decodes as %v, %v", kv, again, err)
		}
	})
}

// ViewKeyValue agrees with UnmarshalKeyValue: whatever it accepts decodes
// to the same fields, and it accepts the canonical encoding of whatever
// UnmarshalKeyValue accepts.
func FuzzViewKeyValue(f *testing.F) {
	seedKeyPairs(f, func(k, v []byte) { f.Add(k, v) })
	f.Add(RevisionBytes(Revision{Main: 3}), []byte{0x0a, 0x00, 0x10, 0x80, 0x01})
	f.Add(RevisionBytes(Revision{Main: 3}), []byte{0x38, 0x01}) // field 7
	f.Fuzz(func(t *testing.T, k, v []byte) {
		if _, _, err := ParseRevision(k); err != nil {
			return
		}
		same := func(view KeyValueView, kv *mvccpb.KeyValue) bool {
			return bytes.Equal(view.Key, kv.Key) && bytes.Equal(view.Value, kv.Value) &&
				view.CreateRevision == kv.CreateRevision && view.ModRevision == kv.ModRevision &&
				view.Version == kv.Version && view.Lease == kv.Lease
		}
		view, verr := ViewKeyValue(k, v)
		kv, uerr := UnmarshalKeyValue(k, v)
		if verr == nil && (uerr != nil || !same(view, kv)) {
			t.Fatalf("%x: ViewKeyValue = %+v, UnmarshalKeyValue = %v, %v", v, view, kv, uerr)
		}
		if uerr != nil {
			return
		}
		canonical, err := MarshalKeyValue(kv)
		if err != nil {
			t.Fatal(err)
		}
		if view, err := ViewKeyValue(k, canonical); err != nil || !same(view, kv) {
			t.Fatalf("%x: ViewKeyValue = %+v, %v, UnmarshalKeyValue = %v", canonical, view, err, kv)
		}
	})
}
