// Command lifeboat-bench loads etcd-compatible clusters and compares
// lifeboat with real etcd; see bench/cli for the commands.
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/bench/cli"
)

func main() { os.Exit(cli.Execute()) }
