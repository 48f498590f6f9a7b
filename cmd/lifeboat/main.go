// Command lifeboat runs an etcd-compatible member; see server/cli. Its
// demo runs a backupd beside the cluster, wired here: server/cli does not
// import backupd.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	backupd "github.com/lifeboat-dev/lifeboat/backupd/cli"
	"github.com/lifeboat-dev/lifeboat/server/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr, cli.Options{DemoBackup: demoBackup}))
}

// demoBackup is `backupd run` in this process, on the demo's schedule,
// keeping an hour of backups; the environment's BACKUPD_* and ETCDCTL_*
// variables are not read.
func demoBackup(ctx context.Context, b cli.DemoBackup) error {
	argv := []string{"run", "--endpoints", strings.Join(b.Endpoints, ","), "--bucket", b.Bucket,
		"--schedule", b.Schedule, "--retention", "1h"}
	noEnv := func(string) string { return "" }
	if code := backupd.Run(ctx, argv, io.Discard, b.Log, noEnv, backupd.Options{}); code != backupd.ExitOK {
		return fmt.Errorf("backupd %s: exit %d", strings.Join(argv, " "), code)
	}
	return nil
}
