// Command restore recovers etcd clusters offline; see restore/cli for the
// commands. It wires in backupd's buckets (backupd/restoresource).
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/backupd/restoresource"
	"github.com/lifeboat-dev/lifeboat/restore/cli"
)

func main() { os.Exit(cli.Execute(cli.Options{OpenBucket: restoresource.Open})) }
