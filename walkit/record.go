package walkit

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	// frameSize is the size of the little-endian length field before every record.
	frameSize = 8
	// sectorSize is the unit of etcd's torn-write rule.
	sectorSize = 512
)

// RecordType is walpb.Record's type field.
type RecordType int64

// The five record types of an etcd WAL.
const (
	MetadataType RecordType = iota + 1
	EntryType
	StateType
	CrcType
	SnapshotType
)

// String names the record type as etcd's tools do.
func (t RecordType) String() string {
	switch t {
	case MetadataType:
		return "metadata"
	case EntryType:
		return "entry"
	case StateType:
		return "state"
	case CrcType:
		return "crc"
	case SnapshotType:
		return "snapshot"
	}
	return fmt.Sprintf("type(%d)", int64(t))
}

// Record is one decoded walpb.Record.
type Record struct {
	Type RecordType
	CRC  uint32
	Data []byte
}

// Metadata is etcdserverpb.Metadata, the payload of etcd's metadata records.
type Metadata struct {
	NodeID, ClusterID uint64
}

// Snapshot is walpb.Snapshot: the raft index and term of a snapshot, and its ConfState.
type Snapshot struct {
	Index, Term uint64
	ConfState   *raftpb.ConfState
}

var (
	errUnknownField = errors.New("unexpected field")
	errWireType     = errors.New("wrong wire type")
	errFieldOrder   = errors.New("fields out of canonical order")
	errNonMinimal   = errors.New("non-minimal varint")
	errMissingField = errors.New("missing field")
	errRange        = errors.New("value out of range")
)

// encodeFrameSize returns the length field for a record of n bytes and its padding.
func encodeFrameSize(n int) (lenField uint64, pad int) {
	lenField = uint64(n)
	pad = (8 - n%8) % 8
	if pad != 0 {
		lenField |= uint64(0x80|pad) << 56
	}
	return lenField, pad
}

// decodeFrameSize splits a length field into record bytes and padding bytes.
func decodeFrameSize(lenField uint64) (n, pad int64) {
	n = int64(lenField & 0x00FFFFFFFFFFFFFF)
	if lenField&(1<<63) != 0 {
		pad = int64((lenField >> 56) & 7)
	}
	return n, pad
}

// recordSize is the marshaled size of a walpb.Record.
func recordSize(r Record) int {
	n := 1 + protowire.SizeVarint(uint64(r.Type)) + 1 + protowire.SizeVarint(uint64(r.CRC))
	if r.Data != nil {
		n += 1 + protowire.SizeBytes(len(r.Data))
	}
	return n
}

// appendFrame appends the framed record (length field, walpb.Record, zero padding) to dst.
func appendFrame(dst []byte, r Record) []byte {
	n := recordSize(r)
	lenField, pad := encodeFrameSize(n)
	dst = binary.LittleEndian.AppendUint64(dst, lenField)
	dst = protowire.AppendTag(dst, 1, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(r.Type))
	dst = protowire.AppendTag(dst, 2, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(r.CRC))
	if r.Data != nil {
		dst = protowire.AppendTag(dst, 3, protowire.BytesType)
		dst = protowire.AppendBytes(dst, r.Data)
	}
	for range pad {
		dst = append(dst, 0)
	}
	return dst
}

// fieldReader walks the fields of one protobuf message. In strict mode it
// accepts only the canonical encoding that etcd's gogo marshalers produce:
// known fields, ascending order, minimal varints.
type fieldReader struct {
	b      []byte
	strict bool
	last   protowire.Number
}

// next returns the next field's number and wire type; ok is false at the end.
func (fr *fieldReader) next() (num protowire.Number, typ protowire.Type, ok bool, err error) {
	if len(fr.b) == 0 {
		return 0, 0, false, nil
	}
	num, typ, n := protowire.ConsumeTag(fr.b)
	if n < 0 {
		return 0, 0, false, protowire.ParseError(n)
	}
	if fr.strict {
		if n != protowire.SizeTag(num) {
			return 0, 0, false, errNonMinimal
		}
		if num < fr.last {
			return 0, 0, false, fmt.Errorf("field %d after %d: %w", num, fr.last, errFieldOrder)
		}
		fr.last = num
	}
	fr.b = fr.b[n:]
	return num, typ, true, nil
}

