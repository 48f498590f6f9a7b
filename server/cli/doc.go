// Package cli holds lifeboat's command tree: the member command with etcd's
// flags and ETCD_* environment variables, and `lifeboat demo`, a local
// 3-member cluster in one process. cmd/lifeboat only calls Execute.
package cli
