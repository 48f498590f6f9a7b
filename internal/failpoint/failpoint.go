// Package failpoint names the places in lifeboat where a test can make
// the process fail: crash points for the robustness suite. They act only
// in a binary built with -tags failpoints, through go.etcd.io/gofail's
// runtime (GOFAIL_FAILPOINTS="name=panic" at start, or GOFAIL_HTTP=addr
// and `curl -X PUT addr/name -d panic`); otherwise Hit does nothing and
// costs nothing.
//
// A failpoint's "panic" action ends the process, even where the caller
// recovers panics (net/http does in its handlers); "sleep(ms)" delays it.
package failpoint

// The points, by gofail name; those etcd also has carry etcd's name.
var (
	// RaftBeforeSave and RaftAfterSave surround the WAL write and fsync
	// of a Ready's hard state and entries.
	RaftBeforeSave = New("raftBeforeSave")
	RaftAfterSave  = New("raftAfterSave")
	// RaftBeforeSaveSnap and RaftAfterSaveSnap surround the .snap file
	// and WAL record of a snapshot received from the leader.
	RaftBeforeSaveSnap = New("raftBeforeSaveSnap")
	RaftAfterSaveSnap  = New("raftAfterSaveSnap")
	// BeforeCommit is before the bbolt commit of the backend's batch.
	BeforeCommit = New("beforeCommit")
	// SnapshotMidSend is half-way through streaming a snapshot's db to a
	// follower; SnapshotMidReceive half-way through receiving one.
	SnapshotMidSend    = New("snapshotMidSend")
	SnapshotMidReceive = New("snapshotMidReceive")
	// ApplyBeforeOpenSnapshot is after a received snapshot's db has
	// replaced the backend's file and before it is opened.
	ApplyBeforeOpenSnapshot = New("applyBeforeOpenSnapshot")
	// DefragBeforeCopy and DefragBeforeRename are before the defrag
	// copies the db and before it renames the copy over it.
	DefragBeforeCopy   = New("defragBeforeCopy")
	DefragBeforeRename = New("defragBeforeRename")
	// CompactAfterBatch is after each batch of a compaction's deletes.
	CompactAfterBatch = New("compactAfterBatch")
)
