// Package schema is etcd's bbolt backend layout (v3.5 and v3.6), for reading
// and for writing: the member/snap/db of a data dir, and the db part of a
// snapshot file. The server's mvcc store, restore and the snapkit tools all
// go through it, so the layout is written down once, here.
//
// # Buckets
//
// A backend holds these root buckets; bbolt keeps them in bytewise order:
//
//	alarm  auth  authRoles  authUsers  cluster  key  lease  members  members_removed  meta
//
// CreateBuckets makes every one of them.
//
// # key
//
// One pair per change of a user key. The bbolt key is the revision of the
// change: the main revision as 8 bytes big-endian, the byte '_', the sub
// revision as 8 bytes big-endian (17 bytes). A deletion (tombstone) appends
// the byte 't' (18 bytes). Keys therefore sort in revision order.
//
// The value is a proto3 mvccpb.KeyValue {key=1, create_revision=2,
// mod_revision=3, version=4, value=5, lease=6}. A tombstone's value holds only
// the key. `etcdutl snapshot restore --bump-revision` writes one pair with an
// empty value at (latest+N, 0); UnmarshalKeyValue accepts it (an empty
// KeyValue). Writers set FillPercent 0.9 on this bucket (KeyBucketFillPercent)
// because revisions only grow. Readers that scan the whole bucket use
// ViewKeyValue, which decodes in place, without copying the key and value.
//
// # meta
//
//	consistent_index     8 bytes big-endian: the raft index of the last applied entry
//	term                 8 bytes big-endian: its term (v3.5+)
//	confState            JSON of raftpb.ConfState (v3.5+)
//	scheduledCompactRev  17-byte revision (main, 0) of the last compaction asked for
//	finishedCompactRev   17-byte revision (main, 0) of the last compaction done
//	storageVersion       "3.6.0" (v3.6+; absent in v3.5)
//
// # lease
//
// Key: the lease ID as 8 bytes big-endian. Value: leasepb.Lease {ID=1 int64,
// TTL=2 int64, RemainingTTL=3 int64}, proto3, encoded here with protowire
// because leasepb lives in etcd's server module.
//
// # members, members_removed, cluster
//
// members: key is the member ID in lowercase hex without padding, value the
// member's JSON (see Member). members_removed: key the hex ID, value
// "removed". cluster: clusterVersion ("3.6.0") and downgrade (JSON of
// DowngradeInfo).
//
// # alarm, auth, authUsers, authRoles
//
// alarm: the key is a marshaled etcdserverpb.AlarmMember, the value empty.
// auth: authEnabled (one byte, 1 enabled, 0 disabled) and authRevision (8
// bytes big-endian). authUsers and authRoles: the name, then a marshaled
// authpb.User or authpb.Role.
//
// # Reading and writing
//
// Every accessor works inside a *bolt.Tx that the caller owns, so that the
// server can write the consistent index in the same transaction as the data.
// A missing key reads as the zero value (as in etcd); a malformed value is an
// error naming the bucket and the key. A write to a missing bucket fails with
// ErrBucketMissing.
package schema
