//go:build !linux

package schema

// etcd syncs the freelist everywhere but Linux.
const noFreelistSync = false
