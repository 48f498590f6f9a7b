// Package keyindex is the in-memory index of etcd's mvcc store: for every
// user key, the revisions at which it was written, grouped in generations.
// The server answers every Range through it, compaction asks it which
// revisions of the key bucket to keep, and HashKV, live-key counts and
// `snapkit ls/diff` read it. The rules are etcd's (storage/mvcc key_index.go),
// restated here.
//
// # Generations
//
// A key's history is a list of generations. A generation starts with the put
// that creates the key (its created revision), holds every later put, and
// ends with the tombstone that deletes the key; the tombstone is the last
// revision of the generation and an empty generation follows it. The last
// generation is the live one; it is empty while the key is deleted. The
// version of the key at a revision is its position in the generation,
// counting from 1.
//
//	put(1) put(2) del(3) put(4)   ->   {1 2 3} {4}
//
// # Reads at a revision
//
// Get(key, rev) finds the generation that was live at rev: a generation whose
// tombstone is at or before rev is over, so it yields nothing. Within it, the
// answer is the newest revision whose main revision is <= rev.
//
// # Compaction
//
// Compact(rev) forgets history before rev. For each key it drops the
// generations whose tombstone is before rev, and within the first remaining
// generation every revision older than the newest one at or before rev. The
// revisions at or before rev that survive form the keep set: the key bucket
// pairs at or before rev that are not in it may be deleted. A key left with
// nothing but an empty generation leaves the index. Keep(rev) computes the
// same set without changing the index, except that it leaves out a
// tombstone that would be the only survivor of its generation; HashKV uses
// it (see FORMATS.md §11).
//
// # Restore
//
// Restore rebuilds the index from a key bucket, replaying its pairs in
// revision order. The first pair seen for a key may come after a
// compaction, so it starts a generation with the create revision and version
// that the stored KeyValue records; a tombstone seen first records a
// deleted key.
//
// An Index is safe for concurrent use.
package keyindex
