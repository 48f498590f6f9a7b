// Package walkit reads, writes, verifies and repairs etcd's write-ahead log
// (v3.5 and v3.6) byte for byte. The lifeboat server writes its WAL with it
// and every tool reads with it.
//
// # Directory and segments
//
// A WAL directory (member/wal) holds segments named %016x-%016x.wal: a
// sequence number, then the raft index of the first entry expected in the
// segment. Sequence numbers are contiguous and the first segment is
// 0000000000000000-0000000000000000.wal. Other names are ignored, among them
// the writer's spare segment (0.tmp or 1.tmp, preallocated and locked ahead of
// the next cut) and the .broken copies that repairs keep.
//
// Every new segment is preallocated to SegmentSizeBytes (64,000,000 bytes), so
// the tail segment reads as records followed by zeros. Once a Save leaves the
// tail at or beyond that size the writer cuts: it truncates the tail to its
// data, writes a CRC, Metadata and (if any) State record into the spare file
// and renames it to the next segment name. Writers hold an exclusive OFD lock
// (F_OFD_SETLK, flock where unsupported) on every segment they may still need;
// a held lock is ErrLocked, "file already locked".
//
// # Framing
//
// Each record is
//
//	[8-byte little-endian length field][N bytes walpb.Record][P zero bytes]
//
// with P = (8 - N%8) % 8. The length field is N, ORed with (0x80|P)<<56 when
// P > 0. A length field of 0 ends the segment (the preallocated zeros).
//
// # Records
//
// walpb.Record is proto2: type (1, varint, always written), crc (2, varint,
// always written), data (3, bytes, when non-nil). The types are:
//
//	1 Metadata  data is opaque to the WAL; etcd writes etcdserverpb.Metadata{NodeID=1, ClusterID=2}
//	2 Entry     raftpb.Entry{Type=1, Term=2, Index=3, Data=4}
//	3 State     raftpb.HardState{Term=1, Vote=2, Commit=3}
//	4 Crc       no data; crc holds the running CRC at the end of the previous segment
//	5 Snapshot  walpb.Snapshot{Index=1, Term=2, ConfState=3}; Index > 0 requires a ConfState
//
// Create writes a CRC record (crc 0), the Metadata record and an empty
// Snapshot record. A segment made by a cut starts with CRC, Metadata and State.
//
// # CRC
//
// The crc of every non-CRC record is CRC-32C (Castagnoli) over the data of
// every non-CRC record since the first segment, chained with crc32.Update.
// The CRC record at the head of each segment carries the running value, so
// decoding may start at any segment. The CRC covers only data: not the type,
// not the padding, not the length field.
//
// # Torn writes
//
// In the last segment only, a record that fails to decode and has a 512-byte
// sector chunk (split at absolute file offsets) that is all zero, or that runs
// past the end of the file, is a torn write: etcd ignores it when reading and
// truncates it on Repair.
//
// # Strict decoding
//
// ReadAll, ValidSnapshotEntries and Repair decode as etcd does. Reader, Verify
// and PlanRepair are stricter, so that any single-byte change inside a record
// is caught at that record: the length field must be canonical, padding zero,
// the type 1 to 5, every payload the canonical encoding of its message
// (ascending known fields, minimal varints, no unknown fields), and the record
// possible where it stands (a CRC record first in each segment and holding 0 in
// segment 0, metadata second and equal to the first, entries with a term and
// index above zero and no gap in the index, a HardState term that is neither
// zero nor below an entry already written). After damage they resynchronise on
// the next frame that decodes strictly, at 8-byte boundaries.
//
// # Tests and segment size
//
// Create and Open always use SegmentSizeBytes. The package's tests reach the
// unexported create and open, which take the segment size as an argument, to
// cut segments of a few kilobytes.
package walkit
