package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/internal/clikit/etcdflags"
	"github.com/lifeboat-dev/lifeboat/tui"
	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

// options are lbtop's flags.
type options struct {
	conn etcdflags.Flags

	bucket       string
	prefix       string
	interval     time.Duration
	refresh      time.Duration
	hashInterval time.Duration
}

// AddFlags declares the flags on fs.
func (o *options) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.conn.AddCommandTimeout(fs, 5*time.Second, "timeout of one member's answers in one refresh (at most --refresh)")
	fs.StringVar(&o.bucket, "bucket", "", "a backupd store (gocloud URL: s3://, gs://, azblob://, file://) whose newest verified backup the backup panel shows")
	fs.StringVar(&o.prefix, "prefix", "", "key prefix of the backups in --bucket, as backupd's --prefix")
	fs.DurationVar(&o.interval, "interval", 0, "backupd's schedule interval; the newest backup is stale when older than twice it (0: the interval backupd run records in --bucket; without one, stale only when there is none)")
	fs.DurationVar(&o.refresh, "refresh", tui.DefaultRefresh, "time between two refreshes")
	fs.DurationVar(&o.hashInterval, "hash-interval", poll.DefaultHashInterval, "time between two comparisons of the members' HashKV (0: never); HashKV reads the whole store")
}

// applyEnv sets every etcdctl flag not given on the command line from its
// ETCDCTL_* variable.
var applyEnv = etcdflags.ApplyEnv

// pollConfig builds the poller's configuration; readPassword asks for the
// password when --user has none.
func (o *options) pollConfig(readPassword func() (string, error)) (poll.Config, error) {
	if o.refresh <= 0 {
		return poll.Config{}, errors.New("--refresh must be positive")
	}
	if o.conn.CommandTimeout <= 0 {
		return poll.Config{}, errors.New("--command-timeout must be positive")
	}
	client, err := o.conn.Config(readPassword)
	if err != nil {
		return poll.Config{}, err
	}
	cfg := poll.Config{
		Endpoints:    client.Endpoints,
		Timeout:      min(o.conn.CommandTimeout, o.refresh),
		HashInterval: o.hashInterval,
		Client:       client,
	}
	if o.hashInterval == 0 {
		cfg.HashInterval = -1 // never
	}
	return cfg, nil
}

// NewCommand builds the lbtop command; in and out are the terminal (nil:
// the process's).
func NewCommand(in io.Reader, out io.Writer, lookupEnv func(string) (string, bool)) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "lbtop",
		Short: "A cockpit for an etcd cluster: members, leader, lag, quota, hash agreement and backups",
		Long: `lbtop shows one screen of an etcd (or lifeboat) cluster: which member leads,
who lags, how close each db is to its quota, whether the members agree on the
data (HashKV at a common revision), and with --bucket how old the last good
backup is. It takes etcdctl's connection flags and ETCDCTL_* variables (a flag
on the command line wins); one endpoint is enough.

Keys: ↑/↓ or j/k select, enter shows a member, r refreshes now, / filters,
? shows the keys, q quits.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), lookupEnv); err != nil {
				return clikit.Usage(err)
			}
			cfg, err := o.pollConfig(func() (string, error) { return etcdflags.PromptPassword(cmd.ErrOrStderr()) })
			if err != nil {
				return clikit.Usage(err)
			}
			var backups tui.BackupSource
			if o.bucket != "" {
				b, err := bucketSource(cmd.Context(), o.bucket, o.prefix, o.interval)
				if err != nil {
					return clikit.Usage(err)
				}
				defer b.Close()
				backups = b
			}
			p, err := poll.New(cfg)
			if err != nil {
				return clikit.Usage(err)
			}
			defer p.Close()
			return tui.Run(cmd.Context(), tui.Options{Poller: p, Backup: backups, Refresh: o.refresh}, in, out)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return clikit.Usage(err) })
	o.AddFlags(cmd.Flags())
	return cmd
}

// Run executes lbtop with argv (without the program name) and returns the
// exit code.
func Run(ctx context.Context, argv []string, stderr io.Writer) int {
	return clikit.Run(ctx, NewCommand(nil, nil, os.LookupEnv), argv, stderr)
}

// Execute runs lbtop as a process.
func Execute() int {
	return clikit.Execute(func(ctx context.Context) int { return Run(ctx, os.Args[1:], os.Stderr) })
}
