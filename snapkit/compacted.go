package snapkit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/fsync"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// CompactedResult says what WriteCompacted read and wrote.
type CompactedResult struct {
	// LastRevision is the main revision of the last pair of the source's
	// key bucket (0 if it is empty): the store's revision, unless its
	// compaction is higher (the meta bucket, copied, says so).
	LastRevision int64 `json:"lastRevision"`
	// Revisions are the pairs of the source's key bucket, Kept those
	// written: the last put of each live key.
	Revisions int `json:"revisions"`
	Kept      int `json:"kept"`
	// Marker is the revision of the bump marker written (the empty value
	// that `etcdutl snapshot restore --bump-revision` puts, the key "" to
	// the key index), if the source holds one: the last put of that key.
	// A new marker above it supersedes it, and the compaction at the new
	// marker's revision drops it.
	Marker *schema.Revision `json:"marker,omitempty"`
}

// compactedBatch is how many bytes of pairs one bbolt transaction of
// WriteCompacted puts, which bounds what the transaction holds in memory.
const compactedBatch = 32 << 20

// WriteCompacted writes a new db at dst (which must not exist: it is
// created, and removed on failure; an existing file is os.ErrExist) that
// holds every root bucket of the db at path (a snapshot file, a db file or
// a data dir) with all its pairs, except that of the key bucket it keeps
// only what etcd's compaction above the current revision keeps: the last
// pair of each key whose last pair is a put. (At the current revision
// itself etcd would keep a tombstone there too.) It is the key bucket a
// member holds once it has finished that compaction, minus what the
// compaction itself writes to meta, and with a bump marker of the source
// (CompactedResult.Marker) that a new one at the compaction's revision
// would supersede. The source is read with the bounded walk, twice (the
// first finds the last pair of each key, the second writes), and must be
// sound: damage to its structure, or a key bucket pair that does not
// decode, is ErrDamaged. The SHA-256 trailer is not read. Nothing is
// synced (the writeback of each commit is started, no more); dst has its
// free page list on disk. The first walk's record of the key bucket
// spills, past its budget, to a file beside dst.
func WriteCompacted(ctx context.Context, path, dst string) (*CompactedResult, error) {
	return writeCompacted(ctx, path, dst, nil, compactedBatch)
}

// WriteCompactedKeeping is WriteCompacted with the keep set of the source
// known already (Inspect's Report.KeepSet), so that it walks the source
// once, to write. The caller must check that the source is the db the set
// was found in (KeepSet.DBSHA256): a walk that finds another number of
// pairs in the key bucket is ErrDamaged, but it does not decode the
// pairs it leaves out.
func WriteCompactedKeeping(ctx context.Context, path, dst string, keep *KeepSet) (*CompactedResult, error) {
	if keep == nil {
		return nil, errors.New("snapkit: WriteCompactedKeeping without a keep set")
	}
	return writeCompacted(ctx, path, dst, keep, compactedBatch)
}

