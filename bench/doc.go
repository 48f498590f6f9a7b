// Package bench drives any etcd v3 endpoint list with a bounded load and
// measures it: N clients share M gRPC connections (clientv3), each issuing
// one request at a time from a fixed key space, until a total count of
// requests or a duration is reached, whichever comes first. A Report holds
// the throughput and the latency distribution (p50, p90, p99, max).
//
// Compare starts real etcd and lifeboat side by side on fresh data dirs and
// runs the same workloads against each leader, alternating the systems cell
// by cell and keeping the median of several rounds, so that the ratio
// lifeboat/etcd is measured on the same machine, in the same run, under the
// same background load.
// The command tree is bench/cli; cmd/lifeboat-bench only calls it.
package bench
