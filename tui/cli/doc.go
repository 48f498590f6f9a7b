// Package cli is the lbtop command: etcdctl's connection flags (and their
// ETCDCTL_* variables), --bucket (a backupd store), --refresh, then the cockpit of package
// tui until q. cmd/lbtop only calls Execute.
package cli
