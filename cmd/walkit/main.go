// Command walkit reads, verifies and repairs etcd write-ahead logs. The
// command tree lives in walkit/cli.
package main

import (
	"os"

	"github.com/lifeboat-dev/lifeboat/walkit/cli"
)

func main() { os.Exit(cli.Execute()) }
