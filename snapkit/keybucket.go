package snapkit

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"slices"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// KeyBucketStatus summarizes the key bucket.
type KeyBucketStatus struct {
	Revisions      int    `json:"revisions"` // pairs, tombstones included
	Tombstones     int    `json:"tombstones"`
	FirstRevision  string `json:"firstRevision,omitempty"`
	LatestRevision string `json:"latestRevision,omitempty"`
	LiveWithLease  int    `json:"liveKeysWithLease"`
}

// keyBucket follows the key bucket through the walk, pair by pair in
// bucket order, in the walk's goroutine: etcdutl's revision and totalKey,
// and the checks on every revision and KeyValue. It decodes each pair in
// place (schema.ViewKeyValue) and allocates nothing for a pair but the
// growth of its lists.
//
// etcdutl's totalKey is the number of user keys whose last pair is a put
// (it replays puts and tombstones into a set of keys). A set of every key,
// probed once per pair, misses the CPU caches on most probes (on the
// 870,000 pairs of the benchmark, 0.5 s of CPU), so instead each pair is
// recorded as a keyEvent in one of keyParts lists, picked by a hash of its
// key: all the events of a key land in one list, in bucket order. finish
// replays each list into a set small enough to stay in cache. The lists
// hold at most budget events: past it they are compacted to the last event
// of each key, and spilled to a file in spillDir if that is not enough
// (keySpill), so memory does not grow with the keys either.
type keyBucket struct {
	fs   *findings
	st   KeyBucketStatus
	last schema.Revision
	any  bool

	parts [keyParts][]keyEvent
	// held is the number of events in parts, at most budget.
	held, budget int
	// spill holds what did not fit, once the parts first outgrew the
	// budget (in spillDir; "" is os.TempDir()); err is its first error.
	spillDir string
	spill    *keySpill
	err      error
	// leasedPuts are the puts that hold a lease, to name the key of a
	// finding of the lease check; compacted as the parts are.
	leasedPuts      []leasedPut
	leasedPutsLimit int
	// liveLeased are the live keys that hold a lease, once finished.
	liveLeased []leasedKey
	// wantPos asks finish for livePos.
	wantPos bool
	// wantCRC asks for the CRC-32C of each pair, and finish for keptCRC:
	// HashKV with the keep set of livePos (see keyBucket.hashKV).
	wantCRC bool
	keptCRC uint32
	// livePos has a bit set at the position in the bucket (0 for its
	// first pair) of the last pair of each live key, once finished: the
	// pairs that HashKV's keep set holds (see hashKVWalk). One bit a pair.
	livePos bitset
	// subGaps are revisions whose sub revision does not follow on; they
	// are findings only above the compaction, known once meta is read.
	subGaps []subGap
}

// keyParts is how many lists the key events are split into: about 3,000
// events each for a million revisions.
const keyParts = 256

// minCompactLen is the length at which the list of leased puts is first
// compacted to the last put of each key. After a compaction the next one
// waits until the list has doubled, so that memory follows the number of
// distinct keys, not of revisions (a long history of a few hot keys), at
// an amortized constant cost per event.
const minCompactLen = 1 << 16

// keepLast compacts events to the last one of each key, in their order,
// and returns them with the length at which to compact next.
func keepLast[E any](events []E, id func(*E) keyID) ([]E, int) {
	last := make(map[keyID]int, len(events)/2)
	for i := range events {
		last[id(&events[i])] = i
	}
	kept := events[:0]
	for i := range events {
		if last[id(&events[i])] == i {
			kept = append(kept, events[i])
		}
	}
	clear(events[len(kept):])
	return kept, max(minCompactLen, 2*len(kept))
}

// keyEvent is a put or tombstone of the user key whose hash is id. Keys
// are known by a 128-bit hash: two keys would have to collide in 128 bits
// to be miscounted, and the events hold no pointers (the garbage collector
// skips them).
type keyEvent struct {
	id    keyID
	lease int64  // a put's lease
	pos   uint32 // the pair's position in the bucket
	tomb  bool
	// crc is the CRC-32C of the pair's key and value, n their length
	// (with keyBucket.wantCRC).
	crc, n uint32
}

// keyID is a 128-bit hash of a user key.
type keyID [2]uint64

var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func idOf(key []byte) keyID {
	return keyID{maphash.Bytes(keySeeds[0], key), maphash.Bytes(keySeeds[1], key)}
}

type leasedPut struct {
	id  keyID
	rev schema.Revision
}

type leasedKey struct {
	id    keyID
	lease int64
}

