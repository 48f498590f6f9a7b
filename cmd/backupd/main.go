// Command backupd takes verified, encrypted, scheduled etcd snapshots to
// any gocloud blob store; see backupd/cli for the commands.
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/backupd/cli"
)

func main() { os.Exit(cli.Execute(cli.Options{})) }
