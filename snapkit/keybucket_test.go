package snapkit

import (
	"cmp"
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
	kb := newKeyBucket(&findings{}, t.TempDir())
	defer kb.close()
	for r := int64(2); r < revisions+2; r++ {
		key := []byte(fmt.Sprintf("hot/%d", r%keys))
		tomb := r%keys == 0 && r > revisions-keys // the last round deletes hot/0
		ev := keyEvent{id: idOf(key), pos: uint32(r - 2), tomb: tomb}
		if r%keys == 1 {
			ev.lease = 42
		}
		kb.record(ev, schema.Revision{Main: r})
	}
	held := len(kb.leasedPuts)
	for _, p := range kb.parts {
		held += len(p)
	}
	if limit := kb.budget + minCompactLen; held > limit || kb.spill != nil {
		t.Fatalf("%d events held for %d keys over %d revisions (spilled: %v), want at most %d", held, keys, revisions, kb.spill != nil, limit)
	}
	var st Status
	if err := kb.finish(&st); err != nil {
		t.Fatal(err)
	}
	if st.TotalKey != keys-1 || st.KeyBucket.LiveWithLease != 1 {
		t.Fatalf("totalKey %d, live with lease %d; want %d and 1", st.TotalKey, st.KeyBucket.LiveWithLease, keys-1)
	}
	leased := kb.lastLeasedPuts(map[keyID]bool{idOf([]byte("hot/1")): true})
	if rev := leased[idOf([]byte("hot/1"))]; rev.Main != revisions+1 {
		t.Fatalf("last leased put of hot/1 at %v, want %d", rev, revisions+1)
	}
}

// Many distinct keys: the events held in memory never pass the budget
// (the rest is spilled to a file), and the counts, HashKV's keep set and
// the live leased keys, and the CRC of the kept pairs come out as when
// everything fits.
func TestKeyBucketSpillsPastItsBudget(t *testing.T) {
	const keys, revisions, budget = 5000, 12000, 512
	feed := func(kb *keyBucket) (maxHeld int) {
		for r := int64(2); r < revisions+2; r++ {
			n := (r * 7919) % keys // every key, in a scattered order, more than once
			key := []byte(fmt.Sprintf("k/%d", n))
			tomb := r%11 == 0
			ev := keyEvent{id: idOf(key), pos: uint32(r - 2), tomb: tomb, crc: uint32(r * 2654435761), n: uint32(17 + r%1000)}
			if !tomb && n%3 == 0 {
				ev.lease = n
			}
			kb.st.Revisions++
			kb.record(ev, schema.Revision{Main: r})
			maxHeld = max(maxHeld, kb.held)
		}
		return maxHeld
	}
	var sts [2]Status
	var kbs [2]*keyBucket
	for i, b := range []int{1 << 30, budget} {
		kb := newKeyBucket(&findings{}, t.TempDir())
		defer kb.close()
		kb.budget, kb.wantPos, kb.wantCRC = b, true, true
		if held := feed(kb); held > b {
			t.Fatalf("budget %d: %d events held", b, held)
		}
		if err := kb.finish(&sts[i]); err != nil {
			t.Fatal(err)
		}
		kbs[i] = kb
	}
	if kbs[0].spill != nil || kbs[1].spill == nil || len(kbs[1].spill.runs) < 2 {
		t.Fatalf("spilled without a budget: %v; runs with one: %v", kbs[0].spill != nil, kbs[1].spill)
	}
	sortLeased := func(l []leasedKey) []leasedKey {
		return slices.SortedFunc(slices.Values(l), func(a, b leasedKey) int { return cmp.Compare(a.lease, b.lease) })
	}
	if kbs[0].keptCRC != kbs[1].keptCRC {
		t.Fatalf("CRC of the kept pairs %08x spilled, %08x in memory", kbs[1].keptCRC, kbs[0].keptCRC)
	}
	if sts[0].TotalKey == 0 || sts[0].TotalKey != sts[1].TotalKey || sts[0].KeyBucket != sts[1].KeyBucket || len(kbs[0].livePos) == 0 ||
		!slices.Equal(kbs[0].livePos, kbs[1].livePos) || !slices.Equal(sortLeased(kbs[0].liveLeased), sortLeased(kbs[1].liveLeased)) {
		t.Fatalf("spilled: totalKey %d %+v, live positions %d words, %d live leased; in memory: %d %+v, %d, %d",
			sts[1].TotalKey, sts[1].KeyBucket, len(kbs[1].livePos), len(kbs[1].liveLeased),
			sts[0].TotalKey, sts[0].KeyBucket, len(kbs[0].livePos), len(kbs[0].liveLeased))
	}
}
