package snapkit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// bbolt's on-disk format, as far as a reader needs it (go.etcd.io/bbolt
// internal/common): every page starts with a 16-byte header {id u64, flags
// u16, count u16, overflow u32}; branch and leaf elements are 16 bytes each
// and point at their key with an offset relative to the element itself.
const (
	pageHeaderSize   = 16
	elemSize         = 16
	bucketHeaderSize = 16 // {root pgid u64, sequence u64}; root 0 means inline
	metaChecksumAt   = 56 // the meta's FNV-64a covers the bytes before this

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)

	maxTreeDepth = 64
)

// boltMeta is the meta page bbolt would pick.
type boltMeta struct {
	PageSize uint32 `json:"pageSize"`
	Root     uint64 `json:"rootPage"`
	Freelist uint64 `json:"freelistPage"`
	HWM      uint64 `json:"highWaterMark"`
	TxID     uint64 `json:"txid"`
}

// dbFile is a read-only mapping of the db part of a file (never the trailer).
type dbFile struct {
	src      Source
	f        *os.File
	data     []byte
	pageSize int
	meta     boltMeta
	// badMeta is the finding of an invalid meta page beside the valid one.
	badMeta []Finding
	// metaPage is the meta page picked (0 or 1).
	metaPage int
}

// openPath resolves path (a snapshot file, a db file or a data dir) and
// opens its db with openDBFile.
func openPath(path string) (Source, *dbFile, error) {
	src, err := Resolve(path)
	if err != nil {
		return Source{}, nil, err
	}
	d, err := openDBFile(src)
	return src, d, err
}

// openDBFile maps src read-only, takes a shared lock (so it fails fast,
// with ErrLocked, beside a running etcd) and picks the meta page.
func openDBFile(src Source) (*dbFile, error) {
	if src.Kind == KindSnap {
		return nil, fmt.Errorf("%w: %s is a raft .snap file, which holds no db (snapkit status reads it)", ErrNotBolt, src.Path)
	}
	f, err := os.Open(src.DBPath)
	if err != nil {
		return nil, fmt.Errorf("snapkit: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s: the db is held by another process (is etcd running on this data dir?)", ErrLocked, src.DBPath)
		}
		return nil, fmt.Errorf("snapkit: %s: lock: %w", src.DBPath, err)
	}
	if src.DBSize < 2*1024 {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %d bytes is too small for two meta pages", ErrNotBolt, src.DBPath, src.DBSize)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(src.DBSize), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("snapkit: %s: mmap: %w", src.DBPath, err)
	}
	d := &dbFile{src: src, f: f, data: data}
	if err := d.pickMeta(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *dbFile) Close() error {
	err := unix.Munmap(d.data)
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// parseMeta validates the meta page at off (its page header included).
func parseMeta(data []byte, off int) (boltMeta, uint32, error) {
	if off+pageHeaderSize+metaChecksumAt+8 > len(data) {
		return boltMeta{}, 0, fmt.Errorf("offset %d: beyond the end", off)
	}
	m := data[off+pageHeaderSize:]
	le := binary.LittleEndian
	if magic := le.Uint32(m[0:]); magic != boltMagic {
		return boltMeta{}, 0, fmt.Errorf("offset %d: bad magic %#x", off, magic)
	}
	if v := le.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, 0, fmt.Errorf("offset %d: version %d, want %d", off, v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumAt])
	if want, got := le.Uint64(m[metaChecksumAt:]), h.Sum64(); want != got {
		return boltMeta{}, 0, fmt.Errorf("offset %d: meta checksum %#x, computed %#x", off, want, got)
	}
	return boltMeta{
		PageSize: le.Uint32(m[8:]),
		Root:     le.Uint64(m[16:]),
		Freelist: le.Uint64(m[32:]),
		HWM:      le.Uint64(m[40:]),
		TxID:     le.Uint64(m[48:]),
	}, le.Uint32(m[8:]), nil
}

