package schema

import (
	"encoding/binary"
	"fmt"
)

// Sizes of the key bucket's keys.
const (
	// RevisionSize is the length of an encoded revision: main, '_', sub.
	RevisionSize = 17
	// TombstoneSize is the length of a tombstone's key: a revision and 't'.
	TombstoneSize = RevisionSize + 1
	// TombstoneMarker is the byte appended to the revision of a deletion.
	TombstoneMarker = 't'
	// revisionSeparator sits between the main and sub revisions.
	revisionSeparator = '_'
)

// Revision is an mvcc revision: the main revision counts transactions that
// changed the store, the sub revision counts changes within one.
type Revision struct {
	Main int64
	Sub  int64
}

// GreaterThan reports whether r sorts after o.
func (r Revision) GreaterThan(o Revision) bool { return r.Compare(o) > 0 }

// Compare returns -1, 0 or 1 as r sorts before, with or after o.
func (r Revision) Compare(o Revision) int {
	switch {
	case r.Main != o.Main:
		if r.Main < o.Main {
			return -1
		}
		return 1
	case r.Sub < o.Sub:
		return -1
	case r.Sub > o.Sub:
		return 1
	}
	return 0
}

// String formats r as "main_sub", the shape of its bucket key.
func (r Revision) String() string { return fmt.Sprintf("%d_%d", r.Main, r.Sub) }

// AppendRevision appends the key bucket key of r to dst: 17 bytes, or 18
// with the tombstone marker.
func AppendRevision(dst []byte, r Revision, tombstone bool) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Main))
	dst = append(dst, revisionSeparator)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Sub))
	if tombstone {
		dst = append(dst, TombstoneMarker)
	}
	return dst
}

// RevisionBytes returns the 17-byte key of r.
func RevisionBytes(r Revision) []byte {
	return AppendRevision(make([]byte, 0, TombstoneSize), r, false)
}

// TombstoneBytes returns the 18-byte key of a deletion at r.
func TombstoneBytes(r Revision) []byte {
	return AppendRevision(make([]byte, 0, TombstoneSize), r, true)
}

// IsTombstone reports whether b is a tombstone key (18 bytes ending in 't').
func IsTombstone(b []byte) bool {
	return len(b) == TombstoneSize && b[RevisionSize] == TombstoneMarker
}

// ParseRevision decodes a key bucket key. It fails with ErrBadRevision,
// naming the problem and the key in hex, for any other length, a missing
// '_' separator, a trailing byte other than 't', or a negative revision.
func ParseRevision(b []byte) (rev Revision, tombstone bool, err error) {
	switch len(b) {
	case RevisionSize:
	case TombstoneSize:
		if b[RevisionSize] != TombstoneMarker {
			return Revision{}, false, fmt.Errorf("%w %x: byte 17 is %#02x, want 't'", ErrBadRevision, b, b[RevisionSize])
		}
		tombstone = true
	default:
		return Revision{}, false, fmt.Errorf("%w %x: %d bytes, want %d or %d", ErrBadRevision, b, len(b), RevisionSize, TombstoneSize)
	}
	if b[8] != revisionSeparator {
		return Revision{}, false, fmt.Errorf("%w %x: byte 8 is %#02x, want '_'", ErrBadRevision, b, b[8])
	}
	rev = Revision{Main: int64(binary.BigEndian.Uint64(b[:8])), Sub: int64(binary.BigEndian.Uint64(b[9:17]))}
	if rev.Main < 0 || rev.Sub < 0 {
		return Revision{}, false, fmt.Errorf("%w %x: negative revision %s", ErrBadRevision, b, rev)
	}
	return rev, tombstone, nil
}
