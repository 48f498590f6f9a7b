// Package cli is the snapkit command tree: save, status, verify, hashkv,
// ls, get, diff and prefixes over etcd snapshot files, .snap files and data
// dirs. Each subcommand lives in its cmd_<name>.go, with an options struct
// whose AddFlags registers its flags (its own -w among them) and a
// new<Name>Command constructor. It renders a snapkit report struct as a
// table (etcdutl's style, sizes humanized) or as JSON (-w json), through
// internal/clikit. Exit codes: 0 ok, 1 a finding, 2 bad usage or unreadable
// input. cmd/snapkit only calls Execute.
package cli