// pickMeta finds the page size as bbolt does (meta 0, else meta 1 at each
// candidate size), then takes the valid meta with the higher txid. An
// invalid meta page beside a valid one is kept as a finding: bbolt falls
// back to the other silently, and the other may be the older transaction.
func (d *dbFile) pickMeta() error {
	m0, ps, err0 := parseMeta(d.data, 0)
	if err0 != nil {
		ps = 0
		for i := 0; i <= 14 && ps == 0; i++ {
			if _, p, err := parseMeta(d.data, 1024<<i); err == nil && p == 1024<<i {
				ps = p
			}
		}
		if ps == 0 {
			return fmt.Errorf("%w: %s: no valid meta page (%v)", ErrNotBolt, d.src.DBPath, err0)
		}
	}
	if ps < 512 || ps&(ps-1) != 0 || ps > 1<<24 {
		return fmt.Errorf("%w: %s: page size %d", ErrNotBolt, d.src.DBPath, ps)
	}
	d.pageSize = int(ps)
	m1, _, err1 := parseMeta(d.data, d.pageSize)
	switch {
	case err0 != nil && err1 != nil:
		return fmt.Errorf("%w: %s: both meta pages invalid (%v; %v)", ErrNotBolt, d.src.DBPath, err0, err1)
	case err0 == nil && (err1 != nil || m0.TxID >= m1.TxID):
		d.meta = m0
	default:
		d.meta, d.metaPage = m1, 1
	}
	d.meta.PageSize = ps
	for id, err := range []error{err0, err1} {
		if err != nil {
			page := uint64(id)
			d.badMeta = append(d.badMeta, Finding{Check: CheckBolt, Page: &page, metaFallback: true,
				Message: fmt.Sprintf("meta page invalid (%v): read as of meta page %d, txid %d; the transaction after it, if one was written, is lost", err, 1-id, d.meta.TxID)})
		}
	}
	return nil
}

// Size is what bbolt's Tx.Size reports: high-water mark times page size.
func (d *dbFile) Size() int64 { return int64(d.meta.HWM) * int64(d.pageSize) }

// bitset marks page ids (or pairs' positions).
type bitset []uint64

func (b bitset) get(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i uint64)      { b[i/64] |= 1 << (i % 64) }

// has is get, false past the end of b.
func (b bitset) has(i uint64) bool { return i < 64*uint64(len(b)) && b.get(i) }

// pageView is one page's bytes (all of its overflow), from the mapping or
// from an inline bucket value.
type pageView struct {
	id    uint64
	b     []byte
	flags uint16
	count int
}

func newPageView(id uint64, b []byte) pageView {
	return pageView{id: id, b: b, flags: binary.LittleEndian.Uint16(b[8:]), count: int(binary.LittleEndian.Uint16(b[10:]))}
}

// elem returns element i's 16 bytes and its offset in the page.
func (p pageView) elem(i int) ([]byte, int, error) {
	off := pageHeaderSize + i*elemSize
	if off+elemSize > len(p.b) {
		return nil, 0, fmt.Errorf("element %d of %d: header at %d beyond the page (%d bytes)", i, p.count, off, len(p.b))
	}
	return p.b[off : off+elemSize], off, nil
}

// slice returns p.b[start:start+n] or an error naming what overflowed.
func (p pageView) slice(what string, i int, start, n uint64) ([]byte, error) {
	if start > uint64(len(p.b)) || n > uint64(len(p.b))-start {
		return nil, fmt.Errorf("element %d: %s [%d,+%d) beyond the page (%d bytes)", i, what, start, n, len(p.b))
	}
	return p.b[start : start+n], nil
}

// leaf returns leaf element i: its flags, key and value, and where the
// key starts in the page (the value follows it).
func (p pageView) leaf(i int) (flags uint32, k, v []byte, at uint64, err error) {
	e, off, err := p.elem(i)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	le := binary.LittleEndian
	flags = le.Uint32(e[0:])
	pos, ksize, vsize := uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
	at = uint64(off) + pos
	kv, err := p.slice("key and value", i, at, ksize+vsize)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	return flags, kv[:ksize:ksize], kv[ksize:], at, nil
}

