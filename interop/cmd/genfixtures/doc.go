// Command genfixtures makes Lifeboat's etcd fixtures with real etcd: it
// starts a 3-member cluster and a single member on fixed 127.0.0.1 ports,
// runs a scripted, seeded workload through clientv3, records what etcdctl and
// etcdutl say about the result, stops the members with SIGTERM and writes one
// fixture set (see fixtures/README.md):
//
//	<out>/{m1,m2,m3,solo}.tar.gz   the members' data dirs
//	<out>/snapshot.db              etcdctl snapshot save of the cluster
//	<out>/snapshot-status.json     etcdutl snapshot status -w json of it
//	<out>/endpoint-status.json     etcdctl endpoint status -w json
//	<out>/endpoint-hashkv.json     etcdctl endpoint hashkv -w json
//	<out>/members.json             etcdctl member list -w json
//	<out>/VERSION                  the first line of etcd --version
//
// Usage: genfixtures --bin <dir with etcd, etcdctl, etcdutl> --out <dir> --token <cluster token>
//
// Ports and the token are fixed, so member and cluster IDs are the same on
// every run; values come from a seeded generator and lease IDs are chosen,
// so the logical content repeats. bbolt page layout and raft terms may not.
package main