type subGap struct {
	rev  schema.Revision
	want int64
	key  string
}

func newKeyBucket(fs *findings, spillDir string) *keyBucket {
	return &keyBucket{fs: fs, budget: keyBudget, spillDir: spillDir}
}

// close removes the spill file, if any.
func (kb *keyBucket) close() {
	if kb.spill != nil {
		kb.spill.Close()
	}
}

func (kb *keyBucket) finding(revKey []byte, format string, args ...any) {
	kb.fs.add(Finding{Check: CheckKey, Bucket: bucketKey, Key: hex.EncodeToString(revKey), Message: fmt.Sprintf(format, args...)})
}

// add reads the next pair of the key bucket: revision key k, value v.
func (kb *keyBucket) add(k, v []byte) {
	kb.st.Revisions++
	rev, tomb, err := schema.ParseRevision(k)
	if err != nil {
		kb.finding(k, "%v", err)
		return
	}
	kb.checkOrder(k, rev)
	kv, err := schema.ViewKeyValue(k, v)
	if err != nil {
		kb.finding(k, "%v", err)
		return
	}
	kb.checkKeyValue(k, rev, tomb, len(v) == 0, &kv)
	ev := keyEvent{id: idOf(kv.Key), lease: kv.Lease, pos: uint32(kb.st.Revisions - 1), tomb: tomb}
	if kb.wantCRC {
		ev.crc = crc32.Update(crc32.Update(0, castagnoli, k), castagnoli, v)
		ev.n = uint32(len(k) + len(v))
	}
	kb.record(ev, rev)
}

// checkOrder checks that rev follows the previous pair's revision.
func (kb *keyBucket) checkOrder(k []byte, rev schema.Revision) {
	if !kb.any {
		kb.st.FirstRevision = rev.String()
		kb.last, kb.any = rev, true
		return
	}
	switch c := rev.Compare(kb.last); {
	case c == 0:
		kb.finding(k, "revision %s appears twice (as a put and a tombstone)", rev)
	case c < 0:
		kb.finding(k, "revision %s after %s", rev, kb.last)
	case rev.Main == kb.last.Main && rev.Sub != kb.last.Sub+1 && len(kb.subGaps) < maxFindings:
		kb.subGaps = append(kb.subGaps, subGap{rev: rev, want: kb.last.Sub + 1, key: hex.EncodeToString(k)})
	case rev.Main != kb.last.Main && rev.Sub != 0 && len(kb.subGaps) < maxFindings:
		kb.subGaps = append(kb.subGaps, subGap{rev: rev, want: 0, key: hex.EncodeToString(k)})
	}
	kb.last = rev
}

// checkKeyValue checks that a KeyValue agrees with its revision: a
// tombstone holds only its key, a put its mod revision, a create revision
// not after it and a version that counts from 1 at creation. empty is the
// marker that `etcdutl snapshot restore --bump-revision` writes.
func (kb *keyBucket) checkKeyValue(k []byte, rev schema.Revision, tomb, empty bool, kv *schema.KeyValueView) {
	switch {
	case tomb:
		if kv.CreateRevision != 0 || kv.ModRevision != 0 || kv.Version != 0 || len(kv.Value) != 0 || kv.Lease != 0 {
			kb.finding(k, "tombstone of %s holds more than its key", Printable(kv.Key))
		}
	case empty:
	case len(kv.Key) == 0:
		kb.finding(k, "revision %s: empty key", rev)
	case kv.ModRevision != rev.Main:
		kb.finding(k, "revision %s: key %s has mod_revision %d", rev, Printable(kv.Key), kv.ModRevision)
	case kv.CreateRevision <= 0 || kv.CreateRevision > kv.ModRevision:
		kb.finding(k, "revision %s: key %s has create_revision %d, mod_revision %d", rev, Printable(kv.Key), kv.CreateRevision, kv.ModRevision)
	case kv.Version < 1 || (kv.Version == 1) != (kv.CreateRevision == kv.ModRevision):
		kb.finding(k, "revision %s: key %s has version %d with create_revision %d", rev, Printable(kv.Key), kv.Version, kv.CreateRevision)
	}
}

