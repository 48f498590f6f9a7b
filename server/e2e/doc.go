// Package e2e tests the lifeboat server as a black box: real etcdctl and
// etcdutl sessions, clientv3 concurrency recipes, process faults (kill -9,
// lagging members, torn WAL tails) and the data dir read by walkit, snapkit
// and etcdutl. Every test runs the same steps against a real etcd v3.6
// cluster first, which validates the harness, and then against lifeboat,
// where a failing step is a failure. The lifeboat side is skipped only while
// cmd/lifeboat has no sources. The package holds tests only.
package e2e
