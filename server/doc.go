// Package server is a lifeboat member: an etcd-compatible server.
//
// A member is a go.etcd.io/raft/v3 Node (PreVote, CheckQuorum) over a
// raft.MemoryStorage made durable by a walkit WAL and snapkit/snap .snap
// files. runRaft persists each Ready (the leader sends its messages first,
// a follower after the fsync) and hands the committed entries to runApply,
// which applies them in order to the mvcc store, the lessor, the alarms and
// the membership; the store writes each entry's index as the consistent
// index in the same backend batch, so an entry applies exactly once across
// crashes. Proposers wait for their result by request ID. Linearizable
// reads share ReadIndex rounds (read.go).
//
// Boot paths (bootstrap.go): a new cluster (member and cluster IDs derived
// from the peer URLs and token, bootstrap AddNode entries as etcd's), a
// restart from WAL and snapshot (a torn WAL tail is repaired once), a join
// of an existing cluster (the membership fetched from a peer), and
// --force-new-cluster (FORMATS.md §10).
//
// Every --snapshot-count applied entries the member commits the backend,
// writes a .snap file, then the WAL snapshot record, releases older WAL
// segments and compacts the raft log. A lagging follower receives the
// bbolt db through server/transport and swaps its stores for it; the leader
// sends with it a snapshot made at its applied index with the current
// ConfState, not raft's stored one, which may predate the follower.
//
// Membership changes are ConfChange entries, validated when they apply
// (and again, against the snapshot's membership carried forward, when a
// restart replays them), after etcd's strict reconfiguration checks on
// the member that takes the request (--strict-reconfig-check).
//
// Clients reach the gRPC services (KV, Watch, Lease, Cluster, Maintenance,
// with etcdserverpb types and etcd's rpctypes errors) and the HTTP
// endpoints /health, /version and /metrics on the same client URL; the
// first bytes of a connection tell gRPC (HTTP/2) from HTTP/1.
package server