func (p pageView) branch(i int) (k []byte, child uint64, err error) {
	e, off, err := p.elem(i)
	if err != nil {
		return nil, 0, err
	}
	le := binary.LittleEndian
	k, err = p.slice("key", i, uint64(off)+uint64(le.Uint32(e[0:])), uint64(le.Uint32(e[4:])))
	return k, le.Uint64(e[8:]), err
}

// visitor receives, in key order, the contents of each root bucket: start
// once per bucket, then kv for each pair (v is nil for a nested bucket's
// key). data receives the same bytes as the pairs, each key followed by its
// value (a nested bucket's key alone), in order, but in as few pieces as
// the pages allow: bbolt lays out a leaf's pairs one after the other, so
// most calls cover a whole leaf. Before each start, data has covered every
// pair given to kv.
type visitor interface {
	start(bucket []byte)
	kv(bucket, k, v []byte)
	data(b []byte)
}

// walkStats counts what the walk saw.
type walkStats struct {
	ReachablePages int64 `json:"reachablePages"`
	FreePages      int64 `json:"freePages"`
	// reached marks the reachable pages (nil if the walk did not start).
	reached bitset
}

// walker does in one pass what bbolt's Tx.Check does, and feeds a visitor.
type walker struct {
	ctx      context.Context
	db       *dbFile
	v        visitor
	fs       *findings
	progress Progress

	reached, freed bitset
	synced         bool // the freelist is on disk (not NoFreelistSync)
	stats          walkStats

	touched, done int64
	err           error
}

// dropEvery bounds the resident set: after this many mapped bytes are
// touched, the whole mapping is dropped (the page cache keeps the data).
// The kernel maps up to 16 cached pages around each fault (fault-around),
// so a walk of scattered pages holds many times what it touched: at 32 MiB
// a 820 MB snapshot peaked at 129 MiB, at 4 MiB at 42 MiB, for the same CPU.
const dropEvery = 4 << 20

// walk checks the structure of d and visits every pair of every root
// bucket in order. Structural damage goes to fs; a fault while reading the
// mapping (the file shrank underneath us) is returned as an error.
func walk(ctx context.Context, d *dbFile, v visitor, fs *findings, progress Progress) (st walkStats, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("snapkit: %s: fault while reading: %v", d.src.DBPath, r)
		}
	}()
	w := &walker{ctx: ctx, db: d, v: v, fs: fs, progress: progress}
	for _, f := range d.badMeta {
		fs.add(f)
	}
	hwm := d.meta.HWM
	if int64(hwm)*int64(d.pageSize) > d.src.DBSize {
		fs.add(Finding{Check: CheckBolt, Message: fmt.Sprintf("truncated: high-water mark %d pages of %d bytes needs %d bytes, the db part has %d",
			hwm, d.pageSize, int64(hwm)*int64(d.pageSize), d.src.DBSize)})
	} else if d.src.HasTrailer && int64(hwm)*int64(d.pageSize) != d.src.DBSize {
		fs.add(Finding{Check: CheckTrailer, Message: fmt.Sprintf("the db ends at %d bytes (high-water mark %d pages), but the trailer starts at %d",
			int64(hwm)*int64(d.pageSize), hwm, d.src.DBSize)})
	}
	if hwm < 2 || hwm > uint64(d.src.DBSize) {
		fs.add(Finding{Check: CheckBolt, Message: fmt.Sprintf("implausible high-water mark %d", hwm)})
		return w.stats, nil
	}
	w.reached = make(bitset, (hwm+63)/64)
	w.freed = make(bitset, (hwm+63)/64)
	w.reached.set(0)
	w.reached.set(1)
	w.readFreelist()
	if p, ok := w.page(d.meta.Root, ""); ok {
		w.tree(p, nil, nil, nil, 0, w.v != nil)
	}
	if w.err != nil {
		return w.stats, w.err
	}
	w.stats.reached = w.reached
	for i := uint64(0); i < hwm; i++ {
		switch {
		case w.reached.get(i):
			w.stats.ReachablePages++
		case w.freed.get(i) || !w.synced:
			w.stats.FreePages++
		default:
			fs.page(i, "", "unreachable unfreed")
		}
	}
	return w.stats, nil
}

