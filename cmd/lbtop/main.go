// Command lbtop is a terminal cockpit for an etcd cluster's health and
// backups. The command lives in tui/cli.
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/tui/cli"
)

func main() { os.Exit(cli.Execute()) }
