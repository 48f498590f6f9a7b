// Command walwrite is an oracle: it writes a WAL directory with etcd's own
// wal package from a JSON script on stdin, so that Lifeboat's reader can be
// checked on files that etcd wrote exactly as told.
//
// Usage: walwrite --out <dir> [--segment-size N] < script.json
//
//	{"metadata":"<base64>","ops":[
//	  {"save":{"hardState":{"term":N,"vote":N,"commit":N},"entries":[{"term":N,"index":N,"type":N,"data":"<base64>"}]}},
//	  {"snapshot":{"index":N,"term":N,"confState":{"voters":[1]}}}]}
//
// --segment-size sets wal.SegmentSizeBytes, so small values make etcd cut
// segments often. The WAL is created with wal.Create, each op is applied in
// order (WAL.Save or WAL.SaveSnapshot), and the WAL is closed.
package main
