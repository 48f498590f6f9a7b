// Command restore recovers etcd clusters offline; see restore/cli for the
// commands.
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/restore/cli"
)

func main() { os.Exit(cli.Execute()) }
