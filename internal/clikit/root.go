package clikit

import (
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

// NewRoot is the root command of a tool: cobra prints neither the usage
// nor the error (Run prints the error), the output goes to stdout and
// stderr, and a bad flag is usage (exit 2).
func NewRoot(use, short, long string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{Use: use, Short: short, Long: long, SilenceUsage: true, SilenceErrors: true}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Usage(err) })
	return root
}

// Args wraps a cobra argument check so that its error is usage (exit 2).
func Args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return Usage(err)
		}
		return nil
	}
}

// AddVerbose gives root -v/--verbose and, before any command runs, sets
// *lg to a text logger on stderr: debug with -v, warn without.
func AddVerbose(root *cobra.Command, stderr io.Writer, lg **slog.Logger) {
	var verbose bool
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log what is done to stderr")
	root.PersistentPreRun = func(*cobra.Command, []string) {
		level := slog.LevelWarn
		if verbose {
			level = slog.LevelDebug
		}
		*lg = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
}
