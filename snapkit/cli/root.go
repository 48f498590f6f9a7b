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
	args    = clikit.Args
)

// env is what a command needs from its process.
type env struct {
	stdout, stderr io.Writer
	logger         *slog.Logger
	getenv         func(string) string
}

// NewCommand builds the snapkit command tree writing to stdout and stderr.
func NewCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	root := clikit.NewRoot("snapkit", "Inspect etcd snapshot files and member/snap/db: status, verify, hashkv, ls, get, diff, prefixes, save",
		`snapkit reads etcd v3.5/v3.6 backend files: snapshot files made by
'etcdctl snapshot save' (the db followed by its SHA-256) and the member/snap/db
of a data dir. It never modifies its inputs.

Exit codes: 0 ok; 1 a finding (damage, hash mismatch, differences); 2 bad
usage or unreadable input.`, stdout, stderr)
	clikit.AddVerbose(root, stderr, &e.logger)
	root.AddCommand(
		newSaveCommand(e),
		newStatusCommand(e),
		newVerifyCommand(e),
		newHashKVCommand(e),
		newLsCommand(e),
		newGetCommand(e),
		newDiffCommand(e),
		newPrefixesCommand(e),
	)
	clikit.AddVersion(root, clikit.Version("snapkit").Text())
	return root
}

// Run executes the tree with argv (without the program name) and returns
// the exit code.
func Run(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return clikit.Run(ctx, NewCommand(stdout, stderr, getenv), argv, stderr)
}

// Execute runs snapkit as a process: os.Args, stdio, and SIGINT/SIGTERM
// cancel the work in progress.
func Execute() int {
	return clikit.Execute(func(ctx context.Context) int { return Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv) })
}
