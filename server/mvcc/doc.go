// Package mvcc is the server's multi-version key-value store: etcd's KV
// semantics (revisions, versions, create and mod revisions, tombstones,
// ranges at a revision, transactions, compaction) and its watches, over a
// server/backend db laid out by snapkit/schema and a snapkit/keyindex index.
//
// # Storage
//
// Every change is a pair of the key bucket: the revision (main, sub) as the
// bbolt key, the mvccpb.KeyValue as the value; a deletion is a tombstone.
// A write transaction (Put, DeleteRange, a Txn with writes, a lease revoke)
// takes the next main revision; its changes take sub revisions 0, 1, ... As
// in etcd, an empty store is at revision 1, so the first write is revision
// 2, and a store never compacted has compact revision -1. The key index
// maps each key to its revisions and answers every read; values come from
// the backend. New rebuilds the index from the key bucket and finishes a
// compaction that a crash interrupted.
//
// # Applying raft entries
//
// Writes are made by the apply loop only, inside Apply(index, term, fn):
// every backend batch that holds the entry's data also holds (index, term)
// as meta/consistent_index and meta/term, so a crash never applies an entry
// twice. Reads (Range, a Txn without writes, watches) run concurrently.
//
// # Compaction
//
// Compact(rev) records meta/scheduledCompactRev, makes reads below rev fail
// with ErrCompacted at once, and then, in the background, compacts the key
// index and deletes the revisions it does not keep from the key bucket in
// batches, before it records meta/finishedCompactRev.
//
// # Watches
//
// A WatchStream holds watchers. A watcher that starts at the next revision
// is synced: each write transaction hands it its events. One that starts at
// an older revision is unsynced: a background loop replays the key bucket
// for it in bounded batches until it has caught up, and moves it to the
// synced group under the same lock that writers notify under, so no event
// is lost or repeated. A watcher whose channel is full is moved back to the
// unsynced group and replays from the key bucket later: the apply loop never
// waits for a slow client. An unsynced watcher whose next revision has been
// compacted receives one response with CompactRevision set and is removed.
//
// When a follower installs a snapshot db, the server stops the old store
// (Stop keeps its watch streams open) and the new store takes the streams
// over (AdoptWatchers): every watcher becomes unsynced and replays from
// the new db what it has not seen, as etcd's watchable store does on
// Restore.
package mvcc
