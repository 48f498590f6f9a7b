package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/restore"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// Options are what a build wires into the tree.
type Options struct {
	// OpenBucket opens a bucket URL as a source (backupd/restoresource.Open);
	// nil: bucket URLs are refused (restore.ErrNotYet).
	OpenBucket func(ctx context.Context, lg *slog.Logger, url string, o restore.BucketOptions) (restore.Source, error)
}

// env is what a command needs from its process.
type env struct {
	stdout, stderr io.Writer
	logger         *slog.Logger
	output         string // table or json
	progress       progressFactory
	opts           Options
}

// bucketFlags are --prefix and --identity, for the commands that read a
// bucket.
type bucketFlags struct{ o restore.BucketOptions }

func (b *bucketFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&b.o.Prefix, "prefix", "", "the backups' prefix in a bucket (backupd's --prefix)")
	cmd.Flags().StringArrayVar(&b.o.IdentityFiles, "identity", nil, "age identity file to decrypt a bucket's backups (repeat)")
}

// opener is the restore.BucketOpener of the flags, nil if the build has none.
func (e *env) opener(b restore.BucketOptions) restore.BucketOpener {
	if e.opts.OpenBucket == nil {
		return nil
	}
	return func(ctx context.Context, lg *slog.Logger, url string) (restore.Source, error) {
		return e.opts.OpenBucket(ctx, lg, url, b)
	}
}

// NewCommand builds the restore command tree writing to stdout and stderr.
func NewCommand(stdout, stderr io.Writer, opts Options) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr, progress: terminalProgress(stderr), opts: opts}
	var verbose bool
	root := &cobra.Command{
		Use:   "restore",
		Short: "Recover etcd clusters offline: restore snapshots, inspect survivors, force a new cluster, plan and apply a recovery",
		Long: `restore works on the files of etcd v3.5/v3.6 members (and lifeboat's), with
no member running: it restores snapshot files into new data dirs, reports what
each surviving data dir holds, rewrites a survivor into a one-member cluster,
and plans and carries out a whole recovery. It never changes its inputs: new
data dirs are built beside their destination and renamed into place.

Exit codes: 0 done; 1 a finding (hash mismatch, damage, a failed check, data
that would be lost); 2 bad usage or unreadable input.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if e.output != "table" && e.output != "json" {
				return clikit.Usage(fmt.Errorf("--write-out must be table or json, not %q", e.output))
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			e.logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return clikit.Usage(err) })
	root.PersistentFlags().StringVarP(&e.output, "write-out", "w", "table", "output format: table or json")
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log what is done to stderr")
	root.AddCommand(
		newSnapshotCommand(e),
		newInspectCommand(e),
		newForceNewClusterCommand(e),
		newRollForwardCommand(e),
		newPlanCommand(e),
		newApplyCommand(e),
	)
	return root
}

// args wraps a cobra argument check so that its error exits 2.
var args = clikit.Args

// classify gives a library error its exit code: what stops us reading the
// input, or a mistake in the flags, exits 2; a problem found (a hash that
// does not match, damage, a refusal to lose data) or a failed write exits 1.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ee *clikit.ExitError
	if errors.As(err, &ee) {
		return err
	}
	switch {
	case errors.Is(err, snapkit.ErrSnapshotHash), errors.Is(err, snapkit.ErrDamaged),
		errors.Is(err, restore.ErrSameClusterID), errors.Is(err, restore.ErrWALDamaged), errors.Is(err, restore.ErrDBAheadOfWAL), errors.Is(err, restore.ErrLearner),
		errors.Is(err, restore.ErrCheckFailed), errors.Is(err, restore.ErrLoss), errors.Is(err, restore.ErrNoUsableSource),
		errors.Is(err, restore.ErrWALGap), errors.Is(err, restore.ErrDiverged), errors.Is(err, restore.ErrOtherCluster):
		return clikit.Finding(err)
	case errors.Is(err, restore.ErrUsage), errors.Is(err, restore.ErrNoHash), errors.Is(err, restore.ErrInUse),
		errors.Is(err, restore.ErrAnswering), errors.Is(err, restore.ErrBadPlan), errors.Is(err, restore.ErrNotYet),
		errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission),
		errors.Is(err, snapkit.ErrNotBolt), errors.Is(err, snapkit.ErrNoDB), errors.Is(err, snapkit.ErrLocked),
		errors.Is(err, datadir.ErrNotDataDir), errors.Is(err, walkit.ErrFileNotFound):
		return clikit.Usage(err)
	}
	return clikit.Finding(err)
}

// Run executes the tree with argv (without the program name) and returns
// the exit code.
func Run(ctx context.Context, argv []string, stdout, stderr io.Writer, opts Options) int {
	return clikit.Run(ctx, NewCommand(stdout, stderr, opts), argv, stderr)
}

// Execute runs restore as a process: os.Args, stdio, and SIGINT/SIGTERM
// cancel the work in progress. opts is the build's wiring.
func Execute(opts Options) int {
	return clikit.Execute(func(ctx context.Context) int { return Run(ctx, os.Args[1:], os.Stdout, os.Stderr, opts) })
}

// errorf is fmt.Errorf, for messages without wrapping.
func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
