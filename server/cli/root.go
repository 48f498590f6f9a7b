package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/server"
)

// Exit codes: every tool's, from clikit (a member that fails exits
// clikit.ExitFinding, "a failed run").
const (
	exitOK    = clikit.ExitOK
	exitFail  = clikit.ExitFinding
	exitUsage = clikit.ExitUsage
)

// usageError marks errors that are the caller's fault (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Options are what a build wires into the command tree.
type Options struct {
	// DemoBackup runs a backup daemon beside `lifeboat demo`'s cluster
	// until ctx ends (cmd/lifeboat wires backupd's: server/cli does not
	// import backupd, which imports the server). Nil: the demo takes no
	// backups, and has no --backup-schedule or --no-backup.
	DemoBackup func(ctx context.Context, b DemoBackup) error
}

// DemoBackup is what the demo asks of its backup daemon.
type DemoBackup struct {
	Endpoints []string  // the members' client URLs
	Bucket    string    // a gocloud URL: file://<data dir>/backups
	Schedule  string    // --backup-schedule, backupd's --schedule
	Log       io.Writer // the daemon's log: <data dir>/backupd.log
}

// Execute runs the lifeboat command line and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer, opts Options) int {
	root := NewRootCommand(stdout, stderr, opts)
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
func NewRootCommand(stdout, stderr io.Writer, o Options) *cobra.Command {
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
			if err := applyEnv(cmd.Flags(), os.Environ()); err != nil {
				return usageError{err}
			}
			o, notes, err := withConfigFile(opts, cmd.Flags())
			if err != nil {
				return usageError{err}
			}
			cfg, err := o.config()
			if err != nil {
				return usageError{err}
			}
			lg, closeLog, err := newLogger(stderr, stdout, o)
			if err != nil {
				return usageError{err}
			}
			defer closeLog()
			for _, n := range append(notes, deprecations(cmd.Flags())...) {
				lg.Warn(n)
			}
			cfg.Logger = lg
			return runMember(cmd.Context(), cfg)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	opts.addFlags(cmd.Flags())
	cmd.AddCommand(newDemoCommand(stdout, stderr, o.DemoBackup), newGatewayCommand(stderr))
	clikit.AddVersion(cmd, clikit.Version("lifeboat").EtcdText(server.Version)+
		fmt.Sprintf("Cluster Version: %s\nStorage Version: %s\n", server.ClusterVersion, server.StorageVersion))
	return cmd
}

// environmentOnly are ETCD_* variables etcd reads that are not flags: the
// architecture override, its internal assertions (ETCD_VERIFY, set by
// etcd's own e2e tests) and ETCD_VERSION, which etcd ignores with a warning.
var environmentOnly = map[string]bool{"ETCD_UNSUPPORTED_ARCH": true, "ETCD_VERIFY": true, "ETCD_VERSION": true}

// applyEnv sets every flag not given on the command line from its ETCD_*
// variable in environ. As etcd, a variable for a flag also given on the
// command line is refused; an ETCD_* variable that names no flag of
// lifeboat's is refused too (etcd would act on it, or warn).
func applyEnv(fs *pflag.FlagSet, environ []string) error {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "ETCD_") && !environmentOnly[k] {
			env[k] = v
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		key := EnvName(f.Name)
		v, ok := env[key]
		if !ok {
			return
		}
		delete(env, key)
		if f.Changed {
			errs = append(errs, fmt.Errorf("conflicting environment variable %q is shadowed by corresponding command-line flag (either unset environment variable or disable flag)", key))
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
	})
	unknown := make([]string, 0, len(env))
	for k := range env {
		unknown = append(unknown, k)
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		flag := "--" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "ETCD_"), "_", "-"))
		errs = append(errs, fmt.Errorf("unrecognized environment variable %s: lifeboat has no flag %s", k, flag))
	}
	return errors.Join(errs...)
}

