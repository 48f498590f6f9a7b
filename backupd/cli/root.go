package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
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

// DefaultBucket is the embedded default store: a directory beside the
// working directory.
const DefaultBucket = "file://./backups"

// Options are what a build wires into the tree.
type Options struct {
	// Restorer makes the drill's data dir; nil means the restore
	// package's (backupd.RestoreSnapshot).
	Restorer backupd.Restorer
}

// env is what a command needs from its process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	logger         *slog.Logger
	output         string
	prog           *clikit.Progress // of the one long step running
	bucket, prefix string
	spoolDir       string
	opts           Options
}

// classify maps an error to its exit code: a finding (verification failed,
// a failed backup or drill) exits 1, anything else 2.
func classify(err error) error {
	var f *backupd.Failure
	switch {
	case err == nil:
		return nil
	case errors.Is(err, backupd.ErrVerify), errors.Is(err, backupd.ErrDrill), errors.Is(err, backupd.ErrSnapshot), errors.As(err, &f):
		return finding(err)
	}
	return usage(err)
}

// NewCommand builds the backupd command tree.
func NewCommand(stdout, stderr io.Writer, getenv func(string) string, opts Options) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv, opts: opts}
	var (
		verbose  bool
		logFmt   string
		logLevel string
	)
	root := &cobra.Command{
		Use:   "backupd",
		Short: "Verified, encrypted, scheduled etcd snapshots to any gocloud blob store",
		Long: `backupd streams etcd snapshots from an up-to-date member into a bucket
(s3://, gs://, azblob://, file://, mem://), compressing and encrypting them on
the way, verifies each with snapkit before its manifest commits it, and
applies a retention policy that prune --dry-run shows before it runs.

Exit codes: 0 ok; 1 a finding (a backup failed, or failed verification or a
drill); 2 bad usage or a store that cannot be read.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if e.output != "table" && e.output != "json" {
				return usage(fmt.Errorf("--write-out must be table or json, not %q", e.output))
			}
			level := slog.LevelWarn
			if cmd.Name() == "run" {
				level = slog.LevelInfo // a daemon logs what it does
			}
			if verbose {
				level = slog.LevelDebug
			}
			if logLevel != "" {
				if err := level.UnmarshalText([]byte(logLevel)); err != nil {
					return usage(fmt.Errorf("--log-level: %w", err))
				}
			}
			hopts := &slog.HandlerOptions{Level: level}
			switch logFmt {
			case "json":
				e.logger = slog.New(slog.NewJSONHandler(e.stderr, hopts))
			case "text":
				e.logger = slog.New(slog.NewTextHandler(e.stderr, hopts))
			default:
				return usage(fmt.Errorf("--log-format must be text or json, not %q", logFmt))
			}
			if e.bucket == "" {
				e.bucket = e.getenv("BACKUPD_BUCKET")
			}
			if e.bucket == "" {
				e.bucket = DefaultBucket
			}
			if e.prefix == "" {
				e.prefix = e.getenv("BACKUPD_PREFIX")
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	pf := root.PersistentFlags()
	pf.StringVarP(&e.output, "write-out", "w", "table", "output format: table or json")
	pf.BoolVarP(&verbose, "verbose", "v", false, "log debug messages to stderr")
	pf.StringVar(&logFmt, "log-format", "text", "log format: text or json (slog)")
	pf.StringVar(&logLevel, "log-level", "", "log level: debug, info, warn, error (default warn; run logs info)")
	pf.StringVar(&e.bucket, "bucket", "", "gocloud.dev/blob URL: s3://, gs://, azblob://, file://, mem:// (env BACKUPD_BUCKET; default "+DefaultBucket+")")
	pf.StringVar(&e.prefix, "prefix", "", "key prefix of the backups in the bucket (env BACKUPD_PREFIX)")
	pf.StringVar(&e.spoolDir, "spool-dir", "", "directory for spool files (default: the system's temp dir)")
	root.AddCommand(
		newRunCommand(e),
		newOnceCommand(e),
		newListCommand(e),
		newVerifyCommand(e),
		newFetchCommand(e),
		newPruneCommand(e),
		newDrillCommand(e),
	)
	return root
}

// openStore opens --bucket and --prefix.
func (e *env) openStore(ctx context.Context) (*store.Store, error) {
	s, err := store.Open(ctx, e.bucket, e.prefix, e.logger)
	if err != nil {
		return nil, usage(err)
	}
	return s, nil
}

// args wraps a cobra argument check so that its error exits 2.
var args = clikit.Args

// identityOptions is --identity, for the commands that read a backup.
type identityOptions struct{ files []string }

func (o *identityOptions) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&o.files, "identity", nil, "age identity file to decrypt backups (repeatable)")
}

func (o *identityOptions) readOptions(e *env, what string) (backupd.ReadOptions, error) {
	ids, err := codec.ParseIdentityFiles(o.files)
	if err != nil {
		return backupd.ReadOptions{}, usage(err)
	}
	return backupd.ReadOptions{Identities: ids, SpoolDir: e.spoolDir, Logger: e.logger, Progress: e.progress(what)}, nil
}

// Run executes the tree with argv and returns the exit code.
func Run(ctx context.Context, argv []string, stdout, stderr io.Writer, getenv func(string) string, opts Options) int {
	return clikit.Run(ctx, NewCommand(stdout, stderr, getenv, opts), argv, stderr)
}

// Execute runs backupd as a process.
func Execute(opts Options) int {
	return clikit.Execute(func(ctx context.Context) int { return Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv, opts) })
}
