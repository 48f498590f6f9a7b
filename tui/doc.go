// Package tui is lbtop, a bubbletea cockpit for an etcd cluster: which
// member leads, who lags, how close each db is to its quota, whether the
// members agree on the data, and how old the last good backup is.
//
// The Model polls through a Poller (package poll, which talks to the
// cluster only through clientv3) and, with a bucket, reads a BackupSource.
// Every screen is built from report structs first (MemberRow,
// ClusterStatus, BackupView) and rendered second, so the tests assert on
// the structs and on the rendered text.
package tui
