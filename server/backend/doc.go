// Package backend is the server's bbolt backend: the member/snap/db file,
// opened through snapkit/schema with etcd's options and laid out exactly as
// snapkit/schema defines it.
//
// # Batching
//
// Writes go into one long bbolt write transaction, the batch. The batch is
// committed (and fsynced) every Config.BatchInterval (100 ms), once
// Config.BatchLimit (10,000) writes are pending, on ForceCommit, and on
// Close. Writers take the batch with BatchTx.Lock and release it with
// BatchTx.Unlock; everything written under one lock is seen by readers at
// once, at Unlock.
//
// # The consistent index
//
// BatchTx.SetConsistentIndex records the raft index and term of the entry
// whose data the batch holds. They are written into meta/consistent_index
// and meta/term inside the same bbolt transaction as the data, just before
// it commits, so a crash keeps both or neither.
//
// # Reads
//
// Only the key bucket is read concurrently with the batch. Its pending writes
// are kept in an append-only buffer; a ReadTx pairs a bbolt read transaction
// with a snapshot of that buffer, taken under a lock held for a few hundred
// nanoseconds, so reads never wait for a commit's fsync and writers never
// wait for a long range. Other buckets (meta, lease, members, ...) are read
// under BatchTx.Lock through BatchTx.Tx, which sees uncommitted writes, or
// through ReadTx.Tx, which sees the last commit.
package backend
