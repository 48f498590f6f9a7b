package snapkit

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
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
	for id := uint64(2); id < fp.meta.HWM; id++ {
		if !st.reached.get(id) {
			fp.free = append(fp.free, id)
		}
	}
	return fp, nil
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
