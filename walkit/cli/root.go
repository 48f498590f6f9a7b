package cli

import (
	"context"
	"io"
	"log/slog"
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

var (
	finding = clikit.Finding
	usage   = clikit.Usage
)

// env is what a command needs from its process.
type env struct {
	stdout, stderr io.Writer
	logger         *slog.Logger
}

// NewCommand builds the walkit command tree writing to stdout and stderr.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr}
	root := clikit.NewRoot("walkit", "Read, verify and repair etcd write-ahead logs",
		`walkit reads the WAL of an etcd v3.5/v3.6 member (or a Lifeboat one): give
it a data dir (it reads member/wal) or the WAL dir itself. It never modifies
its input, except 'repair --apply', which keeps the original as .broken.

Exit codes: 0 ok; 1 a finding (damage, or data a repair would lose);
2 bad usage or unreadable input.`, stdout, stderr)
	clikit.AddVerbose(root, stderr, &e.logger)
	root.AddCommand(newDumpCommand(e), newVerifyCommand(e), newStatsCommand(e), newRepairCommand(e))
	clikit.AddVersion(root, clikit.Version("walkit").Text())
	return root
}

// Run executes the tree with argv (without the program name) and returns
// the exit code.
func Run(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	return clikit.Run(ctx, NewCommand(stdout, stderr), argv, stderr)
}

// Execute runs walkit as a process: os.Args, stdio, and SIGINT/SIGTERM
// cancel the work in progress.
func Execute() int {
	return clikit.Execute(func(ctx context.Context) int { return Run(ctx, os.Args[1:], os.Stdout, os.Stderr) })
}
