package snapkit

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
)

// FreePages are the pages of a db that its tree does not reach, for a db
// that has no free page list on disk (written with NoFreelistSync, as etcd
// writes its backend, and so every snapshot file), with the meta page they
// belong to. Write gives a copy of that db the list: bbolt's read-write
// open then reads it instead of walking every page of the tree to find
// the free ones, which maps the whole file into the process.
type FreePages struct {
	meta     boltMeta
	metaPage int
	pageSize uint64
	free     []uint64
}

// FindFreePages walks the db at path (a snapshot file, a db file or a data
// dir) with the package's own bounded walk and returns its free pages; nil
// when it has a freelist on disk already. Structural damage is ErrDamaged.
func FindFreePages(ctx context.Context, path string) (*FreePages, error) {
	_, d, err := openPath(path)
	if err != nil {
		return nil, err
	}
	fp := &FreePages{meta: d.meta, metaPage: d.metaPage, pageSize: uint64(d.pageSize)}
	if d.meta.Freelist != noFreelist {
		return nil, d.Close()
	}
	fs := &findings{}
	st, err := walk(ctx, d, nil, fs, nil)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if fs.structural() || st.reached == nil {
		return nil, fmt.Errorf("%w: %s: %d findings; run snapkit verify", ErrDamaged, path, len(fs.list)+fs.suppressed)
	}
	fp.addUnreached(st.reached)
	return fp, nil
}

// addUnreached lists the pages below the high-water mark not in reached.
func (fp *FreePages) addUnreached(reached bitset) {
	for id := uint64(2); id < fp.meta.HWM; id++ {
		if !reached.get(id) {
			fp.free = append(fp.free, id)
		}
	}
}

// Len is the number of free pages.
func (fp *FreePages) Len() int { return len(fp.free) }

// Write writes the list into the db file at path, a copy of the db that
// FindFreePages walked (its meta page must be the same: root, txid,
// high-water mark, no freelist): a freelist page at the high-water mark,
// and the meta page pointing there, past it. The next commit of a
// NoFreelistSync writer frees that page again. The file must not be open
// elsewhere; nothing is synced.
func (fp *FreePages) Write(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("snapkit: %w", err)
	}
	defer f.Close()
	ps, meta := fp.pageSize, fp.meta
	raw := make([]byte, pageHeaderSize+metaChecksumAt+8)
	at := int64(uint64(fp.metaPage) * ps)
	if _, err := f.ReadAt(raw, at); err != nil {
		return fmt.Errorf("snapkit: %s: %w", path, err)
	}
	got, _, err := parseMeta(raw, 0)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotBolt, path, err)
	}
	if got.Root != meta.Root || got.TxID != meta.TxID || got.HWM != meta.HWM || got.Freelist != noFreelist {
		return fmt.Errorf("snapkit: %s: meta page %d is not the walked db's (root %d txid %d high-water mark %d freelist %d; walked %d %d %d)",
			path, fp.metaPage, got.Root, got.TxID, got.HWM, got.Freelist, meta.Root, meta.TxID, meta.HWM)
	}
	page := freelistPage(meta.HWM, fp.free, ps)
	if _, err := f.WriteAt(page, int64(meta.HWM*ps)); err != nil {
		return fmt.Errorf("snapkit: %s: write the freelist: %w", path, err)
	}
	m := raw[pageHeaderSize:]
	le := binary.LittleEndian
	le.PutUint64(m[32:], meta.HWM)
	le.PutUint64(m[40:], meta.HWM+uint64(len(page))/ps)
	h := fnv.New64a()
	h.Write(m[:metaChecksumAt])
	le.PutUint64(m[metaChecksumAt:], h.Sum64())
	if _, err := f.WriteAt(m, at+pageHeaderSize); err != nil {
		return fmt.Errorf("snapkit: %s: write the meta page: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("snapkit: %w", err)
	}
	return nil
}

// freelistPage is bbolt's freelist page for the ascending ids, at page id:
// the count in the header, or 0xFFFF there and the count in the first
// element when it does not fit 16 bits; as many pages as it needs.
func freelistPage(id uint64, free []uint64, pageSize uint64) []byte {
	n := uint64(len(free))
	elems := n
	if n >= 0xFFFF {
		elems++
	}
	size := pageHeaderSize + 8*elems
	pages := (size + pageSize - 1) / pageSize
	b := make([]byte, pages*pageSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], id)
	le.PutUint16(b[8:], freelistPageFlag)
	off := uint64(pageHeaderSize)
	if n >= 0xFFFF {
		le.PutUint16(b[10:], 0xFFFF)
		le.PutUint64(b[off:], n)
		off += 8
	} else {
		le.PutUint16(b[10:], uint16(n))
	}
	le.PutUint32(b[12:], uint32(pages-1))
	for i, fid := range free {
		le.PutUint64(b[off+8*uint64(i):], fid)
	}
	return b
}

