package snapkit

import (
	"fmt"
	"slices"
	"testing"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

func TestKeepLastKeepsTheLastEventOfEachKeyInOrder(t *testing.T) {
	a, b, c := idOf([]byte("a")), idOf([]byte("b")), idOf([]byte("c"))
	events := []keyEvent{{id: a}, {id: b, lease: 7}, {id: a, tomb: true}, {id: c}, {id: b}}
	got, next := keepLast(events, func(e *keyEvent) keyID { return e.id })
	want := []keyEvent{{id: a, tomb: true}, {id: c}, {id: b}}
	if !slices.Equal(got, want) {
		t.Fatalf("kept %+v, want %+v", got, want)
	}
	if next != minCompactLen {
		t.Fatalf("next compaction at %d, want %d", next, minCompactLen)
	}
}

// A long history of a few keys must not cost memory for every revision:
// the event lists stay near the number of distinct keys, and the counts
// come out as without compaction.
func TestKeyBucketMemoryFollowsKeysNotRevisions(t *testing.T) {
	const keys, revisions = 5, 400_000
	kb := newKeyBucket(&findings{})
	for r := int64(2); r < revisions+2; r++ {
		key := []byte(fmt.Sprintf("hot/%d", r%keys))
		tomb := r%keys == 0 && r > revisions-keys // the last round deletes hot/0
		kv := schema.KeyValueView{Key: key, ModRevision: r, CreateRevision: 2, Version: r - 1}
		if r%keys == 1 {
			kv.Lease = 42
		}
		kb.record(uint32(r-2), schema.Revision{Main: r}, tomb, &kv)
	}
	held := len(kb.leasedPuts)
	for _, p := range kb.parts {
		held += len(p)
	}
	if limit := 2 * minCompactLen; held > limit {
		t.Fatalf("%d events held for %d keys over %d revisions, want at most %d", held, keys, revisions, limit)
	}
	var st Status
	kb.finish(&st)
	if st.TotalKey != keys-1 || st.KeyBucket.LiveWithLease != 1 {
		t.Fatalf("totalKey %d, live with lease %d; want %d and 1", st.TotalKey, st.KeyBucket.LiveWithLease, keys-1)
	}
	leased := kb.lastLeasedPuts(map[keyID]bool{idOf([]byte("hot/1")): true})
	if rev := leased[idOf([]byte("hot/1"))]; rev.Main != revisions+1 {
		t.Fatalf("last leased put of hot/1 at %v, want %d", rev, revisions+1)
	}
}
