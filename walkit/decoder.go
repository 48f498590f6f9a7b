package walkit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"go.etcd.io/raft/v3/raftpb"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCRCMismatch is a record whose stored CRC differs from the running CRC-32C.
var ErrCRCMismatch = errors.New("walkit: crc mismatch")

// detailError is one occurrence of a sentinel error told by its details
// alone, for damage whose kind already names the sentinel: the report says
// "crc-mismatch: stored crc ..., computed ...", not "crc-mismatch: walkit:
// crc mismatch ...". errors.Is still finds the sentinel.
type detailError struct {
	sentinel error
	detail   string
}

func detailf(sentinel error, format string, args ...any) error {
	return &detailError{sentinel: sentinel, detail: fmt.Sprintf(format, args...)}
}

func (e *detailError) Error() string { return e.detail }
func (e *detailError) Unwrap() error { return e.sentinel }

// DamageKind classifies damage found while decoding.
type DamageKind int

// Kinds of damage. TornTail is etcd's torn-write rule (last segment only);
// the others are corruption.
const (
	TornTail         DamageKind = iota + 1 // the last record of the last segment was cut short
	CRCMismatch                            // data does not match the rolling CRC-32C
	BadLength                              // the length field is not canonical or runs past the file
	BadProto                               // the walpb.Record does not decode
	BadPadding                             // padding bytes are not zero
	BadRecord                              // the record decodes but its type, position or content is impossible
	MetadataConflict                       // a metadata record differs from the first one
	DataAfterEnd                           // non-zero bytes after the end-of-segment marker
	SequenceGap                            // segment sequence numbers are not contiguous
)

var damageNames = map[DamageKind]string{
	TornTail: "torn-tail", CRCMismatch: "crc-mismatch", BadLength: "bad-length",
	BadProto: "bad-proto", BadPadding: "bad-padding", BadRecord: "bad-record",
	MetadataConflict: "metadata-conflict", DataAfterEnd: "data-after-end", SequenceGap: "sequence-gap",
}

func (k DamageKind) String() string {
	if s, ok := damageNames[k]; ok {
		return s
	}
	return fmt.Sprintf("damage(%d)", int(k))
}