// writeCompacted is WriteCompacted with batch bytes of pairs per bbolt
// transaction; with keep, WriteCompactedKeeping.
func writeCompacted(ctx context.Context, path, dst string, keep *KeepSet, batch int) (*CompactedResult, error) {
	_, d, err := openPath(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if keep == nil {
		if keep, err = findKeepSet(ctx, d, path, filepath.Dir(dst)); err != nil {
			return nil, err
		}
	}
	if keep.revisions > math.MaxUint32 {
		return nil, fmt.Errorf("snapkit: %s: %d pairs in the key bucket", path, keep.revisions)
	}
	res := &CompactedResult{Revisions: int(keep.revisions), Kept: keep.Kept()}

	// Created here, so that what is there already is never opened, nor
	// removed on failure; kept open to start the writeback of each commit
	// (NoSync: bbolt itself does not), so that the caller's fdatasync has
	// little left.
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("snapkit: compacted copy of %s: %w", path, err)
	}
	defer f.Close()
	// Mapped at the source's size from the start: bbolt remaps a growing
	// file at each doubling, and first copies every pair of the open
	// transaction out of the old mapping (a third of the writes' CPU).
	// The copy is no bigger than the source, unless its pages are fuller.
	out, err := bolt.Open(dst, 0o600, &bolt.Options{NoSync: true, NoGrowSync: true, FreelistType: bolt.FreelistMapType, InitialMmapSize: int(d.Size())})
	if err != nil {
		os.Remove(dst)
		return nil, fmt.Errorf("snapkit: open %s: %w", dst, err)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &compactWriter{db: out, file: f, batch: batch, keep: keep.bits, cancel: cancel}
	again := &findings{}
	_, err = walk(wctx, d, w, again, nil)
	err = errors.Join(w.finish(err), out.Close())
	res.Marker = w.marker
	if err == nil && (w.pos != uint32(keep.revisions) || again.damage() > 0) {
		err = fmt.Errorf("%w: %s: the key bucket holds %d pairs, its keep set was found in one of %d (%d findings): not the same db",
			ErrDamaged, path, w.pos, keep.revisions, again.damage())
	}
	if err == nil && w.lastKey != nil {
		var last schema.Revision
		if last, _, err = schema.ParseRevision(w.lastKey); err != nil {
			err = fmt.Errorf("%w: %s: the key bucket's last pair: %v", ErrDamaged, path, err)
		}
		res.LastRevision = last.Main
	}
	if err != nil {
		os.Remove(dst)
		return nil, fmt.Errorf("snapkit: compacted copy of %s to %s: %w", path, dst, err)
	}
	return res, nil
}

// findKeepSet walks d (of path) to find its keep set; the record of the
// key bucket spills to spillDir past its budget. Damage is ErrDamaged.
// The set's SHA-256 is not known (zero).
func findKeepSet(ctx context.Context, d *dbFile, path, spillDir string) (*KeepSet, error) {
	fs := &findings{}
	kb := newKeyBucket(fs, spillDir)
	defer kb.close()
	kb.wantPos = true
	if _, err := walk(ctx, d, &keyBucketVisitor{keys: kb}, fs, nil); err != nil {
		return nil, err
	}
	if n := fs.damage(); n > 0 {
		return nil, fmt.Errorf("%w: %s: %d findings; run snapkit verify", ErrDamaged, path, n)
	}
	var st Status
	if err := kb.finish(&st); err != nil {
		return nil, err
	}
	return &KeepSet{revisions: uint64(kb.st.Revisions), bits: kb.livePos}, nil
}

// damage counts the findings, but an invalid meta page beside the valid
// one, which bbolt and the walk pass over to read the valid one.
func (fs *findings) damage() int {
	n := fs.suppressed
	for _, f := range fs.list {
		if !f.metaFallback {
			n++
		}
	}
	return n
}

// keyBucketVisitor hands the key bucket's pairs to a keyBucket.
type keyBucketVisitor struct {
	keys  *keyBucket
	isKey bool
}

func (v *keyBucketVisitor) start(bucket []byte) { v.isKey = string(bucket) == bucketKey }
func (v *keyBucketVisitor) data([]byte)         {}

func (v *keyBucketVisitor) kv(_, k, val []byte) {
	if v.isKey {
		v.keys.add(k, val)
	}
}

// compactWriter puts what the walk visits into a new db, in batches of
// about batch bytes, the key bucket's pairs only at the positions
// of keep. The first error cancels the walk.
type compactWriter struct {
	db     *bolt.DB
	file   *os.File // the db's file, for the writeback after a commit
	batch  int
	cancel context.CancelCauseFunc
	tx     *bolt.Tx
	b      *bolt.Bucket
	name   []byte
	isKey  bool
	keep   bitset // the positions in the key bucket to write
	pos    uint32 // of the next pair of the key bucket
	// lastKey is the key of the last pair of the key bucket seen (in the
	// source's mapping, which outlives the walk).
	lastKey []byte
	marker  *schema.Revision
	bytes   int
	err     error
}

func (w *compactWriter) fail(err error) {
	if w.err == nil {
		w.err = err
		w.cancel(err)
	}
}

func (w *compactWriter) start(bucket []byte) {
	if w.err != nil {
		return
	}
	if w.tx == nil {
		tx, err := w.db.Begin(true)
		if err != nil {
			w.fail(err)
			return
		}
		w.tx = tx
	}
	w.name, w.isKey = bucket, string(bucket) == bucketKey
	b, err := w.tx.CreateBucket(bucket)
	if err != nil {
		w.fail(fmt.Errorf("create bucket %q: %w", bucket, err))
		return
	}
	w.setBucket(b)
}

func (w *compactWriter) setBucket(b *bolt.Bucket) {
	w.b = b
	if w.isKey {
		// Appended in order, as etcd's defragmentation fills it.
		w.b.FillPercent = schema.KeyBucketFillPercent
	}
}

func (w *compactWriter) data([]byte) {}

func (w *compactWriter) kv(bucket, k, v []byte) {
	if w.err != nil {
		return
	}
	if v == nil {
		w.fail(fmt.Errorf("bucket %q holds a nested bucket %q: not an etcd db", bucket, Printable(k)))
		return
	}
	if w.isKey {
		pos := w.pos
		w.pos++
		w.lastKey = k
		if !w.keep.has(uint64(pos)) {
			return
		}
		if len(v) == 0 {
			// Only a bump marker is empty: a put holds its key, a
			// tombstone too and is not kept.
			rev, _, err := schema.ParseRevision(k)
			if err != nil {
				w.fail(fmt.Errorf("bucket %q: %w", bucket, err))
				return
			}
			w.marker = &rev
		}
	}
	if err := w.b.Put(k, v); err != nil {
		w.fail(fmt.Errorf("bucket %q: put %s: %w", bucket, Printable(k), err))
		return
	}
	if w.bytes += len(k) + len(v); w.bytes >= w.batch {
		w.commit()
	}
}

// commit ends the transaction and, inside a bucket, opens the next one
// there.
func (w *compactWriter) commit() {
	w.bytes = 0
	if err := w.tx.Commit(); err != nil {
		w.tx = nil
		w.fail(fmt.Errorf("commit: %w", err))
		return
	}
	fsync.StartWriteback(w.file, 0, 0)
	var err error
	if w.tx, err = w.db.Begin(true); err != nil {
		w.tx = nil
		w.fail(err)
		return
	}
	w.setBucket(w.tx.Bucket(w.name))
}

// finish commits the last transaction after a walk that ended with
// walkErr, or rolls it back after any error.
func (w *compactWriter) finish(walkErr error) error {
	err := w.err
	if err == nil {
		err = walkErr
	}
	if w.tx == nil {
		return err
	}
	if err != nil {
		_ = w.tx.Rollback()
		return err
	}
	if err := w.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
