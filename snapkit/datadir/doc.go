// Package datadir is the one place that names the files of an etcd data
// dir, as etcd v3.5 and v3.6 lay it out:
//
//	<data-dir>/member/wal/%016x-%016x.wal   the WAL (or --wal-dir)
//	<data-dir>/member/snap/%016x-%016x.snap raft snapshots (package snapkit/snap)
//	<data-dir>/member/snap/db               the bbolt backend
//	<data-dir>/member/snap/%016x.snap.db    a db received from the leader, before it replaces db
//	<data-dir>/member/snap/tmp*             partial files of an interrupted receive or save
//
// The server, the tools and restore build every path through a Layout, so
// that a dedicated --wal-dir is honoured everywhere.
package datadir