func (fr *fieldReader) varint(num protowire.Number, typ protowire.Type) (uint64, error) {
	if typ != protowire.VarintType {
		return 0, fmt.Errorf("field %d: %w %d", num, errWireType, typ)
	}
	v, n := protowire.ConsumeVarint(fr.b)
	if n < 0 {
		return 0, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
	}
	if fr.strict && n != protowire.SizeVarint(v) {
		return 0, fmt.Errorf("field %d: %w", num, errNonMinimal)
	}
	fr.b = fr.b[n:]
	return v, nil
}

func (fr *fieldReader) bytes(num protowire.Number, typ protowire.Type) ([]byte, error) {
	if typ != protowire.BytesType {
		return nil, fmt.Errorf("field %d: %w %d", num, errWireType, typ)
	}
	l, n := protowire.ConsumeVarint(fr.b)
	if n < 0 {
		return nil, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
	}
	if fr.strict && n != protowire.SizeVarint(l) {
		return nil, fmt.Errorf("field %d: %w", num, errNonMinimal)
	}
	if l > uint64(len(fr.b)-n) {
		return nil, fmt.Errorf("field %d: %w", num, protowire.ParseError(-1))
	}
	v := fr.b[n : n+int(l) : n+int(l)]
	fr.b = fr.b[n+int(l):]
	return v, nil
}

// skip passes over an unknown field; strict mode refuses it.
func (fr *fieldReader) skip(num protowire.Number, typ protowire.Type) error {
	if fr.strict {
		return fmt.Errorf("field %d: %w", num, errUnknownField)
	}
	n := protowire.ConsumeFieldValue(num, typ, fr.b)
	if n < 0 {
		return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
	}
	fr.b = fr.b[n:]
	return nil
}

// seen tracks which fields a strict parse met, to refuse repeats and missing fields.
type seen uint32

func (s *seen) once(num protowire.Number, strict bool) error {
	bit := seen(1) << uint(num)
	if strict && *s&bit != 0 {
		return fmt.Errorf("field %d repeated: %w", num, errFieldOrder)
	}
	*s |= bit
	return nil
}

func (s seen) require(nums ...protowire.Number) error {
	for _, n := range nums {
		if s&(seen(1)<<uint(n)) == 0 {
			return fmt.Errorf("field %d: %w", n, errMissingField)
		}
	}
	return nil
}

// parseRecord decodes a walpb.Record. Data aliases b.
func parseRecord(b []byte, strict bool) (Record, error) {
	var r Record
	var s seen
	fr := fieldReader{b: b, strict: strict}
	for {
		num, typ, ok, err := fr.next()
		if err != nil {
			return Record{}, err
		}
		if !ok {
			break
		}
		if err := s.once(num, strict); err != nil {
			return Record{}, err
		}
		switch num {
		case 1:
			v, err := fr.varint(num, typ)
			if err != nil {
				return Record{}, err
			}
			r.Type = RecordType(v)
		case 2:
			v, err := fr.varint(num, typ)
			if err != nil {
				return Record{}, err
			}
			if strict && v > 0xFFFFFFFF {
				return Record{}, fmt.Errorf("crc %#x: %w", v, errRange)
			}
			r.CRC = uint32(v)
		case 3:
			v, err := fr.bytes(num, typ)
			if err != nil {
				return Record{}, err
			}
			r.Data = v
		default:
			if err := fr.skip(num, typ); err != nil {
				return Record{}, err
			}
		}
	}
	if strict {
		if err := s.require(1, 2); err != nil {
			return Record{}, err
		}
		if r.Type < MetadataType || r.Type > SnapshotType {
			return Record{}, fmt.Errorf("record type %d: %w", int64(r.Type), errRange)
		}
		if r.Type == CrcType && r.Data != nil {
			return Record{}, fmt.Errorf("crc record with data: %w", errUnknownField)
		}
	}
	return r, nil
}

