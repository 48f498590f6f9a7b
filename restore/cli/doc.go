// Package cli is the command tree of the restore tool: snapshot (etcdutl
// snapshot restore's flags, plus learners), inspect, force-new-cluster,
// plan and apply. cmd/restore only calls Execute.
//
// Exit codes (internal/clikit): 0 done; 1 a finding (a hash that does not
// match, damage, a check that failed, data that would be lost); 2 bad usage
// or input that cannot be read.
package cli
