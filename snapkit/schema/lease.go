package schema

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// Lease is etcd's leasepb.Lease, the value of the lease bucket.
type Lease struct {
	ID           int64 // field 1
	TTL          int64 // field 2, seconds granted
	RemainingTTL int64 // field 3, seconds left at the last checkpoint (0: none)
}

// LeaseKey returns the lease bucket key of id: 8 bytes big-endian.
func LeaseKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// MarshalLease encodes l as proto3 leasepb.Lease: zero fields are omitted.
func MarshalLease(l Lease) []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   int64
	}{{1, l.ID}, {2, l.TTL}, {3, l.RemainingTTL}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	return b
}

// UnmarshalLease decodes a proto3 leasepb.Lease. Unknown fields are skipped,
// as proto3 does; a malformed field is an error.
func UnmarshalLease(b []byte) (Lease, error) {
	var l Lease
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Lease{}, fmt.Errorf("lease: tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var dst *int64
		switch num {
		case 1:
			dst = &l.ID
		case 2:
			dst = &l.TTL
		case 3:
			dst = &l.RemainingTTL
		}
		if dst != nil && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return Lease{}, fmt.Errorf("lease: field %d: %w", num, protowire.ParseError(n))
			}
			*dst = int64(v)
			b = b[n:]
			continue
		}
		if dst != nil {
			return Lease{}, fmt.Errorf("lease: field %d: wire type %d, want varint", num, typ)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return Lease{}, fmt.Errorf("lease: field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return l, nil
}

// Leases returns every lease of the lease bucket in key order.
func Leases(tx *bolt.Tx) ([]Lease, error) {
	b := tx.Bucket(LeaseBucket)
	if b == nil {
		return nil, nil
	}
	var out []Lease
	err := b.ForEach(func(k, v []byte) error {
		l, err := UnmarshalLease(v)
		if err != nil {
			return badValue(LeaseBucket, k, "%v", err)
		}
		if len(k) != 8 || int64(binary.BigEndian.Uint64(k)) != l.ID {
			return badValue(LeaseBucket, k, "key does not match lease ID %x", l.ID)
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// PutLease writes l under its ID.
func PutLease(tx *bolt.Tx, l Lease) error {
	return put(tx, LeaseBucket, LeaseKey(l.ID), MarshalLease(l))
}

// DeleteLease removes the lease id.
func DeleteLease(tx *bolt.Tx, id int64) error {
	return del(tx, LeaseBucket, LeaseKey(id))
}
