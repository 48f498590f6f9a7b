// Package snap reads and writes the raft snapshot files of an etcd data dir,
// member/snap/%016x-%016x.snap (term, index), and the v2-store JSON that
// they carry.
//
// # File format
//
// A .snap file is one protobuf message, etcd's snappb.Snapshot (proto2):
//
//	field 1  crc   uint32 (varint), always written: CRC-32C (Castagnoli) of data
//	field 2  data  bytes: a marshaled raftpb.Snapshot
//
// raftpb.Snapshot is {data=1 bytes, metadata=2 SnapshotMetadata{conf_state=1,
// index=2, term=3}}. The file is named after the metadata's term and index.
// An empty file, a zero crc or empty data is an empty snapshot
// (ErrEmptySnapshot); a crc that does not match is ErrCRCMismatch.
//
// # Saving and loading
//
// SaveSnap writes the file under a temporary name, fsyncs it, renames it
// into place and fsyncs the directory. Load and LoadNewestAvailable try the
// .snap files newest first (by name), and, as etcd does on start, rename a
// file that does not decode to <name>.broken and go on with the next one.
// LoadNewestAvailable takes only a snapshot whose (term, index) matches a
// snapshot record of the WAL.
//
// # v2-store JSON
//
// raftpb.Snapshot.data is etcd's v2 store serialised as JSON: {"Root":
// node, "WatcherHub": …, "CurrentIndex": n, "Stats": …, "CurrentVersion": 2}
// where a node is {"Path", "CreatedIndex", "ModifiedIndex", "ExpireTime",
// "Value", "Children": {name: node}}. etcd 3.5 stores the whole v2 store;
// 3.6 keeps only the membership under /0:
//
//	/0/members/<hex id>/raftAttributes  {"peerURLs":[…],"isLearner":true}
//	/0/members/<hex id>/attributes      {"name":"…","clientURLs":[…]}
//	/0/removed_members/<hex id>         ""
//	/0/version                          "3.6.0"
//
// DecodeMembership reads these from either; EncodeMembership writes a 3.6
// style store from a list of members.
package snap
