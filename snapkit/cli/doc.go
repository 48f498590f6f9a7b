// Package cli is the snapkit command tree: save, status, verify, hashkv,
// ls, get, diff and prefixes over etcd snapshot files and data dirs. Each
// subcommand renders a snapkit report struct as a table (etcdutl's style,
// sizes humanized) or as JSON (-w json). Exit codes: 0 ok, 1 a finding,
// 2 bad usage or unreadable input. cmd/snapkit only calls Execute.
package cli
