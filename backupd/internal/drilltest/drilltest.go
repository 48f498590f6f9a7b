// Package drilltest gives tests a drill restorer made of real etcd's
// `etcdutl snapshot restore`, until the restore package is wired in.
package drilltest

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/lifeboat-dev/lifeboat/backupd"
)

// Etcdutl restores with the etcdutl binary at path.
func Etcdutl(path string) backupd.Restorer {
	return func(ctx context.Context, req backupd.RestoreRequest) error {
		cmd := exec.CommandContext(ctx, path, "snapshot", "restore", req.Snapshot,
			"--data-dir", req.DataDir, "--name", req.Name,
			"--initial-cluster", req.InitialCluster, "--initial-advertise-peer-urls", req.PeerURL,
			"--initial-cluster-token", req.Token)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("etcdutl snapshot restore: %v: %s", err, out)
		}
		return nil
	}
}
