package snapkit

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// KeepSet is what a compaction of a db above its current revision keeps
// of the key bucket: the last pair of each live key, by its position in
// the bucket. Inspect with Options.HashKV finds it in its walk
// (Report.KeepSet) for a db whose SHA-256 trailer it verified;
// WriteCompactedKeeping takes it instead of walking the source a first
// time to find it. It belongs to the db bytes whose SHA-256 it records:
// a caller that hands it on must check the source against DBSHA256.
type KeepSet struct {
	dbSHA256  [32]byte
	revisions uint64 // the pairs of the key bucket
	bits      bitset
}

// keepSetMagic starts KeepSet's binary form; the version is its last byte.
var keepSetMagic = []byte("lifeboat-keepset\x01")

// DBSHA256 is the SHA-256 (hex) of the db bytes the set was found in.
func (k *KeepSet) DBSHA256() string { return hex.EncodeToString(k.dbSHA256[:]) }

// Revisions is the number of pairs in the key bucket.
func (k *KeepSet) Revisions() int { return int(k.revisions) }

// Kept is the number of pairs kept.
func (k *KeepSet) Kept() int {
	n := 0
	for _, w := range k.bits {
		n += bits.OnesCount64(w)
	}
	return n
}

// MarshalBinary is the set as the magic, the db's SHA-256, the number of
// pairs (8 bytes, little-endian) and a bit a pair (little-endian 64-bit
// words, the first pair in the lowest bit).
func (k *KeepSet) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(keepSetMagic)+32+8+8*len(k.bits))
	b = append(b, keepSetMagic...)
	b = append(b, k.dbSHA256[:]...)
	b = binary.LittleEndian.AppendUint64(b, k.revisions)
	for _, w := range k.bits {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b, nil
}

// UnmarshalBinary reads MarshalBinary's form, refusing any other.
func (k *KeepSet) UnmarshalBinary(b []byte) error {
	head := len(keepSetMagic) + 32 + 8
	if len(b) < head || !bytes.Equal(b[:len(keepSetMagic)], keepSetMagic) {
		return errors.New("snapkit: not a keep set (bad magic or too short)")
	}
	var ks KeepSet
	copy(ks.dbSHA256[:], b[len(keepSetMagic):])
	ks.revisions = binary.LittleEndian.Uint64(b[head-8:])
	words := (ks.revisions + 63) / 64
	if rest := uint64(len(b) - head); rest != 8*words {
		return fmt.Errorf("snapkit: keep set of %d pairs: %d bytes of bits, want %d", ks.revisions, rest, 8*words)
	}
	ks.bits = make(bitset, words)
	for i := range ks.bits {
		ks.bits[i] = binary.LittleEndian.Uint64(b[head+8*i:])
	}
	if tail := ks.revisions % 64; tail != 0 && ks.bits[words-1]>>tail != 0 {
		return fmt.Errorf("snapkit: keep set of %d pairs: bits set past the last pair", ks.revisions)
	}
	*k = ks
	return nil
}