// Marshal encodes the metadata as etcdserverpb.Metadata (proto2, both fields always written).
func (m Metadata) Marshal() []byte {
	b := make([]byte, 0, 2+protowire.SizeVarint(m.NodeID)+protowire.SizeVarint(m.ClusterID))
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, m.NodeID)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, m.ClusterID)
}

// ParseMetadata decodes etcdserverpb.Metadata, accepting only its canonical encoding.
func ParseMetadata(b []byte) (Metadata, error) {
	m, err := parseMetadata(b, true)
	if err != nil {
		return Metadata{}, fmt.Errorf("walkit: metadata: %w", err)
	}
	return m, nil
}

func parseMetadata(b []byte, strict bool) (Metadata, error) {
	var m Metadata
	var s seen
	fr := fieldReader{b: b, strict: strict}
	for {
		num, typ, ok, err := fr.next()
		if err != nil {
			return Metadata{}, err
		}
		if !ok {
			break
		}
		if err := s.once(num, strict); err != nil {
			return Metadata{}, err
		}
		switch num {
		case 1:
			m.NodeID, err = fr.varint(num, typ)
		case 2:
			m.ClusterID, err = fr.varint(num, typ)
		default:
			err = fr.skip(num, typ)
		}
		if err != nil {
			return Metadata{}, err
		}
	}
	if strict {
		if err := s.require(1, 2); err != nil {
			return Metadata{}, err
		}
	}
	return m, nil
}

// EncodeSnapshot encodes a walpb.Snapshot{index=1, term=2, conf_state=3}.
func EncodeSnapshot(s Snapshot) []byte {
	var cs []byte
	if s.ConfState != nil {
		var err error
		if cs, err = s.ConfState.Marshal(); err != nil {
			// gogo's generated Marshal of a ConfState cannot fail: it only sizes and writes varints.
			panic(fmt.Sprintf("walkit: marshal ConfState: %v", err))
		}
	}
	b := make([]byte, 0, 22+protowire.SizeBytes(len(cs)))
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, s.Index)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, s.Term)
	if s.ConfState != nil {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, cs)
	}
	return b
}

// DecodeSnapshot decodes a walpb.Snapshot as etcd does (unknown fields are skipped).
func DecodeSnapshot(b []byte) (Snapshot, error) {
	s, err := decodeSnapshot(b, false)
	if err != nil {
		return Snapshot{}, fmt.Errorf("walkit: snapshot record: %w", err)
	}
	return s, nil
}

func decodeSnapshot(b []byte, strict bool) (Snapshot, error) {
	var sn Snapshot
	var s seen
	fr := fieldReader{b: b, strict: strict}
	for {
		num, typ, ok, err := fr.next()
		if err != nil {
			return Snapshot{}, err
		}
		if !ok {
			break
		}
		if err := s.once(num, strict); err != nil {
			return Snapshot{}, err
		}
		switch num {
		case 1:
			sn.Index, err = fr.varint(num, typ)
		case 2:
			sn.Term, err = fr.varint(num, typ)
		case 3:
			var cb []byte
			if cb, err = fr.bytes(num, typ); err == nil {
				sn.ConfState, err = decodeConfState(cb, strict)
			}
		default:
			err = fr.skip(num, typ)
		}
		if err != nil {
			return Snapshot{}, err
		}
	}
	if strict {
		if err := s.require(1, 2); err != nil {
			return Snapshot{}, err
		}
		if sn.Index > 0 && sn.ConfState == nil {
			return Snapshot{}, fmt.Errorf("snapshot at index %d without ConfState: %w", sn.Index, errMissingField)
		}
	}
	return sn, nil
}