// MarshalText renders the kind as its name, for JSON reports.
func (k DamageKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Position locates a record: its segment, the byte offset of its length
// field, and its 0-based number within the segment.
type Position struct {
	Segment string
	Offset  int64
	Record  int
}

// DamageError describes a damaged record. Err is io.ErrUnexpectedEOF for a
// torn tail or a record that runs past its file (as in etcd), ErrCRCMismatch
// for a CRC mismatch, and the decoding error otherwise.
type DamageError struct {
	Kind          DamageKind
	Pos           Position
	LastGoodIndex uint64 // index of the last entry decoded intact before the damage
	Err           error
}

// where is "at segment <name> offset <n>", for errors about a record.
func (p Position) where() string { return fmt.Sprintf("at segment %s offset %d", p.Segment, p.Offset) }

func (e *DamageError) Error() string {
	return fmt.Sprintf("walkit: segment %s offset %d record %d: %s: %v (last good entry %d)",
		e.Pos.Segment, e.Pos.Offset, e.Pos.Record, e.Kind, e.Err, e.LastGoodIndex)
}

func (e *DamageError) Unwrap() error { return e.Err }

// source is one segment to decode.
type source struct {
	name string
	seq  uint64
	size int64
	open func() (io.ReadCloser, error)
}

func fileSources(segs []Segment) []source {
	srcs := make([]source, len(segs))
	for i, s := range segs {
		srcs[i] = source{name: s.Name, seq: s.Seq, size: s.Size, open: func() (io.ReadCloser, error) { return os.Open(s.Path) }}
	}
	return srcs
}

const (
	readBufSize   = 1 << 20  // streaming window; records larger than it grow it
	maxResyncSize = 64 << 20 // largest frame a resynchronisation scan will consider
)

// decoder streams records out of a chain of segments. In strict mode it also
// refuses everything etcd's encoder never writes (non-zero padding, unknown
// types and fields, non-canonical lengths, impossible records), so that any
// single-byte change inside a record is caught where it happened.
type decoder struct {
	srcs   []source
	strict bool

	cur int // index of the open source
	rc  io.ReadCloser
	src source

	buf  []byte
	r, w int  // buf[r:w] are the file's bytes from off on
	eof  bool // the file has no more bytes

	off   int64 // file offset of the next record
	recNo int
	crc   uint32

	// alternative running CRC after a CRC mismatch: the computed one, in
	// case it was the stored CRC field that was damaged.
	altCRC   uint32
	haveAlt  bool
	pending  *DamageError
	skipLen  int64 // after pending damage, the intact frame to step over (0: scan)
	skipCRC  uint32
	skipped  int64 // bytes passed over by the last resynchronisation
	lastGood uint64
	// lastEnd is the raft index at which the intact records so far end the
	// log: the last entry's, raised by a later snapshot record above it.
	lastEnd uint64

	// keepData makes the read buffer append-only: instead of reusing it,
	// fill continues in a new one, so that entry data can point into it and
	// outlive the next record without a copy. ReadAll needs it.
	keepData bool

	// what the last record decoded to
	ent   raftpb.Entry
	state raftpb.HardState
	snap  Snapshot

	// strict plausibility
	metadata  []byte
	haveMeta  bool
	lastIndex uint64
	haveIndex bool
	maxTerm   uint64
	anchor    bool // the next frame was found by scanning
}

func newDecoder(srcs []source, strict bool) *decoder {
	size := int64(4096)
	for _, s := range srcs {
		size = max(size, s.size)
	}
	return &decoder{srcs: srcs, strict: strict, cur: -1, buf: make([]byte, min(size, readBufSize))}
}

func (d *decoder) close() error {
	if d.rc == nil {
		return nil
	}
	err := d.rc.Close()
	d.rc = nil
	return err
}

func (d *decoder) isLast() bool { return d.cur == len(d.srcs)-1 }

func (d *decoder) openNext() error {
	if err := d.close(); err != nil {
		return fmt.Errorf("walkit: segment %s: %w", d.src.name, err)
	}
	if d.cur+1 >= len(d.srcs) {
		return io.EOF
	}
	d.cur++
	d.src = d.srcs[d.cur]
	rc, err := d.src.open()
	if err != nil {
		return fmt.Errorf("walkit: segment %s: %w", d.src.name, err)
	}
	d.rc, d.r, d.w, d.eof, d.off, d.recNo = rc, 0, 0, false, 0, 0
	if d.keepData && d.cur > 0 {
		d.buf = make([]byte, len(d.buf)) // entries of the previous segment point into the old one
	}
	return nil
}

// fill makes up to n bytes available at buf[r:] and returns how many are.
func (d *decoder) fill(n int) (int, error) {
	if d.w-d.r >= n || d.eof {
		return min(n, d.w-d.r), nil
	}
	switch {
	case d.keepData && d.r+n > len(d.buf):
		// Entries read so far point into buf: go on in a new one.
		nb := make([]byte, max(n, readBufSize))
		d.w = copy(nb, d.buf[d.r:d.w])
		d.buf, d.r = nb, 0
	case n > len(d.buf):
		nb := make([]byte, max(n, 2*len(d.buf)))
		d.w = copy(nb, d.buf[d.r:d.w])
		d.buf, d.r = nb, 0
	case d.r+n > len(d.buf):
		d.w = copy(d.buf, d.buf[d.r:d.w])
		d.r = 0
	}
	for d.w-d.r < n {
		m, err := d.rc.Read(d.buf[d.w:])
		d.w += m
		if err == io.EOF {
			d.eof = true
			break
		}
		if err != nil {
			return 0, fmt.Errorf("walkit: segment %s offset %d: %w", d.src.name, d.off+int64(d.w-d.r), err)
		}
	}
	return min(n, d.w-d.r), nil
}

// advance consumes n bytes, all of them available.
func (d *decoder) advance(n int) {
	d.r += n
	d.off += int64(n)
}

func (d *decoder) pos() Position {
	return Position{Segment: d.src.name, Offset: d.off, Record: d.recNo}
}

func (d *decoder) damage(kind DamageKind, pos Position, err error) *DamageError {
	de := &DamageError{Kind: kind, Pos: pos, LastGoodIndex: d.lastGood, Err: err}
	d.pending = de
	return de
}

// isTorn applies etcd's torn-write rule to a frame's body at d.off+8: in the
// last segment, a record is torn if any of its 512-byte sector chunks is all zero.
func (d *decoder) isTorn(body []byte) bool {
	if !d.isLast() {
		return false
	}
	fileOff := d.off + frameSize
	for len(body) > 0 {
		n := int(sectorSize - fileOff%sectorSize)
		n = min(n, len(body))
		if allZero(body[:n]) {
			return true
		}
		body = body[n:]
		fileOff += int64(n)
	}
	return false
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// next returns the next record. Damage comes back as *DamageError; calling
// next again resynchronises: over an intact frame, or by scanning forward on
// 8-byte boundaries for the next frame that decodes strictly.
func (d *decoder) next() (Record, Position, error) {
	if d.pending != nil {
		if err := d.recover(); err != nil {
			return Record{}, Position{}, err
		}
	}
	for {
		if d.rc == nil {
			if err := d.openNext(); err != nil {
				return Record{}, Position{}, err
			}
		}
		pos := d.pos()
		n, err := d.fill(frameSize)
		if err != nil {
			return Record{}, pos, err
		}
		if n == 0 {
			if err := d.close(); err != nil {
				return Record{}, pos, err
			}
			continue
		}
		if n < frameSize {
			return Record{}, pos, d.damage(d.cutKind(), pos, fmt.Errorf("%w: length field cut short (%d of 8 bytes)", io.ErrUnexpectedEOF, n))
		}
		lenField := binary.LittleEndian.Uint64(d.buf[d.r:])
		if lenField == 0 {
			if d.strict {
				at, err := d.nonZeroAfter()
				if err != nil {
					return Record{}, pos, err
				}
				if at >= 0 {
					return Record{}, pos, d.damage(DataAfterEnd, pos, fmt.Errorf("zero length field, but byte at offset %d is not zero", at))
				}
			}
			if err := d.close(); err != nil {
				return Record{}, pos, err
			}
			continue
		}
		rec, err := d.decodeFrame(pos, lenField)
		if err != nil {
			return Record{}, pos, err
		}
		return rec, pos, nil
	}
}

// cutKind is the kind of a frame that runs past the end of its file.
func (d *decoder) cutKind() DamageKind {
	if d.isLast() {
		return TornTail
	}
	return BadLength
}

// nonZeroAfter looks for a non-zero byte between d.off and the end of the
// file and returns its offset, or -1. It consumes only zeros, in whole words,
// and leaves the zero word at d.off in place for a later scan to step over.
func (d *decoder) nonZeroAfter() (int64, error) {
	for {
		n, err := d.fill(len(d.buf) / 2)
		if err != nil {
			return -1, err
		}
		if i := firstNonZero(d.buf[d.r : d.r+n]); i >= 0 {
			return d.off + int64(i), nil
		}
		if n < 2*frameSize {
			return -1, nil
		}
		d.advance(n&^(frameSize-1) - frameSize)
	}
}

func firstNonZero(b []byte) int {
	if allZero(b) {
		return -1
	}
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// decodeFrame decodes the frame at d.off whose length field is lenField.
func (d *decoder) decodeFrame(pos Position, lenField uint64) (Record, error) {
	n, pad := decodeFrameSize(lenField)
	if d.strict {
		if canon, _ := encodeFrameSize(int(n)); n > d.src.size || canon != lenField {
			return Record{}, d.damage(BadLength, pos, fmt.Errorf("length field %#016x is not a canonical frame length", lenField))
		}
	}
	if n+pad > d.src.size-d.off-frameSize {
		return Record{}, d.damage(d.cutKind(), pos, fmt.Errorf("%w: record of %d+%d bytes runs past the end of the %d-byte file", io.ErrUnexpectedEOF, n, pad, d.src.size))
	}
	total := int(frameSize + n + pad)
	got, err := d.fill(total)
	if err != nil {
		return Record{}, err
	}
	if got < total {
		return Record{}, d.damage(d.cutKind(), pos, fmt.Errorf("%w: record of %d bytes, file ends after %d", io.ErrUnexpectedEOF, total, got))
	}
	frame := d.buf[d.r : d.r+total]
	body := frame[frameSize:]
	rec, err := parseRecord(body[:n], d.strict)
	if err != nil {
		if d.isTorn(body) {
			return Record{}, d.damage(TornTail, pos, fmt.Errorf("%w: torn write: %v", io.ErrUnexpectedEOF, err))
		}
		return Record{}, d.damage(BadProto, pos, err)
	}
	// From here on the frame is intact: damage skips it.
	fail := func(kind DamageKind, err error) (Record, error) {
		if d.isTorn(body) {
			kind, err = TornTail, fmt.Errorf("%w: torn write: %v", io.ErrUnexpectedEOF, err)
		}
		d.damage(kind, pos, err)
		d.skipLen = int64(total)
		return Record{}, d.pending
	}
	switch {
	case d.anchor:
		// The first frame after a resynchronisation: nothing before it vouches
		// for its CRC, so its stored CRC becomes the running value.
		d.skipCRC = rec.CRC
	case rec.Type == CrcType:
		if d.crc != 0 && rec.CRC != d.crc {
			d.skipCRC = rec.CRC
			return fail(CRCMismatch, detailf(ErrCRCMismatch, "crc record holds %#08x, running crc of the previous segment is %#08x", rec.CRC, d.crc))
		}
		d.skipCRC = rec.CRC
	default:
		c := crc32.Update(d.crc, crcTable, rec.Data)
		if c != rec.CRC {
			if !d.haveAlt || crc32.Update(d.altCRC, crcTable, rec.Data) != rec.CRC {
				d.altCRC, d.haveAlt = c, true
				d.skipCRC = rec.CRC
				return fail(CRCMismatch, detailf(ErrCRCMismatch, "stored crc %#08x, computed %#08x", rec.CRC, c))
			}
			// The previous record's CRC field was the damaged part: the chain holds from its data.
		}
		d.skipCRC = rec.CRC
	}
	d.haveAlt = false
	if d.strict && !allZero(body[n:]) {
		return fail(BadPadding, fmt.Errorf("padding bytes % x are not zero", body[n:]))
	}
	if err := d.decodeData(rec); err != nil {
		if errors.Is(err, ErrMetadataConflict) {
			return fail(MetadataConflict, err)
		}
		return fail(BadRecord, err)
	}
	d.crc = d.skipCRC
	d.anchor = false
	d.advance(total)
	d.recNo++
	return rec, nil
}

// decodeData decodes a record's payload into d.ent, d.state or d.snap and, in
// strict mode, checks that the record could have been written where it stands.
func (d *decoder) decodeData(rec Record) error {
	var err error
	switch rec.Type {
	case EntryType:
		if d.ent, err = decodeEntry(rec.Data, d.strict); err != nil {
			return fmt.Errorf("entry: %w", err)
		}
	case StateType:
		if d.state, err = decodeHardState(rec.Data, d.strict); err != nil {
			return fmt.Errorf("hard state: %w", err)
		}
	case SnapshotType:
		if d.snap, err = decodeSnapshot(rec.Data, d.strict); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	case MetadataType, CrcType:
	default:
		if d.strict {
			return fmt.Errorf("unknown record type %d", int64(rec.Type))
		}
	}
	if d.strict {
		if err := d.plausible(rec); err != nil {
			return err
		}
	}
	switch rec.Type {
	case EntryType:
		d.lastGood, d.lastEnd = d.ent.Index, d.ent.Index
	case SnapshotType:
		d.lastEnd = max(d.lastEnd, d.snap.Index)
	}
	return nil
}

// plausible checks a strictly decoded record against what came before it.
func (d *decoder) plausible(rec Record) error {
	switch {
	case d.anchor:
	case d.recNo == 0 && rec.Type != CrcType:
		return fmt.Errorf("segment starts with a %s record, not a crc record", rec.Type)
	case d.recNo != 0 && rec.Type == CrcType:
		return errors.New("crc record after the start of the segment")
	case d.recNo == 0 && d.src.seq == 0 && rec.CRC != 0:
		return fmt.Errorf("first segment's crc record holds %#08x, not 0", rec.CRC)
	case d.recNo == 1 && rec.Type != MetadataType:
		return fmt.Errorf("second record is a %s record, not metadata", rec.Type)
	}
	switch rec.Type {
	case MetadataType:
		if d.haveMeta && !bytes.Equal(d.metadata, rec.Data) {
			return detailf(ErrMetadataConflict, "metadata %x differs from the first metadata %x", rec.Data, d.metadata)
		}
		if !d.haveMeta {
			d.metadata, d.haveMeta = bytes.Clone(rec.Data), true
		}
	case EntryType:
		if d.haveIndex && d.ent.Index > d.lastIndex+1 {
			return fmt.Errorf("entry %d follows entry or snapshot %d", d.ent.Index, d.lastIndex)
		}
		d.lastIndex, d.haveIndex = d.ent.Index, true
		d.maxTerm = max(d.maxTerm, d.ent.Term)
	case StateType:
		if d.state.Term < d.maxTerm {
			return fmt.Errorf("hard state term %d is below entry term %d", d.state.Term, d.maxTerm)
		}
	case SnapshotType:
		if !d.haveIndex || d.snap.Index > d.lastIndex {
			d.lastIndex, d.haveIndex = d.snap.Index, true
		}
	}
	return nil
}

// recover resumes after d.pending.
func (d *decoder) recover() error {
	dmg := d.pending
	d.pending = nil
	d.skipped = 0
	d.haveIndex = false // the record lost may have been an entry: no gap rule across it
	if d.rc == nil {
		return nil
	}
	switch {
	case d.skipLen > 0:
		d.advance(int(d.skipLen))
		d.skipLen = 0
		d.recNo++
		d.crc = d.skipCRC
		return nil
	case dmg.Kind == TornTail:
		d.skipped = d.src.size - d.off
		return d.close()
	}
	return d.scan()
}

// scan looks for the next frame that decodes strictly, on 8-byte boundaries
// after the damaged one, and takes its CRC field as the new running CRC.
func (d *decoder) scan() error {
	from := d.off
	for {
		d.advance(frameSize)
		n, err := d.fill(frameSize)
		if err != nil {
			return err
		}
		if n < frameSize {
			d.advance(n)
			d.skipped = d.off - from
			return d.close()
		}
		lenField := binary.LittleEndian.Uint64(d.buf[d.r:])
		if lenField == 0 {
			continue
		}
		size, pad := decodeFrameSize(lenField)
		if canon, _ := encodeFrameSize(int(size)); size > maxResyncSize || canon != lenField || size+pad > d.src.size-d.off-frameSize {
			continue
		}
		total := int(frameSize + size + pad)
		if got, err := d.fill(total); err != nil || got < total {
			if err != nil {
				return err
			}
			continue
		}
		body := d.buf[d.r+frameSize : d.r+total]
		rec, err := parseRecord(body[:size], true)
		if err != nil || !allZero(body[size:]) {
			continue
		}
		probe := *d
		probe.anchor = true // position rules do not apply to a frame found by scanning
		if probe.decodeData(rec) != nil {
			continue
		}
		d.skipped = d.off - from
		d.recNo++
		d.anchor, d.haveAlt = true, false
		return nil
	}
}