// deprecatedFlags are etcd 3.6's deprecation warnings for flags lifeboat
// takes.
var deprecatedFlags = map[string]string{
	"snapshot-count":                  "--snapshot-count is deprecated in 3.6 and will be decommissioned in 3.7",
	"max-snapshots":                   "--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.7",
	"experimental-corrupt-check-time": "--experimental-corrupt-check-time is deprecated in v3.6 and will be decommissioned in v3.7. Use --corrupt-check-time instead",
	"v2-deprecation":                  "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input",
}

// deprecations are the warnings for the deprecated flags that were set.
func deprecations(fs *pflag.FlagSet) []string {
	var out []string
	fs.Visit(func(f *pflag.Flag) {
		if msg, ok := deprecatedFlags[f.Name]; ok {
			out = append(out, msg)
		}
	})
	sort.Strings(out)
	return out
}

// withConfigFile returns the options to run with: opts, or, given
// --config-file, fresh options set from the file alone, as etcd ignores the
// other flags and variables then (notes say which were set).
func withConfigFile(opts *memberOptions, fs *pflag.FlagSet) (*memberOptions, []string, error) {
	if opts.configFile == "" {
		return opts, nil, nil
	}
	var notes []string
	fs.Visit(func(f *pflag.Flag) {
		if f.Name != "config-file" {
			notes = append(notes, fmt.Sprintf("--%s ignored: --config-file is given", f.Name))
		}
	})
	o := newMemberOptions()
	ffs := pflag.NewFlagSet("config-file", pflag.ContinueOnError)
	o.addFlags(ffs)
	ignored, err := applyConfigFile(ffs, opts.configFile)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range ignored {
		notes = append(notes, fmt.Sprintf("configuration key %s ignored: lifeboat does not implement it and it is empty", k))
	}
	return o, notes, nil
}

// EnvName is the environment variable of a flag: ETCD_ and the flag name in
// upper case with dashes as underscores.
func EnvName(flag string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// newLogger builds the member's logger from --logger, --log-level,
// --log-format and --log-outputs, in zap's JSON shape (level, ts, msg) as
// etcd's; closeLog closes the files it opened.
func newLogger(stderr, stdout io.Writer, o *memberOptions) (lg *slog.Logger, closeLog func(), err error) {
	if o.logger != "zap" {
		return nil, nil, fmt.Errorf("--logger %q: want zap (etcd 3.6 has no other)", o.logger)
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	var ws []io.Writer
	var files []*os.File
	closeLog = func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, out := range o.logOutputs {
		switch out {
		case "default", "stderr":
			ws = append(ws, stderr)
		case "stdout":
			ws = append(ws, stdout)
		case "systemd/journal":
			closeLog()
			return nil, nil, errors.New("--log-outputs systemd/journal: lifeboat does not implement it")
		default:
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				closeLog()
				return nil, nil, fmt.Errorf("--log-outputs: %w", err)
			}
			files = append(files, f)
			ws = append(ws, f)
		}
	}
	hopts := &slog.HandlerOptions{Level: l, AddSource: true, ReplaceAttr: zapShape}
	w := io.MultiWriter(ws...)
	switch o.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), closeLog, nil
	case "console":
		return slog.New(slog.NewTextHandler(w, hopts)), closeLog, nil
	}
	closeLog()
	return nil, nil, fmt.Errorf("--log-format %q: want json or console", o.logFormat)
}

// zapShape names the top-level time "ts", writes levels in lower case and
// the source as "caller" (dir/file.go:line), as zap's production encoder
// that etcd uses.
func zapShape(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		return slog.String("ts", a.Value.Time().Format("2006-01-02T15:04:05.000000Z0700"))
	case slog.LevelKey:
		return slog.String("level", strings.ToLower(a.Value.String()))
	case slog.SourceKey:
		if src, ok := a.Value.Any().(*slog.Source); ok {
			return slog.String("caller", fmt.Sprintf("%s/%s:%d", filepath.Base(filepath.Dir(src.File)), filepath.Base(src.File), src.Line))
		}
	}
	return a
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
