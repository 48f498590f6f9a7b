// Package cli is the walkit command tree: dump, verify, stats and repair
// over the WAL of an etcd v3.5/v3.6 (or Lifeboat) data dir. cmd/walkit only
// calls Execute; tests run the same tree in-process through Run.
//
// Exit codes: 0 ok; 1 a finding (damage, or data a repair would lose);
// 2 bad usage or unreadable input.
package cli
