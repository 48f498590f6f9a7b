package snapkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// DB is a snapshot file, db file or data dir opened read-only, with its key
// index rebuilt in memory.
type DB struct {
	Source Source
	Bolt   *bolt.DB
	Index  *keyindex.Index
	// Current is the store's revision as etcd would restore it: the latest
	// revision, or the compaction if that is higher.
	Current int64
	// CompactRev is the compaction in effect: meta/finishedCompactRev (-1
	// if none, as etcd reports it), or the scheduled one that etcd would
	// finish on start (then the in-memory index is compacted too; the file
	// is not touched).
	CompactRev int64
}

// OpenDB checks the structure of the db at path with the package's own
// walk, and only if it is sound opens it with bbolt, read-only, and
// restores its key index. Damage gives an error wrapping ErrDamaged that
// names the first finding.
func OpenDB(ctx context.Context, path string, lg *slog.Logger) (*DB, error) {
	src, d, err := openPath(path)
	if err != nil {
		return nil, err
	}
	fs := &findings{}
	_, err = walk(ctx, d, nil, fs, nil)
	d.Close()
	if err != nil {
		return nil, err
	}
	if len(fs.list) > 0 && fs.structural() {
		more := ""
		if n := len(fs.list) + fs.suppressed - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more)", n)
		}
		return nil, fmt.Errorf("%w: %s: %s%s; run snapkit verify", ErrDamaged, path, fs.list[0], more)
	}
	bdb, err := openBolt(src)
	if err != nil {
		return nil, err
	}
	db := &DB{Source: src, Bolt: bdb}
	err = bdb.View(func(tx *bolt.Tx) error {
		idx, latest, err := keyindex.Restore(lg, tx)
		if err != nil {
			return err
		}
		finished, found, err := schema.FinishedCompactRev(tx)
		if err != nil {
			return err
		}
		if !found {
			finished = -1 // etcd's compactMainRev before any compaction
		}
		scheduled, hasScheduled, err := schema.ScheduledCompactRev(tx)
		if err != nil {
			return err
		}
		db.Index, db.CompactRev = idx, finished
		if hasScheduled && scheduled > finished {
			idx.Compact(scheduled)
			db.CompactRev = scheduled
		}
		db.Current = max(latest, db.CompactRev)
		return nil
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("snapkit: %s: %w", path, errors.Join(ErrDamaged, err))
	}
	return db, nil
}

// Close closes the bbolt db.
func (db *DB) Close() error { return db.Bolt.Close() }

// View runs fn in a read transaction.
func (db *DB) View(fn func(*bolt.Tx) error) error { return db.Bolt.View(fn) }
