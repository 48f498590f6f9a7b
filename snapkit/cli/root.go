package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/save"
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

// inputError classifies an error from the library: a problem found inside
// a readable file exits 1, anything that stops us reading it exits 2.
func inputError(err error) error {
	if errors.Is(err, snapkit.ErrDamaged) || errors.Is(err, save.ErrSnapshotHash) {
		return finding(err)
	}
	return usage(err)
}

// env is what a command needs from its process.
type env struct {
	stdout, stderr io.Writer
	logger         *slog.Logger
	output         *clikit.Output
	getenv         func(string) string
}

// NewCommand builds the snapkit command tree writing to stdout and stderr.
func NewCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv, output: clikit.NewOutput("table", "json")}
	var verbose bool
	root := &cobra.Command{
		Use:   "snapkit",
		Short: "Inspect etcd snapshot files and member/snap/db: status, verify, hashkv, ls, get, diff, prefixes, save",
		Long: `snapkit reads etcd v3.5/v3.6 backend files: snapshot files made by
'etcdctl snapshot save' (the db followed by its SHA-256) and the member/snap/db
of a data dir. It never modifies its inputs.

Exit codes: 0 ok; 1 a finding (damage, hash mismatch, differences); 2 bad
usage or unreadable input.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			e.logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	e.output.AddFlags(root.PersistentFlags())
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log what is done to stderr")
	root.AddCommand(
		newSaveCommand(e),
		newStatusCommand(e),
		newVerifyCommand(e),
		newHashKVCommand(e),
		newLsCommand(e, "ls"),
		newLsCommand(e, "get"),
		newDiffCommand(e),
		newPrefixesCommand(e),
	)
	clikit.AddVersion(root, clikit.Version("snapkit").Text())
	return root
}

// args wraps a cobra argument check so that its error exits 2.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usage(err)
		}
		return nil
	}
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

// contextWithTimeout derives the command's context with a deadline.
func contextWithTimeout(cmd *cobra.Command, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), d)
}
