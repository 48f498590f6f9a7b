package cli

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// Exit codes, the same in every Lifeboat tool (see internal/clikit).
const (
	ExitOK      = clikit.ExitOK
	ExitFinding = clikit.ExitFinding
	ExitUsage   = clikit.ExitUsage
)

var usage = clikit.Usage

// env is what a command needs from its process.
type env struct {
	stdout, stderr io.Writer
}

// write prints v as JSON, or as table prints it, as out says.
func (e *env) write(out *clikit.Output, table func(io.Writer) error, v any) error {
	if out.Is("json") {
		return clikit.WriteJSON(e.stdout, v)
	}
	return table(e.stdout)
}

// NewCommand builds the lifeboat-bench command tree.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr}
	root := clikit.NewRoot("lifeboat-bench", "Load an etcd-compatible cluster and measure throughput and latency; compare lifeboat with etcd",
		`lifeboat-bench drives any etcd v3 endpoint list (run), or starts real etcd
and lifeboat side by side on this machine and runs the same workloads against
each (compare). Every run is bounded by a request count and a duration.

Exit codes: 0 ok; 1 a run failed; 2 bad usage.`, stdout, stderr)
	root.AddCommand(newRunCommand(e), newCompareCommand(e))
	clikit.AddVersion(root, clikit.Version("lifeboat-bench").Text())
	return root
}

// Run executes the tree with argv (without the program name) and returns
// the exit code.
func Run(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	return clikit.Run(ctx, NewCommand(stdout, stderr), argv, stderr)
}

// Execute runs lifeboat-bench as a process; SIGINT/SIGTERM cancel the run.
func Execute() int {
	return clikit.Execute(func(ctx context.Context) int { return Run(ctx, os.Args[1:], os.Stdout, os.Stderr) })
}
