// Command backupd takes verified, encrypted, scheduled etcd snapshots to
// any gocloud blob store; see backupd/cli for the commands.
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/backupd/cli"
)

// The drill's restorer is wired here once the restore package lands:
// cli.Options{Restorer: ...}.
func main() { os.Exit(cli.Execute(cli.Options{})) }
