// Command walread is an oracle: it reads a WAL directory with etcd's own
// wal package (wal.OpenForRead at a snapshot, ReadAll, and
// wal.ValidSnapshotEntries) and prints what etcd sees as JSON:
//
//	{"metadata":"<base64>","hardState":{"term":N,"vote":N,"commit":N},
//	 "entries":[{"term":N,"index":N,"type":N,"data":"<base64>"}],
//	 "snapshots":[{"index":N,"term":N,"confState":{...}}]}
//
// Usage: walread [--snap-index N --snap-term T] [--bench] <wal-dir>
//
// With --bench it only reads, and prints {"entries":N,"elapsedNs":N}, for
// side-by-side benchmarks. An error goes to stderr with exit status 1.
package main
