package snapkit

import (
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"runtime"
	"runtime/debug"
	"sync"

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

// keyBucket follows the key bucket through the walk: etcdutl's revision and
// totalKey, and the checks on every revision and KeyValue.
type keyBucket struct {
	fs   *findings
	st   KeyBucketStatus
	last schema.Revision
	any  bool
	// keys holds every key seen, by a 128-bit hash of it, with its state
	// at the head: live or not, and its lease. The live ones are etcdutl's
	// seenKeys, which its totalKey counts. Hashing keeps the map free of
	// pointers (the garbage collector skips it) and its probes short; two
	// keys would have to collide in 128 bits to be miscounted. leased names
	// the keys that hold a lease, for the lease check.
	keys   map[keyID]int32 // index into states: one map probe per pair
	states []keyState
	leased map[keyID]string
	live   int
	// subGaps are revisions whose sub revision does not follow on; they
	// are findings only above the compaction, known once meta is read.
	subGaps []subGap
}

type keyState struct {
	live  bool
	lease int64
}

// keyID is a 128-bit hash of a user key.
type keyID [2]uint64

var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func idOf(key []byte) keyID {
	return keyID{maphash.Bytes(keySeeds[0], key), maphash.Bytes(keySeeds[1], key)}
}

type subGap struct {
	rev  schema.Revision
	want int64
	key  string
}

func newKeyBucket(fs *findings) *keyBucket {
	return &keyBucket{fs: fs, keys: map[keyID]int32{}, leased: map[keyID]string{}}
}

func (kb *keyBucket) finding(revKey []byte, format string, args ...any) {
	kb.fs.add(Finding{Check: CheckKey, Bucket: bucketKey, Key: hex.EncodeToString(revKey), Message: fmt.Sprintf(format, args...)})
}

// decoded is one key bucket pair after decode, ready for apply.
type decoded struct {
	k      []byte // the revision key, for findings
	rev    schema.Revision
	tomb   bool
	parsed bool // the revision key parsed
	ok     bool // and the KeyValue decoded
	id     keyID
	lease  int64
	key    string // the user key, kept only when it holds a lease
}

// decode parses and checks one pair on its own; it touches no state but
// the findings, so pairs can be decoded in parallel.
func (kb *keyBucket) decode(k, v []byte) decoded {
	d := decoded{k: k}
	rev, tomb, err := schema.ParseRevision(k)
	if err != nil {
		kb.finding(k, "%v", err)
		return d
	}
	d.rev, d.tomb, d.parsed = rev, tomb, true
	kv, err := schema.UnmarshalKeyValue(k, v)
	if err != nil {
		kb.finding(k, "%v", err)
		return d
	}
	d.ok, d.id, d.lease = true, idOf(kv.Key), kv.Lease
	if kv.Lease != 0 {
		d.key = string(kv.Key)
	}
	switch {
	case tomb:
		if kv.CreateRevision != 0 || kv.ModRevision != 0 || kv.Version != 0 || len(kv.Value) != 0 || kv.Lease != 0 {
			kb.finding(k, "tombstone of %s holds more than its key", Printable(kv.Key))
		}
	case len(v) == 0:
		// the marker `etcdutl snapshot restore --bump-revision` writes
	case len(kv.Key) == 0:
		kb.finding(k, "revision %s: empty key", rev)
	case kv.ModRevision != rev.Main:
		kb.finding(k, "revision %s: key %s has mod_revision %d", rev, Printable(kv.Key), kv.ModRevision)
	case kv.CreateRevision <= 0 || kv.CreateRevision > kv.ModRevision:
		kb.finding(k, "revision %s: key %s has create_revision %d, mod_revision %d", rev, Printable(kv.Key), kv.CreateRevision, kv.ModRevision)
	case kv.Version < 1 || (kv.Version == 1) != (kv.CreateRevision == kv.ModRevision):
		kb.finding(k, "revision %s: key %s has version %d with create_revision %d", rev, Printable(kv.Key), kv.Version, kv.CreateRevision)
	}
	return d
}

// apply replays one decoded pair, in bucket order: revision order and the
// live-key set.
func (kb *keyBucket) apply(d decoded) {
	kb.st.Revisions++
	if !d.parsed {
		return
	}
	rev := d.rev
	if kb.any {
		switch c := rev.Compare(kb.last); {
		case c == 0:
			kb.finding(d.k, "revision %s appears twice (as a put and a tombstone)", rev)
		case c < 0:
			kb.finding(d.k, "revision %s after %s", rev, kb.last)
		case rev.Main == kb.last.Main && rev.Sub != kb.last.Sub+1 && len(kb.subGaps) < maxFindings:
			kb.subGaps = append(kb.subGaps, subGap{rev: rev, want: kb.last.Sub + 1, key: hex.EncodeToString(d.k)})
		case rev.Main != kb.last.Main && rev.Sub != 0 && len(kb.subGaps) < maxFindings:
			kb.subGaps = append(kb.subGaps, subGap{rev: rev, want: 0, key: hex.EncodeToString(d.k)})
		}
	} else {
		kb.st.FirstRevision = rev.String()
	}
	kb.last, kb.any = rev, true
	if !d.ok {
		return
	}
	if d.tomb {
		kb.st.Tombstones++
		if i, ok := kb.keys[d.id]; ok && kb.states[i].live {
			kb.states[i] = keyState{}
			kb.live--
		}
		return
	}
	i, ok := kb.keys[d.id]
	if !ok {
		i = int32(len(kb.states))
		kb.keys[d.id] = i
		kb.states = append(kb.states, keyState{})
	}
	if !kb.states[i].live {
		kb.live++
	}
	kb.states[i] = keyState{live: true, lease: d.lease}
	if d.lease != 0 {
		kb.leased[d.id] = d.key
	}
}

// finish fills in the status once the key bucket has been read.
// state returns the head state of the key with this id.
func (kb *keyBucket) state(id keyID) keyState {
	if i, ok := kb.keys[id]; ok {
		return kb.states[i]
	}
	return keyState{}
}

func (kb *keyBucket) finish(st *Status) {
	if kb.any {
		st.Revision = kb.last.Main
		kb.st.LatestRevision = kb.last.String()
	}
	st.TotalKey = kb.live
	for _, ks := range kb.states {
		if ks.live && ks.lease != 0 {
			kb.st.LiveWithLease++
		}
	}
	st.KeyBucket = kb.st
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

// kvPair is one pair of the key bucket, pointing into the mapping.
type kvPair struct{ k, v []byte }

// batch is a run of pairs in bucket order, and then their decoding.
type batch struct {
	seq   int
	pairs []kvPair
	decs  []decoded
}

// keyPipe decodes the key bucket beside the walk: the walk hands over
// batches of pairs, decoders (as many as CPUs, order does not matter to
// them) decode and check them, and one applier replays them in order.
type keyPipe struct {
	kb      *keyBucket
	cur     *batch
	seq     int
	jobs    chan *batch
	results chan *batch
	free    chan *batch
	decWG   sync.WaitGroup
	done    chan struct{}
	mu      sync.Mutex
	err     error // a fault while reading the mapping
}

const pipeBatch = 2048

func newKeyPipe(kb *keyBucket) *keyPipe {
	n := max(1, runtime.GOMAXPROCS(0))
	p := &keyPipe{kb: kb, jobs: make(chan *batch, 2*n), results: make(chan *batch, 2*n),
		free: make(chan *batch, 4*n+2), done: make(chan struct{})}
	p.cur = p.newBatch()
	for range n {
		p.decWG.Add(1)
		go p.decoder()
	}
	go p.applier()
	return p
}

func (p *keyPipe) newBatch() *batch {
	select {
	case b := <-p.free:
		b.pairs, b.decs = b.pairs[:0], b.decs[:0]
		return b
	default:
		return &batch{pairs: make([]kvPair, 0, pipeBatch), decs: make([]decoded, 0, pipeBatch)}
	}
}

// guard turns a fault while reading the mapping into p.err.
func (p *keyPipe) guard() {
	if r := recover(); r != nil {
		p.mu.Lock()
		p.err = fmt.Errorf("snapkit: fault while reading the key bucket: %v", r)
		p.mu.Unlock()
	}
}

func (p *keyPipe) decoder() {
	defer p.decWG.Done()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	for b := range p.jobs {
		func() {
			defer p.guard()
			for _, kv := range b.pairs {
				b.decs = append(b.decs, p.kb.decode(kv.k, kv.v))
			}
		}()
		p.results <- b
	}
}

func (p *keyPipe) applier() {
	defer close(p.done)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	pending := map[int]*batch{}
	next := 0
	for b := range p.results {
		pending[b.seq] = b
		for b := pending[next]; b != nil; b = pending[next] {
			delete(pending, next)
			next++
			func() {
				defer p.guard()
				for _, d := range b.decs {
					p.kb.apply(d)
				}
			}()
			select {
			case p.free <- b:
			default:
			}
		}
	}
}

func (p *keyPipe) add(k, v []byte) {
	p.cur.pairs = append(p.cur.pairs, kvPair{k, v})
	if len(p.cur.pairs) == pipeBatch {
		p.flush()
	}
}

func (p *keyPipe) flush() {
	p.cur.seq = p.seq
	p.seq++
	p.jobs <- p.cur
	p.cur = p.newBatch()
}

// close hands over the last batch and waits for every goroutine.
func (p *keyPipe) close() error {
	if len(p.cur.pairs) > 0 {
		p.flush()
	}
	close(p.jobs)
	p.decWG.Wait()
	close(p.results)
	<-p.done
	return p.err
}