// FreePageScan finds the free pages of a db from its bytes as they pass by
// in order (a copy of it: Scan), so that no second walk reads the db again.
// From each page whose header names its own id it keeps the overflow and,
// for a leaf that lies whole in the bytes given, the roots of its buckets;
// what it cannot read there (branch pages, a leaf cut at the end of the
// bytes given) Finish reads from the copy when it follows the tree there.
// A scan that did not see every page in order, or whose first bytes did
// not hold both meta pages, makes Finish walk the copy (FindFreePages). It
// checks the tree's shape only as far as finding the pages needs: what
// else vouches for the db (its SHA-256, a walk of the copy) is the caller's.
type FreePageScan struct {
	size         int64
	started, off bool
	next         int64 // where the next bytes must start
	meta         boltMeta
	metaPage     int
	pageSize     uint64
	// kind and overflow are per page id: scanNone for bytes that are no
	// branch or leaf page header naming its own id.
	kind     []uint8
	overflow []uint32
	// roots are the bucket roots of the scanned leaves that have any.
	roots map[uint64][]uint64
	// cut is the start of page cutID's header when the last bytes ended
	// inside it (nil when none was cut).
	cut   []byte
	cutID uint64
}

// NewFreePageScan starts a scan of a db part of size bytes.
func NewFreePageScan(size int64) *FreePageScan { return &FreePageScan{size: size} }

const (
	scanNone uint8 = iota
	scanLeaf       // a leaf read whole: its bucket roots are in roots
	scanRead       // read it at Finish: a branch, or a leaf cut by the chunk's end
)

// Scan takes the db's bytes at off: the first call at 0, each next one
// where the last ended. Bytes past the high-water mark are ignored.
func (s *FreePageScan) Scan(off int64, b []byte) {
	if s.off {
		return
	}
	if !s.started {
		if off != 0 || !s.start(b) {
			s.off = true
			return
		}
	}
	if off != s.next {
		s.off = true
		return
	}
	s.next += int64(len(b))
	ps, end := s.pageSize, uint64(off)+uint64(len(b))
	if s.cut != nil { // a header cut at the end of the last bytes
		n := min(pageHeaderSize-len(s.cut), len(b))
		if s.cut = append(s.cut, b[:n]...); len(s.cut) < pageHeaderSize {
			return
		}
		s.page(s.cutID, s.cut)
		s.cut = nil
	}
	for at := (uint64(off) + ps - 1) / ps * ps; at < end && at/ps < s.meta.HWM; at += ps {
		rest := b[at-uint64(off):]
		if len(rest) < pageHeaderSize {
			s.cut, s.cutID = append(s.cut, rest...), at/ps
			return
		}
		s.page(at/ps, rest)
	}
}

// page reads the header of page id at the start of b (which may end
// before the page does): a branch or leaf header that names its own id,
// whose overflow ends below the high-water mark, is a page of the kind it
// says; a leaf whole in b is read now.
func (s *FreePageScan) page(id uint64, b []byte) {
	le := binary.LittleEndian
	if id < 2 || le.Uint64(b) != id {
		return
	}
	flags, ov := le.Uint16(b[8:]), uint64(le.Uint32(b[12:]))
	if flags != branchPageFlag && flags != leafPageFlag || id+ov >= s.meta.HWM {
		return
	}
	s.overflow[id], s.kind[id] = uint32(ov), scanRead
	if n := (ov + 1) * s.pageSize; flags == leafPageFlag && n <= uint64(len(b)) {
		roots, err := pageChildren(newPageView(id, b[:n]), nil)
		if err != nil {
			return // Finish reads it again and reports it, if the tree reaches it
		}
		s.kind[id] = scanLeaf
		if len(roots) > 0 {
			s.roots[id] = roots
		}
	}
}