// page returns page id with its overflow, checking bounds and the header,
// and marks it reachable. ok is false when the page must not be read.
func (w *walker) page(id uint64, bucket string) (pageView, bool) {
	hwm := w.db.meta.HWM
	ps := uint64(w.db.pageSize)
	if id < 2 || id >= hwm {
		w.fs.page(id, bucket, "out of bounds: high-water mark %d", hwm)
		return pageView{}, false
	}
	off := id * ps
	if off+ps > uint64(len(w.db.data)) {
		w.fs.page(id, bucket, "beyond the end of the file (offset %d)", off)
		return pageView{}, false
	}
	hdr := w.db.data[off : off+pageHeaderSize]
	overflow := uint64(binary.LittleEndian.Uint32(hdr[12:]))
	if hid := binary.LittleEndian.Uint64(hdr); hid != id {
		w.fs.page(id, bucket, "header holds page id %d", hid)
		return pageView{}, false
	}
	if id+overflow >= hwm || (id+overflow+1)*ps > uint64(len(w.db.data)) {
		w.fs.page(id, bucket, "overflow %d runs past the high-water mark %d", overflow, hwm)
		return pageView{}, false
	}
	for i := id; i <= id+overflow; i++ {
		if w.reached.get(i) {
			w.fs.page(i, bucket, "multiple references")
			return pageView{}, false
		}
		w.reached.set(i)
		if w.freed.get(i) {
			w.fs.page(i, bucket, "reachable freed")
		}
	}
	n := int64((overflow + 1) * ps)
	w.done += n
	w.touched += n
	if w.touched >= dropEvery {
		_ = unix.Madvise(w.db.data, unix.MADV_DONTNEED)
		w.touched = 0
		if w.progress != nil {
			w.progress(w.done, w.db.Size())
		}
		if w.err == nil {
			w.err = w.ctx.Err()
		}
	}
	return newPageView(id, w.db.data[off:off+uint64(n)]), true
}

func (w *walker) readFreelist() {
	id := w.db.meta.Freelist
	if id == noFreelist {
		return
	}
	w.synced = true
	p, ok := w.page(id, "")
	if !ok {
		return
	}
	if p.flags != freelistPageFlag {
		w.fs.page(id, "", "freelist page has type flags %#x", p.flags)
		return
	}
	start, count := uint64(pageHeaderSize), uint64(p.count)
	if count == 0xFFFF {
		if len(p.b) < pageHeaderSize+8 {
			w.fs.page(id, "", "freelist count beyond the page")
			return
		}
		count = binary.LittleEndian.Uint64(p.b[pageHeaderSize:])
		start += 8
	}
	if count > (uint64(len(p.b))-start)/8 {
		w.fs.page(id, "", "freelist of %d ids does not fit the page (%d bytes)", count, len(p.b))
		return
	}
	for i := uint64(0); i < count; i++ {
		fid := binary.LittleEndian.Uint64(p.b[start+8*i:])
		switch {
		case fid >= w.db.meta.HWM:
			w.fs.page(fid, "", "freed, but beyond the high-water mark %d", w.db.meta.HWM)
		case w.freed.get(fid):
			w.fs.page(fid, "", "already freed")
		default:
			w.freed.set(fid)
		}
	}
}

