package walkit

import (
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

var (
	// ErrSnapshotMismatch is a snapshot record at the requested index with another term.
	ErrSnapshotMismatch = errors.New("walkit: snapshot mismatch")
	// ErrSnapshotNotFound means the requested snapshot has no record in the WAL.
	ErrSnapshotNotFound = errors.New("walkit: snapshot not found")
	// ErrMetadataConflict is a metadata record that differs from the first one.
	ErrMetadataConflict = errors.New("walkit: conflicting metadata found")
	// ErrSliceOutOfRange is an entry whose index leaves a hole after the entries read so far.
	ErrSliceOutOfRange = errors.New("walkit: slice bounds out of range")
	// ErrReadOnly is a write to a WAL opened with OpenForRead.
	ErrReadOnly    = errors.New("walkit: WAL opened for read")
	errReadAllDone = errors.New("walkit: ReadAll already called")
)

// WAL is an etcd write-ahead log opened for reading (OpenForRead), for
// appending (Create; Open then ReadAll), or both in that order.
type WAL struct {
	lg      *slog.Logger
	dir     string
	segSize int64

	mu       sync.Mutex
	metadata []byte
	state    raftpb.HardState // last HardState saved
	start    Snapshot         // snapshot ReadAll reads from
	dec      *decoder         // nil after ReadAll

	enti    uint64     // index of the last entry saved
	locks   []*os.File // locked segments, oldest first; the last is the tail
	names   []string   // base names of locks
	tailOff int64
	crc     uint32
	buf     []byte // records of one Save, written at once
	scratch []byte // one marshaled entry
	spare   *spareFiles
	syncs   int  // fdatasyncs of the tail, for tests of MustSync
	noSync  bool // SetUnsafeNoFsync
}

func discardLogger(lg *slog.Logger) *slog.Logger {
	if lg == nil {
		return slog.New(slog.DiscardHandler)
	}
	return lg
}

// Create makes a new WAL in dir holding metadata and an empty snapshot record,
// as etcd does: in dir.tmp first, renamed into place once synced.
func Create(lg *slog.Logger, dir string, metadata []byte) (*WAL, error) {
	return create(lg, dir, metadata, SegmentSizeBytes)
}

// create is Create with a segment size; tests use small ones to force cuts.
func create(lg *slog.Logger, dir string, metadata []byte, segSize int64) (w *WAL, err error) {
	lg = discardLogger(lg)
	if Exist(dir) {
		return nil, fmt.Errorf("walkit: create %s: %w", dir, os.ErrExist)
	}
	tmp := filepath.Clean(dir) + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("walkit: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("walkit: %w", err)
	}
	defer os.RemoveAll(tmp)

	name := SegmentName(0, 0)
	f, err := openLocked(filepath.Join(tmp, name), os.O_RDWR|os.O_CREATE, false)
	if err != nil {
		return nil, err
	}
	w = &WAL{lg: lg, dir: dir, segSize: segSize, metadata: metadata, locks: []*os.File{f}, names: []string{name}}
	defer func() {
		if err != nil {
			w.closeFiles()
		}
	}()
	if err := preallocate(f, segSize); err != nil {
		return nil, err
	}
	buf := w.appendRecord(nil, CrcType, nil)
	buf = w.appendRecord(buf, MetadataType, metadata)
	buf = w.appendRecord(buf, SnapshotType, EncodeSnapshot(Snapshot{}))
	if err := w.write(buf); err != nil {
		return nil, err
	}
	if err := fdatasync(f); err != nil {
		return nil, err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("walkit: create %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("walkit: %w", err)
	}
	if err := fsyncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
		return nil, err
	}
	w.spare = newSpareFiles(dir, segSize)
	lg.Info("created WAL", "dir", dir, "segment-bytes", segSize)
	return w, nil
}

// Open opens the WAL in dir for appending, locking every segment from the one
// that holds snap on. Call ReadAll before Save.
func Open(lg *slog.Logger, dir string, snap Snapshot) (*WAL, error) {
	return open(lg, dir, snap, true, SegmentSizeBytes)
}

// OpenForRead opens the WAL in dir for ReadAll only; it takes no lock.
func OpenForRead(lg *slog.Logger, dir string, snap Snapshot) (*WAL, error) {
	return open(lg, dir, snap, false, SegmentSizeBytes)
}

func open(lg *slog.Logger, dir string, snap Snapshot, write bool, segSize int64) (*WAL, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	i, ok := searchIndex(segs, snap.Index)
	if !ok {
		return nil, fmt.Errorf("%w: no segment in %s for snapshot index %d", ErrFileNotFound, dir, snap.Index)
	}
	segs = segs[i:]
	if err := checkSequence(segs); err != nil {
		return nil, err
	}
	w := &WAL{lg: discardLogger(lg), dir: dir, segSize: segSize, start: snap, dec: newDecoder(fileSources(segs), false)}
	if write {
		for _, s := range segs {
			f, err := openLocked(s.Path, os.O_RDWR, false)
			if err != nil {
				w.closeFiles()
				return nil, err
			}
			w.locks = append(w.locks, f)
			w.names = append(w.names, s.Name)
		}
	}
	return w, nil
}

// Save writes the entries, then st unless it is empty, and syncs when raft's
// MustSync says so. It cuts a new segment once the tail reaches the segment size.
func (w *WAL) Save(st raftpb.HardState, ents []raftpb.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	if raft.IsEmptyHardState(st) && len(ents) == 0 {
		return nil
	}
	mustSync := raft.MustSync(st, w.state, len(ents))
	buf := w.buf[:0]
	for i := range ents {
		n := ents[i].Size()
		if cap(w.scratch) < n {
			w.scratch = make([]byte, n)
		}
		data := w.scratch[:n]
		if _, err := ents[i].MarshalToSizedBuffer(data); err != nil {
			return fmt.Errorf("walkit: marshal entry %d: %w", ents[i].Index, err)
		}
		buf = w.appendRecord(buf, EntryType, data)
		w.enti = ents[i].Index
	}
	buf = w.appendState(buf, st)
	w.buf = buf
	if err := w.write(buf); err != nil {
		return err
	}
	if w.tailOff < w.segSize {
		if mustSync {
			return w.sync()
		}
		return nil
	}
	return w.cut()
}

// appendState appends a State record for st unless st is empty, and remembers it.
func (w *WAL) appendState(buf []byte, st raftpb.HardState) []byte {
	if raft.IsEmptyHardState(st) {
		return buf
	}
	w.state = st
	data, err := st.Marshal()
	if err != nil {
		// gogo's generated Marshal of three varints cannot fail.
		panic(fmt.Sprintf("walkit: marshal HardState: %v", err))
	}
	return w.appendRecord(buf, StateType, data)
}

// SaveSnapshot writes a snapshot record and syncs. A snapshot above index 0
// must carry its ConfState (etcd 3.5+).
func (w *WAL) SaveSnapshot(s Snapshot) error {
	if s.Index > 0 && s.ConfState == nil {
		return fmt.Errorf("walkit: snapshot at index %d without ConfState", s.Index)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	buf := w.appendRecord(w.buf[:0], SnapshotType, EncodeSnapshot(s))
	w.buf = buf
	if err := w.write(buf); err != nil {
		return err
	}
	w.enti = max(w.enti, s.Index)
	return w.sync()
}

func (w *WAL) writable() error {
	switch {
	case len(w.locks) == 0:
		return ErrReadOnly
	case w.dec != nil:
		return errors.New("walkit: call ReadAll before writing")
	}
	return nil
}

func (w *WAL) sync() error {
	w.syncs++
	if w.noSync {
		return nil
	}
	return fdatasync(w.tail())
}

// SetUnsafeNoFsync makes Save and SaveSnapshot skip fdatasync, as etcd's
// --unsafe-no-fsync does: a crash may then lose acknowledged writes. Cuts
// still sync.
func (w *WAL) SetUnsafeNoFsync() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.noSync = true
}

func (w *WAL) tail() *os.File { return w.locks[len(w.locks)-1] }

// appendRecord frames a record of the given type, chaining the running CRC.
func (w *WAL) appendRecord(buf []byte, t RecordType, data []byte) []byte {
	if t != CrcType {
		w.crc = crc32.Update(w.crc, crcTable, data)
	}
	return appendFrame(buf, Record{Type: t, CRC: w.crc, Data: data})
}

// write writes buf at the tail's offset.
func (w *WAL) write(buf []byte) error {
	if _, err := w.tail().WriteAt(buf, w.tailOff); err != nil {
		return fmt.Errorf("walkit: segment %s offset %d: %w", w.names[len(w.names)-1], w.tailOff, err)
	}
	w.tailOff += int64(len(buf))
	return nil
}

// cut closes the tail at its data length and continues in the spare file,
// which becomes segment seq+1 named after the next entry index.
func (w *WAL) cut() error {
	tail := w.tail()
	if err := tail.Truncate(w.tailOff); err != nil {
		return fmt.Errorf("walkit: truncate %s: %w", tail.Name(), err)
	}
	if err := fdatasync(tail); err != nil {
		return err
	}
	seq, _, _ := parseSegmentName(w.names[len(w.names)-1])
	spare, err := w.spare.take()
	if err != nil {
		return err
	}
	name := SegmentName(seq+1, w.enti+1)
	w.locks, w.names, w.tailOff = append(w.locks, spare), append(w.names, name), 0
	buf := w.appendRecord(w.buf[:0], CrcType, nil)
	buf = w.appendRecord(buf, MetadataType, w.metadata)
	buf = w.appendState(buf, w.state)
	w.buf = buf
	if err := w.write(buf); err != nil {
		return err
	}
	if err := fdatasync(spare); err != nil {
		return err
	}
	if err := os.Rename(spare.Name(), filepath.Join(w.dir, name)); err != nil {
		return fmt.Errorf("walkit: %w", err)
	}
	if err := fsyncDir(w.dir); err != nil {
		return err
	}
	w.lg.Info("cut WAL segment", "segment", name)
	return nil
}

// ReleaseLockTo releases the locks of the segments that hold only entries
// below index, keeping the last segment that starts at or below it.
func (w *WAL) ReleaseLockTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.locks) == 0 {
		return nil
	}
	smaller := len(w.locks) - 1
	for i, name := range w.names {
		_, lockIndex, ok := parseSegmentName(name)
		if !ok {
			return fmt.Errorf("walkit: bad segment name %q", name)
		}
		if lockIndex >= index {
			smaller = i - 1
			break
		}
	}
	if smaller <= 0 {
		return nil
	}
	for _, f := range w.locks[:smaller] {
		if err := f.Close(); err != nil {
			return fmt.Errorf("walkit: unlock %s: %w", f.Name(), err)
		}
	}
	w.locks, w.names = w.locks[smaller:], w.names[smaller:]
	return nil
}