// record keeps a put or a tombstone of a user key, at rev, for finish.
func (kb *keyBucket) record(ev keyEvent, rev schema.Revision) {
	i := ev.id[0] % keyParts
	kb.parts[i] = append(kb.parts[i], ev)
	if kb.held++; kb.held >= kb.budget {
		kb.shrink()
	}
	switch {
	case ev.tomb:
		kb.st.Tombstones++
	case ev.lease != 0:
		kb.leasedPuts = append(kb.leasedPuts, leasedPut{id: ev.id, rev: rev})
		if len(kb.leasedPuts) >= max(minCompactLen, kb.leasedPutsLimit) {
			kb.leasedPuts, kb.leasedPutsLimit = keepLast(kb.leasedPuts, func(p *leasedPut) keyID { return p.id })
		}
	}
}

// shrink compacts the parts, once they hold the budget, to the last event
// of each key; if that leaves half the budget or more, it spills them all.
// Each event is compacted or spilled a bounded number of times on average.
func (kb *keyBucket) shrink() {
	kb.held = 0
	for i := range kb.parts {
		kb.parts[i], _ = keepLast(kb.parts[i], func(e *keyEvent) keyID { return e.id })
		kb.held += len(kb.parts[i])
	}
	if kb.held < kb.budget/2 || kb.err != nil {
		return
	}
	if kb.spill == nil {
		if kb.spill, kb.err = newKeySpill(kb.spillDir); kb.err != nil {
			return
		}
	}
	if kb.err = kb.spill.write(&kb.parts); kb.err != nil {
		return
	}
	for i := range kb.parts {
		kb.parts[i] = kb.parts[i][:0]
	}
	kb.held = 0
}

// finish replays the puts and tombstones as etcdutl does (a put makes its
// key live, an empty bump marker too, as the key ""; a tombstone makes it
// dead), and fills in the status once the key bucket has been read. Its
// error is the spill file's.
func (kb *keyBucket) finish(st *Status) error {
	if kb.err != nil {
		return kb.err
	}
	if kb.any {
		st.Revision = kb.last.Main
		kb.st.LatestRevision = kb.last.String()
	}
	type head struct {
		live   bool
		lease  int64
		pos    uint32
		crc, n uint32
	}
	heads := map[keyID]head{}
	if kb.wantPos {
		kb.livePos = make(bitset, (kb.st.Revisions+63)/64)
	}
	var spilled []keyEvent
	var kept []keptPair // with wantCRC
	for i, events := range kb.parts {
		if kb.spill != nil {
			var err error
			if spilled, err = kb.spill.read(i, spilled[:0]); err != nil {
				return err
			}
			spilled = append(spilled, events...)
			events = spilled
		}
		clear(heads)
		for _, ev := range events {
			heads[ev.id] = head{live: !ev.tomb, lease: ev.lease, pos: ev.pos, crc: ev.crc, n: ev.n}
		}
		kb.parts[i] = nil
		for id, h := range heads {
			if !h.live {
				continue
			}
			st.TotalKey++
			if kb.wantPos {
				kb.livePos.set(uint64(h.pos))
			}
			if kb.wantCRC {
				kept = append(kept, keptPair{pos: h.pos, crc: h.crc, n: h.n})
			}
			if h.lease != 0 {
				kb.liveLeased = append(kb.liveLeased, leasedKey{id: id, lease: h.lease})
			}
		}
	}
	kb.st.LiveWithLease = len(kb.liveLeased)
	st.KeyBucket = kb.st
	if kb.wantCRC {
		slices.SortFunc(kept, func(a, b keptPair) int { return cmp.Compare(a.pos, b.pos) })
		var c crcCombiner
		kb.keptCRC = crc32.Update(0, castagnoli, schema.KeyBucket)
		for _, p := range kept {
			kb.keptCRC = c.add(kb.keptCRC, p.crc, p.n)
		}
	}
	return nil
}

// keptPair is the last pair of a live key, for keptCRC.
type keptPair struct {
	pos, crc, n uint32
}

// lastLeasedPuts returns the revision of the last put of each of ids that
// held a lease.
func (kb *keyBucket) lastLeasedPuts(ids map[keyID]bool) map[keyID]schema.Revision {
	revs := make(map[keyID]schema.Revision, len(ids))
	for _, p := range kb.leasedPuts {
		if ids[p.id] {
			revs[p.id] = p.rev
		}
	}
	return revs
}

// checkSubRevisions reports the sub-revision gaps above the compaction:
// below it, compaction removes revisions and leaves gaps on purpose.
func (kb *keyBucket) checkSubRevisions(compactRev int64) {
	for _, g := range kb.subGaps {
		if g.rev.Main > compactRev {
			kb.fs.add(Finding{Check: CheckKey, Bucket: bucketKey, Key: g.key,
				Message: fmt.Sprintf("revision %s: sub revision should be %d", g.rev, g.want)})
		}
	}
}