// tree walks the subtree rooted at p in key order. top is the root bucket
// whose pairs go to the visitor when visit is set (nil for the root bucket
// itself, whose keys are bucket names).
// Keys must lie in [lo, hi).
func (w *walker) tree(p pageView, top []byte, lo, hi []byte, depth int, visit bool) {
	if w.err != nil {
		return
	}
	name := string(top)
	if depth > maxTreeDepth {
		w.fs.page(p.id, name, "tree deeper than %d levels", maxTreeDepth)
		return
	}
	// Keys must sort in order, so that only the last one needs comparing
	// with hi.
	var prev []byte
	order := func(i int, k []byte, kind string) {
		switch {
		case i == 0 && lo != nil && bytes.Compare(k, lo) < 0:
			w.fs.page(p.id, name, "%s key[%d] %s sorts before its parent's key %s", kind, i, Printable(k), Printable(lo))
		case i > 0 && bytes.Compare(prev, k) >= 0:
			w.fs.page(p.id, name, "%s key[%d] %s does not sort after the previous key %s", kind, i, Printable(k), Printable(prev))
		}
		if i == p.count-1 && hi != nil && bytes.Compare(k, hi) >= 0 {
			w.fs.page(p.id, name, "%s key[%d] %s is not below the next key in the parent %s", kind, i, Printable(k), Printable(hi))
		}
		prev = k
	}
	switch {
	case p.flags == branchPageFlag:
		for i := 0; i < p.count; i++ {
			k, child, err := p.branch(i)
			if err != nil {
				w.fs.page(p.id, name, "%v", err)
				return
			}
			order(i, k, "branch")
			next := hi
			if i+1 < p.count {
				if nk, _, err := p.branch(i + 1); err == nil {
					next = nk
				}
			}
			if cp, ok := w.page(child, name); ok {
				w.tree(cp, top, k, next, depth+1, visit)
			}
		}
	case p.flags == leafPageFlag:
		// [runStart, runEnd) are the bytes of the pairs visited since the
		// last call to data.
		var runStart, runEnd uint64
		flush := func() {
			if runEnd > runStart {
				w.v.data(p.b[runStart:runEnd])
			}
			runStart, runEnd = 0, 0
		}
		for i := 0; i < p.count; i++ {
			flags, k, v, at, err := p.leaf(i)
			if err != nil {
				w.fs.page(p.id, name, "%v", err)
				break
			}
			order(i, k, "leaf")
			if visit && top != nil && flags&bucketLeafFlag == 0 {
				if at != runEnd {
					flush()
					runStart = at
				}
				runEnd = at + uint64(len(k)+len(v))
			} else if visit {
				flush()
			}
			w.leafElem(p, top, flags, k, v, depth, visit)
		}
		if visit {
			flush()
		}
	default:
		w.fs.page(p.id, name, "invalid type: flags %#x", p.flags)
	}
}

func (w *walker) leafElem(p pageView, top []byte, flags uint32, k, v []byte, depth int, visit bool) {
	isBucket := flags&bucketLeafFlag != 0
	if top == nil && !isBucket {
		id := p.id // declared here, so that only a finding moves it to the heap
		w.fs.add(Finding{Check: CheckBolt, Page: &id, Key: Printable(k), Message: "a key in the root bucket that is not a bucket"})
		return
	}
	if !isBucket {
		if visit {
			w.v.kv(top, k, v)
		}
		return
	}
	// A bucket. A root bucket starts a new visit; a nested one is visited
	// as a key with a nil value, as bbolt's ForEach does, and below it the
	// pairs are only checked.
	child := top
	if top == nil {
		child = k
		if visit {
			w.v.start(k)
		}
	} else {
		if visit {
			w.v.kv(top, k, nil)
			w.v.data(k)
		}
		visit = false
	}
	if len(v) < bucketHeaderSize {
		w.fs.page(p.id, string(child), "bucket header of %d bytes", len(v))
		return
	}
	if root := binary.LittleEndian.Uint64(v); root != 0 {
		if cp, ok := w.page(root, string(child)); ok {
			w.tree(cp, child, nil, nil, depth+1, visit)
		}
		return
	}
	inline := v[bucketHeaderSize:]
	if len(inline) < pageHeaderSize {
		w.fs.page(p.id, string(child), "inline bucket shorter than a page header")
		return
	}
	ip := newPageView(p.id, inline)
	if ip.flags != leafPageFlag {
		w.fs.page(p.id, string(child), "inline bucket page has flags %#x", ip.flags)
		return
	}
	w.tree(ip, child, nil, nil, depth+1, visit)
}