// Close syncs the tail, removes the spare file and releases every lock.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	if w.spare != nil {
		errs = append(errs, w.spare.close())
		w.spare = nil
	}
	if len(w.locks) > 0 && w.dec == nil {
		errs = append(errs, fdatasync(w.tail()))
	}
	if w.dec != nil {
		errs = append(errs, w.dec.close())
	}
	errs = append(errs, w.closeFiles())
	return errors.Join(errs...)
}

func (w *WAL) closeFiles() error {
	var errs []error
	for _, f := range w.locks {
		errs = append(errs, f.Close())
	}
	w.locks, w.names = nil, nil
	return errors.Join(errs...)
}

// spareFiles preallocates and locks the next segment (0.tmp, 1.tmp, ...) in
// the background, so that a cut does not wait for the allocation.
type spareFiles struct {
	dir   string
	size  int64
	count int
	busy  bool // an allocation is under way and will send on ch
	ch    chan spareResult
}

type spareResult struct {
	f   *os.File
	err error
}

func newSpareFiles(dir string, size int64) *spareFiles {
	s := &spareFiles{dir: dir, size: size, ch: make(chan spareResult, 1)}
	s.alloc()
	return s
}

func (s *spareFiles) alloc() {
	path := filepath.Join(s.dir, fmt.Sprintf("%d.tmp", s.count%2))
	s.count++
	s.busy = true
	go func() {
		f, err := openLocked(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, true)
		if err == nil {
			if err = preallocate(f, s.size); err != nil {
				f.Close()
				f = nil
			}
		}
		s.ch <- spareResult{f, err}
	}()
}

// take returns the spare file and starts preparing the next one.
func (s *spareFiles) take() (*os.File, error) {
	if !s.busy {
		return nil, errors.New("walkit: no spare segment")
	}
	r := <-s.ch
	s.busy = false
	if r.err != nil {
		return nil, r.err
	}
	s.alloc()
	return r.f, nil
}

// close waits for the spare being prepared and removes it.
func (s *spareFiles) close() error {
	if !s.busy {
		return nil
	}
	r := <-s.ch
	s.busy = false
	if r.err != nil {
		return r.err
	}
	err := os.Remove(r.f.Name())
	return errors.Join(err, r.f.Close())
}
