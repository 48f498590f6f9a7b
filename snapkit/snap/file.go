package snap

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Errors. They carry the package name; test them with errors.Is.
var (
	// ErrNoSnapshot means no .snap file could be loaded (or matched).
	ErrNoSnapshot = errors.New("snap: no available snapshot")
	// ErrEmptySnapshot means the file, its crc or its data is empty.
	ErrEmptySnapshot = errors.New("snap: empty snapshot")
	// ErrCRCMismatch means the stored crc is not the CRC-32C of the data.
	ErrCRCMismatch = errors.New("snap: crc mismatch")
	// ErrBadName means a file name is not %016x-%016x.snap.
	ErrBadName = errors.New("snap: bad snapshot file name")
	// ErrBadProto means the file is not a well-formed snappb.Snapshot or
	// its data not a raftpb.Snapshot.
	ErrBadProto = errors.New("snap: bad protobuf")
)

// Ext is the extension of a raft snapshot file.
const Ext = ".snap"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Name returns the file name of the snapshot at (term, index).
func Name(term, index uint64) string { return fmt.Sprintf("%016x-%016x%s", term, index, Ext) }

// ParseName parses a file name as Name prints it.
func ParseName(name string) (term, index uint64, err error) {
	base, ok := strings.CutSuffix(name, Ext)
	t, i, ok2 := strings.Cut(base, "-")
	if !ok || !ok2 || len(t) != 16 || len(i) != 16 {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if term, err = strconv.ParseUint(t, 16, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if index, err = strconv.ParseUint(i, 16, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return term, index, nil
}

// Encode returns the bytes of the .snap file for s: snappb.Snapshot{crc,
// data = s marshaled}.
func Encode(s *raftpb.Snapshot) ([]byte, error) {
	data, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("snap: marshal raftpb.Snapshot: %w", err)
	}
	b := make([]byte, 0, len(data)+16)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(crc32.Checksum(data, crcTable)))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, data)
	return b, nil
}

// decodeEnvelope parses snappb.Snapshot. Unknown fields are skipped, as
// proto2 does.
func decodeEnvelope(b []byte) (crc uint32, data []byte, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, nil, fmt.Errorf("%w: snappb tag: %v", ErrBadProto, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, nil, fmt.Errorf("%w: snappb crc: %v", ErrBadProto, protowire.ParseError(n))
			}
			if v > 0xffffffff {
				return 0, nil, fmt.Errorf("%w: snappb crc %#x overflows uint32", ErrBadProto, v)
			}
			crc, b = uint32(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, nil, fmt.Errorf("%w: snappb data: %v", ErrBadProto, protowire.ParseError(n))
			}
			data, b = v, b[n:]
		case num == 1 || num == 2:
			return 0, nil, fmt.Errorf("%w: snappb field %d has wire type %d", ErrBadProto, num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, nil, fmt.Errorf("%w: snappb field %d: %v", ErrBadProto, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return crc, data, nil
}

// Decode checks and decodes the bytes of a .snap file.
func Decode(b []byte) (*raftpb.Snapshot, error) {
	if len(b) == 0 {
		return nil, ErrEmptySnapshot
	}
	crc, data, err := decodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 || crc == 0 {
		return nil, ErrEmptySnapshot
	}
	if got := crc32.Checksum(data, crcTable); got != crc {
		return nil, fmt.Errorf("%w: want %#08x, got %#08x", ErrCRCMismatch, crc, got)
	}
	s := new(raftpb.Snapshot)
	if err := s.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("%w: raftpb.Snapshot: %v", ErrBadProto, err)
	}
	return s, nil
}

// Read reads and decodes the .snap file at path. Errors name the file.
func Read(path string) (*raftpb.Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snap: %w", err)
	}
	s, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("snap: %s: %w", filepath.Base(path), err)
	}
	return s, nil
}
