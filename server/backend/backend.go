package backend

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/internal/failpoint"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Defaults, as etcd's.
const (
	DefaultBatchInterval = 100 * time.Millisecond
	DefaultBatchLimit    = 10000
	// DefaultMmapSize is the initial mmap size: 10 GiB, as etcd, so that a
	// growing file is rarely remapped (a remap waits for every reader).
	DefaultMmapSize = 10 * 1024 * 1024 * 1024
	// defragTxLimit bounds the bytes copied per transaction by Defrag.
	defragTxLimit = 64 * 1024 * 1024
)

// ErrClosed is returned by operations on a closed backend.
var ErrClosed = errors.New("backend: closed")

// Config configures Open.
type Config struct {
	// Path of the bbolt file; it is created with its buckets if missing.
	Path string
	// BatchInterval is the longest a write waits for its commit; 0 means
	// DefaultBatchInterval.
	BatchInterval time.Duration
	// BatchLimit is the number of pending writes that forces a commit; 0
	// means DefaultBatchLimit.
	BatchLimit int
	// MmapSize is the initial mmap size; 0 means DefaultMmapSize.
	MmapSize int
	// NoSync skips fsync on commit (tests only).
	NoSync bool
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Backend is an open bbolt backend. Its methods are safe for concurrent use.
type Backend struct {
	cfg Config
	lg  *slog.Logger
	m   *metrics

	// readMu guards db (swapped by Defrag) and buf.
	readMu sync.RWMutex
	db     *bolt.DB
	buf    keyBuffer

	batch BatchTx

	// failed is closed, and failErr set, when a commit fails: the batch is
	// lost and the in-memory state above it can no longer be trusted.
	failOnce sync.Once
	failed   chan struct{}
	failErr  error

	stop     chan struct{}
	done     chan struct{}
	closeErr error
	closed   sync.Once
}

// Open opens or creates the backend at cfg.Path, creates any missing bucket
// of snapkit/schema, and starts the batch committer.
func Open(cfg Config) (*Backend, error) {
	if cfg.BatchInterval <= 0 {
		cfg.BatchInterval = DefaultBatchInterval
	}
	if cfg.BatchLimit <= 0 {
		cfg.BatchLimit = DefaultBatchLimit
	}
	if cfg.MmapSize <= 0 {
		cfg.MmapSize = DefaultMmapSize
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		cfg:    cfg,
		lg:     lg.With("component", "backend"),
		m:      m,
		failed: make(chan struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	b.batch.be = b
	if err := b.openDB(); err != nil {
		return nil, err
	}
	go b.run()
	return b, nil
}

// openDB opens the file, creates the buckets and begins the batch.
func (b *Backend) openDB() error {
	db, err := schema.Open(b.cfg.Path, schema.Options{
		Timeout:         10 * time.Second,
		NoSync:          b.cfg.NoSync,
		InitialMmapSize: b.cfg.MmapSize,
	})
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	if err := db.Update(schema.CreateBuckets); err != nil {
		db.Close()
		return fmt.Errorf("backend: %s: %w", b.cfg.Path, err)
	}
	tx, err := db.Begin(true)
	if err != nil {
		db.Close()
		return fmt.Errorf("backend: %s: begin batch: %w", b.cfg.Path, err)
	}
	b.db = db
	b.batch.tx = tx
	b.m.observeSize(tx, db)
	return nil
}

// run commits the batch every BatchInterval until Close.
func (b *Backend) run() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.batch.Lock()
			if b.batch.dirty() {
				b.batch.commit()
			}
			b.batch.Unlock()
		}
	}
}

// BatchTx returns the batch. Lock it before use.
func (b *Backend) BatchTx() *BatchTx { return &b.batch }

// ForceCommit commits the batch now.
func (b *Backend) ForceCommit() error {
	b.batch.Lock()
	defer b.batch.Unlock()
	return b.batch.commit()
}

// Failed is closed when a commit has failed; Err then says why. The server
// must stop: the lost batch cannot be replayed into the same process.
func (b *Backend) Failed() <-chan struct{} { return b.failed }

// Err returns the commit failure, or nil.
func (b *Backend) Err() error {
	select {
	case <-b.failed:
		return b.failErr
	default:
		return nil
	}
}

func (b *Backend) fail(err error) {
	b.failOnce.Do(func() {
		b.failErr = err
		b.lg.Error("backend failed", "path", b.cfg.Path, "error", err)
		close(b.failed)
	})
}

