package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/term"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/tui"
	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

// options are lbtop's flags.
type options struct {
	endpoints      []string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	cacert         string
	cert           string
	key            string
	insecureSkip   bool
	user           string
	password       string

	bucket       string
	prefix       string
	interval     time.Duration
	refresh      time.Duration
	hashInterval time.Duration
}

// etcdctlFlags are the flags that take their ETCDCTL_* variable, as in
// etcdctl: --dial-timeout is ETCDCTL_DIAL_TIMEOUT.
var etcdctlFlags = []string{"endpoints", "dial-timeout", "command-timeout", "cacert", "cert", "key", "insecure-skip-tls-verify", "user", "password"}

// AddFlags declares the flags on fs.
func (o *options) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.endpoints, "endpoints", []string{"127.0.0.1:2379"}, "gRPC endpoints; one is enough, the other members come from its member list")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 2*time.Second, "dial timeout for client connections")
	fs.DurationVar(&o.commandTimeout, "command-timeout", 5*time.Second, "timeout of one member's answers in one refresh (at most --refresh)")
	fs.StringVar(&o.cacert, "cacert", "", "verify certificates of TLS-enabled secure servers using this CA bundle")
	fs.StringVar(&o.cert, "cert", "", "identify secure client using this TLS certificate file")
	fs.StringVar(&o.key, "key", "", "identify secure client using this TLS key file")
	fs.BoolVar(&o.insecureSkip, "insecure-skip-tls-verify", false, "skip server certificate verification")
	fs.StringVar(&o.user, "user", "", "username[:password] for authentication (prompt if password is not supplied)")
	fs.StringVar(&o.password, "password", "", "password for authentication (if this option is used, --user option shouldn't include password)")
	fs.StringVar(&o.bucket, "bucket", "", "a backupd store (gocloud URL: s3://, gs://, azblob://, file://) whose newest verified backup the backup panel shows")
	fs.StringVar(&o.prefix, "prefix", "", "key prefix of the backups in --bucket, as backupd's --prefix")
	fs.DurationVar(&o.interval, "interval", 0, "backupd's schedule interval; the newest backup is stale when older than twice it (0: the interval backupd run records in --bucket; without one, stale only when there is none)")
	fs.DurationVar(&o.refresh, "refresh", tui.DefaultRefresh, "time between two refreshes")
	fs.DurationVar(&o.hashInterval, "hash-interval", poll.DefaultHashInterval, "time between two comparisons of the members' HashKV (0: never); HashKV reads the whole store")
}

// applyEnv sets every etcdctl flag not given on the command line from its
// ETCDCTL_* variable.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	for _, name := range etcdctlFlags {
		f := fs.Lookup(name)
		if f == nil || f.Changed {
			continue
		}
		env := "ETCDCTL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v, ok := lookup(env); ok {
			if err := fs.Set(name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	}
	return errors.Join(errs...)
}

// pollConfig builds the poller's configuration; readPassword asks for the
// password when --user has none.
func (o *options) pollConfig(readPassword func() (string, error)) (poll.Config, error) {
	if o.refresh <= 0 {
		return poll.Config{}, errors.New("--refresh must be positive")
	}
	if o.commandTimeout <= 0 || o.dialTimeout <= 0 {
		return poll.Config{}, errors.New("--dial-timeout and --command-timeout must be positive")
	}
	cfg := poll.Config{
		Endpoints:    o.endpoints,
		Timeout:      min(o.commandTimeout, o.refresh),
		HashInterval: o.hashInterval,
		Client:       clientv3.Config{DialTimeout: o.dialTimeout},
	}
	if o.hashInterval == 0 {
		cfg.HashInterval = -1 // never
	}
	if len(cfg.Endpoints) == 0 {
		return poll.Config{}, errors.New("no --endpoints")
	}
	if o.user != "" {
		name, password, hasPassword := strings.Cut(o.user, ":")
		switch {
		case hasPassword && o.password != "":
			return poll.Config{}, errors.New("--password given, and a password in --user too")
		case !hasPassword && o.password != "":
			password = o.password
		case !hasPassword:
			var err error
			if password, err = readPassword(); err != nil {
				return poll.Config{}, fmt.Errorf("read password: %w", err)
			}
		}
		cfg.Client.Username, cfg.Client.Password = name, password
	} else if o.password != "" {
		return poll.Config{}, errors.New("--password needs --user")
	}
	secure := o.cacert != "" || o.cert != "" || o.key != "" || o.insecureSkip
	for _, ep := range o.endpoints {
		secure = secure || strings.HasPrefix(ep, "https://")
	}
	if secure {
		if (o.cert == "") != (o.key == "") {
			return poll.Config{}, errors.New("--cert and --key go together")
		}
		tc := &tls.Config{}
		if o.cacert != "" || o.cert != "" {
			info := transport.TLSInfo{CertFile: o.cert, KeyFile: o.key, TrustedCAFile: o.cacert}
			var err error
			if tc, err = info.ClientConfig(); err != nil {
				return poll.Config{}, fmt.Errorf("TLS: %w", err)
			}
		}
		tc.InsecureSkipVerify = o.insecureSkip
		cfg.Client.TLS = tc
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
			cfg, err := o.pollConfig(func() (string, error) { return promptPassword(cmd.ErrOrStderr()) })
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

// promptPassword reads a password from the terminal, as etcdctl does.
func promptPassword(w io.Writer) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("--user has no password and stdin is not a terminal")
	}
	fmt.Fprint(w, "Password: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	return string(b), err
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
