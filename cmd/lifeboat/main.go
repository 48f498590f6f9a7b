// Command lifeboat runs an etcd-compatible member; see server/cli.
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/server/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
