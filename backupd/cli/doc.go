// Package cli is the backupd command tree: run (the daemon), once, list,
// verify, fetch, prune and drill. cmd/backupd only calls Execute.
package cli
