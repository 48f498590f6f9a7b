// Package clikit holds what Lifeboat's command-line tools share: exit codes
// that a script can act on, errors that carry them, and running a cobra
// command tree as a process.
package clikit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes of every Lifeboat tool.
const (
	ExitOK      = 0
	ExitFinding = 1 // the work ran and found a problem: damage, a difference, a failed run
	ExitUsage   = 2 // bad usage, or input that could not be read at all
)

// ExitError carries an exit code up to Run.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Finding makes err exit with ExitFinding.
func Finding(err error) error { return &ExitError{Code: ExitFinding, Err: err} }

// Usage makes err exit with ExitUsage.
func Usage(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// IsUsage reports whether err exits with ExitUsage.
func IsUsage(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.Code == ExitUsage
}

// Run executes cmd with argv (without the program name), prints a failure
// as "Error: ..." on stderr, and returns the exit code. cobra's own errors
// (unknown command, bad arguments) are usage.
func Run(ctx context.Context, cmd *cobra.Command, argv []string, stderr io.Writer) int {
	cmd.SetArgs(argv)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "Error:", err)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitUsage
}

// Execute calls run with a context that SIGINT and SIGTERM cancel, for a
// main function: os.Exit(clikit.Execute(...)).
func Execute(run func(ctx context.Context) int) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx)
}
