package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// inputError classifies an error from the library: a problem found inside
// a readable file exits 1, anything that stops us reading it exits 2.
func inputError(err error) error {
	if errors.Is(err, snapkit.ErrDamaged) || errors.Is(err, snapkit.ErrSnapshotHash) {
		return finding(err)
	}
	return usage(err)
}

// openDB opens a db for the key commands; failures are bad input (exit 2)
// or damage (exit 1).
func openDB(cmd *cobra.Command, e *env, path string) (*snapkit.DB, error) {
	db, err := snapkit.OpenDB(cmd.Context(), path, e.logger)
	if err != nil {
		return nil, inputError(err)
	}
	return db, nil
}

// revError: a revision outside the db's history is bad usage; anything
// else went wrong inside the file.
func revError(err error) error {
	if errors.Is(err, snapkit.ErrCompacted) || errors.Is(err, snapkit.ErrFutureRev) || errors.Is(err, snapkit.ErrBadRevision) {
		return usage(err)
	}
	return finding(err)
}

// inspectFile runs snapkit.Inspect with progress on a terminal.
func inspectFile(cmd *cobra.Command, e *env, path string, skipTrailer bool) (*snapkit.Report, error) {
	progress := clikit.NewProgress(e.stderr, "reading", 0)
	r, err := snapkit.Inspect(cmd.Context(), path, snapkit.Options{Logger: e.logger, Progress: progress.Func(), SkipTrailer: skipTrailer})
	progress.Done()
	if err != nil {
		return nil, inputError(err)
	}
	return r, nil
}

// inspectSnap reads a raft .snap file; one that does not decode is damage
// (exit 1).
func inspectSnap(path string) (*snapkit.SnapStatus, error) {
	st, err := snapkit.InspectSnap(path)
	if err != nil {
		return nil, inputError(err)
	}
	return st, nil
}

// isSnapFile reports whether path is a raft .snap file.
func isSnapFile(path string) bool {
	src, err := snapkit.Resolve(path)
	return err == nil && src.Kind == snapkit.KindSnap
}
