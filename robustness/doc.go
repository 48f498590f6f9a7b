// Package robustness checks that a cluster stays linearizable and loses
// nothing under faults: crashes, pauses, partitions, membership changes,
// disk and crash points, and hostile clients. The same suite runs against
// lifeboat and, as the control that validates the harness, real etcd v3.6.
//
// The library part records what concurrent clients did (history.go,
// traffic.go) and checks it: linearizability of the key-value history with
// porcupine and a model of etcd's put, range, delete, txn and leases
// (model.go, linearizable.go), the watch guarantees (watch.go), the
// revisions that serializable reads see, and acknowledged writes that were
// lost (check.go). The tests (robustness_test.go and the files beside it)
// run three-member clusters of real processes behind per-link TCP proxies
// (internal/netproxy), inject one named fault scenario each, and print a
// table of operations, faults, anomalies and lost acknowledged writes
// (also written to results/robustness.txt). The crash-* scenarios run
// lifeboat built with -tags failpoints and make a member die at one of its
// gofail points (internal/failpoint).
//
//	go test ./robustness/ -run 'TestRobustness$' -v -robustness.duration=4s
//	ROBUSTNESS_DURATION=1h go test ./robustness/ -run 'TestRobustness$' -v -timeout 0 -robustness.duration=20s
package robustness
