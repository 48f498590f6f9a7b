// Package snapkit reads etcd's backend files for operators: snapshot files
// made by `etcdctl snapshot save`, and the member/snap/db of a data dir.
//
// # Snapshot file
//
// A snapshot file is the bbolt db, byte for byte, followed by a 32-byte
// SHA-256 of those bytes. etcd detects the trailer by size alone: a file
// whose size modulo 512 is 32 has one (bbolt files are whole pages, so a db
// copied out of member/snap/db never does). VerifyTrailer streams the db part
// through SHA-256 with a fixed buffer.
//
// # Reading without trusting the file
//
// A damaged bbolt file can make go.etcd.io/bbolt fault, loop or panic in a
// goroutine of its own, so every file is first walked by this package's own
// page reader (walk.go): it maps only the db part (never the trailer), checks
// every bound before it reads, visits each page once, and reports what
// bbolt's Tx.Check reports (unreachable, doubly referenced or freed pages,
// bad page types, key order), naming the page. Only a file that passes is
// handed to bbolt (OpenDB). The same single pass feeds the status numbers, so
// Inspect never holds the file in memory: the mapping is dropped from the
// resident set every 4 MiB, SHA-256 runs in a goroutine of its own from a
// 1 MiB buffer, and the walk's goroutine hashes each leaf's pairs in one
// run and decodes the key bucket's pairs in place (schema.ViewKeyValue),
// with no allocation per pair.
//
// # Status
//
// Status reports what `etcdutl snapshot status` 3.6 prints: hash (CRC-32C
// over each root bucket's name, then its keys and values, in order),
// revision (main revision of the last key in `key`), totalKey (distinct user
// keys live at the head, replaying tombstones), totalSize (the bbolt tx
// size: high-water mark times page size) and version (meta/storageVersion as
// semver). It adds 3.5's totalKey (every pair in every bucket), the
// compaction marks, consistent index and term, the members and the trailer.
//
// # Hashes
//
// HashKV is etcd's Maintenance.HashKV over a bbolt transaction and a key
// index (FORMATS.md §11); Hash is the legacy Maintenance.Hash.
package snapkit
