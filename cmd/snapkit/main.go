// Command snapkit inspects etcd snapshot files and member/snap/db; see
// snapkit/cli for the commands.
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/snapkit/cli"
)

func main() { os.Exit(cli.Execute()) }
