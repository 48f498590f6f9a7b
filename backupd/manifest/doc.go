// Package manifest defines what backupd stores and how it names it.
//
// # Object layout
//
// A backup of cluster C taken at UTC time T is a directory of objects
//
//	<prefix>/<C as %016x>/<T as 20060102T150405.000Z>-r<revision>/
//	    snapshot.db[.zst|.gz][.age]   the stored snapshot (db bytes + SHA-256 trailer), compressed, then encrypted
//	    manifest.json                 the commit marker, written last
//
// Names sort by cluster, then time, and parse without being read (ParseKey).
// While a backup streams, its snapshot is uploaded as
// <prefix>/<C>/<T>.incoming/<object>, since the revision is known only once
// the stream has ended; when the spool has been verified the object is copied
// to its final name and the staging object removed. The lock and the state
// of the newest attempt live beside the clusters, at <prefix>/backupd.lock
// and <prefix>/backupd.state.json, and what the daemon (backupd run) tells
// its watchers, its schedules and its last drill, at
// <prefix>/backupd.daemon.json.
//
// # The commit rule
//
// A backup exists only if its manifest.json exists and parses. An object
// without a manifest is never listed, restored or counted for retention; it
// is an orphan, removed once older than a grace period.
//
// # manifest.json
//
// A JSON object (Manifest), format 1. It records where the snapshot came
// from (cluster, member, role, endpoint, etcd and storage versions), what it
// holds (revision, compact revision, raft index and term, hashkv at its
// revision, key count), the db's size and SHA-256 (the trailer), and the
// stored object's key, size, SHA-256, MD5, codec, level and age recipients.
// Verify reads the object back through the codec and compares each of these.
package manifest
