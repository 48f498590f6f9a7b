package schema

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/coreos/go-semver/semver"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
)

// Keys of the meta bucket.
var (
	ConsistentIndexKey     = []byte("consistent_index")
	TermKey                = []byte("term")
	ConfStateKey           = []byte("confState")
	ScheduledCompactRevKey = []byte("scheduledCompactRev")
	FinishedCompactRevKey  = []byte("finishedCompactRev")
	StorageVersionKey      = []byte("storageVersion")
)

// readUint64 reads an 8-byte big-endian value; missing reads as 0.
func readUint64(tx *bolt.Tx, bucket, key []byte) (uint64, error) {
	v := get(tx, bucket, key)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, badValue(bucket, key, "%d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint64(tx *bolt.Tx, bucket, key []byte, v uint64) error {
	return put(tx, bucket, key, binary.BigEndian.AppendUint64(nil, v))
}

// ConsistentIndex returns meta/consistent_index: the raft index of the last
// entry applied to this db (0 if absent).
func ConsistentIndex(tx *bolt.Tx) (uint64, error) {
	return readUint64(tx, MetaBucket, ConsistentIndexKey)
}

// SetConsistentIndex writes meta/consistent_index.
func SetConsistentIndex(tx *bolt.Tx, index uint64) error {
	return putUint64(tx, MetaBucket, ConsistentIndexKey, index)
}

// Term returns meta/term: the term of the consistent index (0 if absent).
func Term(tx *bolt.Tx) (uint64, error) {
	return readUint64(tx, MetaBucket, TermKey)
}

// SetTerm writes meta/term.
func SetTerm(tx *bolt.Tx, term uint64) error {
	return putUint64(tx, MetaBucket, TermKey, term)
}

// ConfState returns the raft ConfState stored as JSON in meta/confState, or
// nil if there is none.
func ConfState(tx *bolt.Tx) (*raftpb.ConfState, error) {
	v := get(tx, MetaBucket, ConfStateKey)
	if v == nil {
		return nil, nil
	}
	cs := new(raftpb.ConfState)
	if err := json.Unmarshal(v, cs); err != nil {
		return nil, badValue(MetaBucket, ConfStateKey, "%v", err)
	}
	return cs, nil
}

// SetConfState writes cs as JSON into meta/confState.
func SetConfState(tx *bolt.Tx, cs raftpb.ConfState) error {
	v, err := json.Marshal(cs)
	if err != nil {
		return fmt.Errorf("schema: marshal confState: %w", err)
	}
	return put(tx, MetaBucket, ConfStateKey, v)
}

// readCompactRev reads a 17-byte revision key holding a compaction's main
// revision.
func readCompactRev(tx *bolt.Tx, key []byte) (int64, bool, error) {
	v := get(tx, MetaBucket, key)
	if v == nil {
		return 0, false, nil
	}
	rev, tomb, err := ParseRevision(v)
	if err != nil {
		return 0, false, fmt.Errorf("schema: %s/%s: %w", MetaBucket, key, err)
	}
	if tomb {
		return 0, false, badValue(MetaBucket, key, "a tombstone revision %x", v)
	}
	return rev.Main, true, nil
}

// ScheduledCompactRev returns meta/scheduledCompactRev: the last compaction
// asked for, and whether there is one.
func ScheduledCompactRev(tx *bolt.Tx) (int64, bool, error) {
	return readCompactRev(tx, ScheduledCompactRevKey)
}

// SetScheduledCompactRev writes meta/scheduledCompactRev as revision (rev, 0).
func SetScheduledCompactRev(tx *bolt.Tx, rev int64) error {
	return put(tx, MetaBucket, ScheduledCompactRevKey, RevisionBytes(Revision{Main: rev}))
}

// FinishedCompactRev returns meta/finishedCompactRev: the last compaction
// done, and whether there is one.
func FinishedCompactRev(tx *bolt.Tx) (int64, bool, error) {
	return readCompactRev(tx, FinishedCompactRevKey)
}

// SetFinishedCompactRev writes meta/finishedCompactRev as revision (rev, 0).
func SetFinishedCompactRev(tx *bolt.Tx, rev int64) error {
	return put(tx, MetaBucket, FinishedCompactRevKey, RevisionBytes(Revision{Main: rev}))
}

// StorageVersion returns meta/storageVersion ("3.6.0"), or "" if absent as
// in every v3.5 db. A value that is not a semantic version is an error.
func StorageVersion(tx *bolt.Tx) (string, error) {
	return readVersion(tx, MetaBucket, StorageVersionKey)
}

// readVersion reads a semantic version ("3.6.0"); missing reads as "".
func readVersion(tx *bolt.Tx, bucket, key []byte) (string, error) {
	v := get(tx, bucket, key)
	if v == nil {
		return "", nil
	}
	if _, err := semver.NewVersion(string(v)); err != nil {
		return "", badValue(bucket, key, "%v", err)
	}
	return string(v), nil
}

// SetStorageVersion writes meta/storageVersion.
func SetStorageVersion(tx *bolt.Tx, version string) error {
	return put(tx, MetaBucket, StorageVersionKey, []byte(version))
}