// start picks the meta page from the db's first bytes, which must hold
// both meta pages.
func (s *FreePageScan) start(b []byte) bool {
	d := &dbFile{data: b}
	if err := d.pickMeta(); err != nil || 2*d.pageSize > len(b) {
		return false
	}
	s.started = true
	s.meta, s.metaPage, s.pageSize = d.meta, d.metaPage, uint64(d.pageSize)
	if s.meta.HWM < 2 || s.meta.HWM > uint64(s.size)/s.pageSize {
		return false // the walk reports it
	}
	s.kind = make([]uint8, s.meta.HWM)
	s.overflow = make([]uint32, s.meta.HWM)
	s.roots = map[uint64][]uint64{}
	return true
}

// Finish follows the tree from the meta page's root through what Scan kept,
// reading from the db at path (the copy the bytes went to) the pages Scan
// could not read, and returns the pages it does not reach, as
// FindFreePages does; nil when the db has a freelist on disk. A scan that
// did not see the whole db is FindFreePages(path). A tree that reaches a
// page that holds no branch or leaf, or a page twice, is ErrDamaged.
func (s *FreePageScan) Finish(ctx context.Context, path string) (*FreePages, error) {
	if s.off || !s.started || s.next < int64(s.meta.HWM*s.pageSize) {
		return FindFreePages(ctx, path)
	}
	if s.meta.Freelist != noFreelist {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapkit: %w", err)
	}
	defer f.Close()
	ps, hwm := s.pageSize, s.meta.HWM
	damaged := func(id uint64, format string, args ...any) error {
		return fmt.Errorf("%w: %s: page %d: %s; run snapkit verify", ErrDamaged, path, id, fmt.Sprintf(format, args...))
	}
	reached := make(bitset, (hwm+63)/64)
	reached.set(0)
	reached.set(1)
	stack := []uint64{s.meta.Root}
	var buf []byte
	for n := 0; len(stack) > 0; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if id >= hwm || s.kind[id] == scanNone {
			return nil, damaged(id, "the tree reaches it, but it holds no branch or leaf page header whose overflow ends below the high-water mark %d", hwm)
		}
		ov := uint64(s.overflow[id])
		for i := id; i <= id+ov; i++ {
			if reached.get(i) {
				return nil, damaged(i, "multiple references")
			}
			reached.set(i)
		}
		if s.kind[id] == scanLeaf {
			stack = append(stack, s.roots[id]...)
			continue
		}
		buf = slices.Grow(buf[:0], int((ov+1)*ps))[:(ov+1)*ps]
		if _, err := f.ReadAt(buf, int64(id*ps)); err != nil {
			return nil, fmt.Errorf("snapkit: %s: %w", path, err)
		}
		p := newPageView(id, buf)
		if got := binary.LittleEndian.Uint64(buf); got != id {
			return nil, damaged(id, "the copy's header holds page id %d", got)
		}
		if stack, err = pageChildren(p, stack); err != nil {
			return nil, damaged(id, "%v", err)
		}
	}
	fp := &FreePages{meta: s.meta, metaPage: s.metaPage, pageSize: ps}
	fp.addUnreached(reached)
	return fp, nil
}

// pageChildren appends to out the pages that p points at: a branch's
// children, a leaf's bucket roots (also those in its inline buckets).
func pageChildren(p pageView, out []uint64) ([]uint64, error) {
	switch p.flags {
	case branchPageFlag:
		for i := range p.count {
			_, child, err := p.branch(i)
			if err != nil {
				return out, err
			}
			out = append(out, child)
		}
	case leafPageFlag:
		for i := range p.count {
			e, _, err := p.elem(i)
			if err != nil {
				return out, err
			}
			if binary.LittleEndian.Uint32(e)&bucketLeafFlag == 0 {
				continue
			}
			_, _, v, _, err := p.leaf(i)
			if err != nil {
				return out, err
			}
			if len(v) < bucketHeaderSize {
				return out, fmt.Errorf("element %d: bucket header of %d bytes", i, len(v))
			}
			if root := binary.LittleEndian.Uint64(v); root != 0 {
				out = append(out, root)
				continue
			}
			if len(v) < bucketHeaderSize+pageHeaderSize {
				return out, fmt.Errorf("element %d: inline bucket shorter than a page header", i)
			}
			ip := newPageView(p.id, v[bucketHeaderSize:])
			if ip.flags != leafPageFlag {
				return out, fmt.Errorf("element %d: inline bucket page has flags %#x", i, ip.flags)
			}
			if out, err = pageChildren(ip, out); err != nil {
				return out, fmt.Errorf("element %d: inline bucket: %w", i, err)
			}
		}
	default:
		return out, fmt.Errorf("invalid type: flags %#x", p.flags)
	}
	return out, nil
}