// decodeConfState decodes raftpb.ConfState. Lenient mode defers to raftpb's own
// decoder, as etcd does; strict mode wants the unpacked canonical form.
func decodeConfState(b []byte, strict bool) (*raftpb.ConfState, error) {
	cs := &raftpb.ConfState{}
	if !strict {
		if err := cs.Unmarshal(b); err != nil {
			return nil, err
		}
		return cs, nil
	}
	var s seen
	fr := fieldReader{b: b, strict: true}
	for {
		num, typ, ok, err := fr.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		var v uint64
		if num >= 1 && num <= 5 {
			if v, err = fr.varint(num, typ); err != nil {
				return nil, err
			}
		}
		switch num {
		case 1:
			cs.Voters = append(cs.Voters, v)
		case 2:
			cs.Learners = append(cs.Learners, v)
		case 3:
			cs.VotersOutgoing = append(cs.VotersOutgoing, v)
		case 4:
			cs.LearnersNext = append(cs.LearnersNext, v)
		case 5:
			if err := s.once(num, true); err != nil {
				return nil, err
			}
			if v > 1 {
				return nil, fmt.Errorf("auto_leave %d: %w", v, errRange)
			}
			cs.AutoLeave = v == 1
		default:
			return nil, fr.skip(num, typ)
		}
	}
	if err := s.require(5); err != nil {
		return nil, err
	}
	return cs, nil
}

// decodeEntry decodes raftpb.Entry; Data aliases b. Lenient mode reads what
// raftpb's own Unmarshal reads (fields in any order, the last one winning,
// unknown ones skipped). Strict mode wants the canonical encoding and a
// plausible entry: a known type, term and index above zero, and data for a
// conf change.
func decodeEntry(b []byte, strict bool) (raftpb.Entry, error) {
	var e raftpb.Entry
	var s seen
	fr := fieldReader{b: b, strict: strict}
	for {
		num, typ, ok, err := fr.next()
		if err != nil {
			return e, err
		}
		if !ok {
			break
		}
		if err := s.once(num, strict); err != nil {
			return e, err
		}
		var v uint64
		switch num {
		case 1:
			v, err = fr.varint(num, typ)
			e.Type = raftpb.EntryType(v)
		case 2:
			e.Term, err = fr.varint(num, typ)
		case 3:
			e.Index, err = fr.varint(num, typ)
		case 4:
			e.Data, err = fr.bytes(num, typ)
		default:
			err = fr.skip(num, typ)
		}
		if err != nil {
			return e, err
		}
	}
	if !strict {
		return e, nil
	}
	if err := s.require(1, 2, 3); err != nil {
		return e, err
	}
	switch {
	case e.Type > raftpb.EntryConfChangeV2:
		return e, fmt.Errorf("entry type %d: %w", e.Type, errRange)
	case e.Term == 0 || e.Index == 0:
		return e, fmt.Errorf("entry term %d index %d: %w", e.Term, e.Index, errRange)
	case e.Type != raftpb.EntryNormal && e.Data == nil:
		return e, fmt.Errorf("%s entry without data: %w", e.Type, errMissingField)
	}
	return e, nil
}

// decodeHardState decodes raftpb.HardState; strict mode refuses term 0, which
// raft never persists (an empty HardState is not written).
func decodeHardState(b []byte, strict bool) (raftpb.HardState, error) {
	var st raftpb.HardState
	if !strict {
		err := st.Unmarshal(b)
		return st, err
	}
	var s seen
	fr := fieldReader{b: b, strict: true}
	for {
		num, typ, ok, err := fr.next()
		if err != nil {
			return st, err
		}
		if !ok {
			break
		}
		if err := s.once(num, true); err != nil {
			return st, err
		}
		switch num {
		case 1:
			st.Term, err = fr.varint(num, typ)
		case 2:
			st.Vote, err = fr.varint(num, typ)
		case 3:
			st.Commit, err = fr.varint(num, typ)
		default:
			err = fr.skip(num, typ)
		}
		if err != nil {
			return st, err
		}
	}
	if err := s.require(1, 2, 3); err != nil {
		return st, err
	}
	if st.Term == 0 {
		return st, fmt.Errorf("hard state with term 0: %w", errRange)
	}
	return st, nil
}
