package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/server"
)

// Exit codes, as DESIGN.md.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks errors that are the caller's fault (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Execute runs the lifeboat command line and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand(stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "lifeboat: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFail
	}
	return exitOK
}

// NewRootCommand builds the command tree; running the root command runs a
// member.
func NewRootCommand(stdout, stderr io.Writer) *cobra.Command {
	opts := newMemberOptions()
	cmd := &cobra.Command{
		Use:   "lifeboat",
		Short: "An etcd-compatible member (etcd's flags and ETCD_* environment variables)",
		Long: `lifeboat runs one member of an etcd-compatible cluster. It takes etcd's flags;
each flag can also be set with its ETCD_* environment variable (--data-dir is
ETCD_DATA_DIR), and a flag given on the command line wins over the variable.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return usageError{err}
			}
			cfg, err := opts.config()
			if err != nil {
				return usageError{err}
			}
			lg, err := newLogger(stderr, opts.logLevel)
			if err != nil {
				return usageError{err}
			}
			cfg.Logger = lg
			return runMember(cmd.Context(), cfg)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	opts.addFlags(cmd.Flags())
	cmd.AddCommand(newDemoCommand(stdout, stderr))
	clikit.AddVersion(cmd, clikit.Version("lifeboat").EtcdText(server.Version)+
		fmt.Sprintf("Cluster Version: %s\nStorage Version: %s\n", server.ClusterVersion, server.StorageVersion))
	return cmd
}

// applyEnv sets every flag not given on the command line from its ETCD_*
// variable, if set.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		key := EnvName(f.Name)
		v, ok := lookup(key)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
	})
	return errors.Join(errs...)
}

// EnvName is the environment variable of a flag: ETCD_ and the flag name in
// upper case with dashes as underscores.
func EnvName(flag string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// runMember runs one member until SIGINT or SIGTERM.
func runMember(ctx context.Context, cfg *server.Config) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := server.New(cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		cfg.Logger.Info("received signal, shutting down")
	case <-s.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Stop(sctx)
}
