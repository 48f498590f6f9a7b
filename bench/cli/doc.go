// Package cli is the command tree of lifeboat-bench: `run` drives an
// endpoint list with one workload, `compare` runs real etcd and lifeboat side
// by side. cmd/lifeboat-bench only calls Execute.
package cli