// Size returns the size of the file in bytes, as of the last commit.
func (b *Backend) Size() int64 { return b.m.size.Load() }

// SizeInUse returns Size less the free pages, as of the last commit.
func (b *Backend) SizeInUse() int64 { return b.m.sizeInUse.Load() }

// Path returns the path of the file.
func (b *Backend) Path() string { return b.cfg.Path }

// Snapshot commits the batch, then writes a consistent copy of the whole
// file to w, and returns its size. The copy is a bbolt read transaction, so
// writes go on while it streams.
func (b *Backend) Snapshot(w io.Writer) (int64, error) {
	if err := b.ForceCommit(); err != nil {
		return 0, err
	}
	start := time.Now()
	b.readMu.RLock()
	db := b.db
	tx, err := db.Begin(false)
	b.readMu.RUnlock()
	if err != nil {
		return 0, fmt.Errorf("backend: snapshot %s: %w", b.cfg.Path, err)
	}
	defer tx.Rollback()
	n, err := tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("backend: snapshot %s after %d bytes: %w", b.cfg.Path, n, err)
	}
	b.m.snapshot.Observe(time.Since(start).Seconds())
	return n, nil
}

// View runs fn in a read transaction of the last commit. It must not keep
// tx or any slice of it after returning.
func (b *Backend) View(fn func(tx *bolt.Tx) error) error {
	r, err := b.ReadTx()
	if err != nil {
		return err
	}
	defer r.End()
	return fn(r.tx)
}

// Defrag commits the batch and rewrites the file into a new one without its
// free pages, then puts the new file in place of the old and reopens it.
// Writers and new readers wait for it.
func (b *Backend) Defrag() error {
	start := time.Now()
	b.batch.Lock()
	defer b.batch.Unlock()
	if err := b.batch.commit(); err != nil {
		return err
	}
	b.readMu.Lock()
	defer b.readMu.Unlock()
	if err := b.batch.tx.Rollback(); err != nil {
		return fmt.Errorf("backend: defrag %s: %w", b.cfg.Path, err)
	}
	b.batch.tx = nil
	before := b.m.size.Load()
	err := b.defrag()
	if err != nil {
		b.fail(err)
		return err
	}
	b.m.defrag.Observe(time.Since(start).Seconds())
	b.lg.Info("defragmented", "path", b.cfg.Path, "size-before", before, "size-after", b.m.size.Load(), "took", time.Since(start))
	return nil
}

// defrag copies the db into path.defrag, renames it over the db and reopens.
func (b *Backend) defrag() error {
	tmp := b.cfg.Path + ".defrag"
	_ = os.Remove(tmp)
	dst, err := schema.Open(tmp, schema.Options{NoSync: true, Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("backend: defrag: %w", err)
	}
	failpoint.DefragBeforeCopy.Hit()
	if err := bolt.Compact(dst, b.db, defragTxLimit); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("backend: defrag %s: copy: %w", b.cfg.Path, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("backend: defrag %s: sync: %w", tmp, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("backend: defrag %s: close: %w", tmp, err)
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("backend: defrag %s: close: %w", b.cfg.Path, err)
	}
	failpoint.DefragBeforeRename.Hit()
	if err := os.Rename(tmp, b.cfg.Path); err != nil {
		return fmt.Errorf("backend: defrag: %w", err)
	}
	return b.openDB()
}

// Close commits the batch, stops the committer and closes the file.
func (b *Backend) Close() error {
	b.closed.Do(func() {
		close(b.stop)
		<-b.done
		b.batch.Lock()
		defer b.batch.Unlock()
		err := b.batch.commit()
		b.readMu.Lock()
		defer b.readMu.Unlock()
		if b.batch.tx != nil {
			err = errors.Join(err, b.batch.tx.Rollback())
			b.batch.tx = nil
		}
		if cerr := b.db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("backend: close %s: %w", b.cfg.Path, cerr))
		}
		b.db = nil
		b.closeErr = err
	})
	return b.closeErr
}

// Hash commits the batch and returns the legacy Maintenance.Hash of the
// whole db (snapkit.Hash).
func (b *Backend) Hash() (uint32, error) {
	if err := b.ForceCommit(); err != nil {
		return 0, err
	}
	var h uint32
	err := b.View(func(tx *bolt.Tx) error {
		var err error
		h, err = snapkit.Hash(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("backend: hash %s: %w", b.cfg.Path, err)
	}
	return h, nil
}
