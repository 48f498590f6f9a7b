package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
)

// walInput is the WAL a command reads: a positional data dir or WAL dir,
// or --wal-dir.
type walInput struct {
	walDir string
}

// AddFlags registers --wal-dir.
func (in *walInput) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&in.walDir, "wal-dir", "", "the WAL directory, when it is not <data-dir>/member/wal")
}

// args accepts one positional directory, or none with --wal-dir.
func (in *walInput) args(_ *cobra.Command, args []string) error {
	switch {
	case len(args) > 1:
		return usage(fmt.Errorf("want one data dir or WAL dir, got %d arguments", len(args)))
	case len(args) == 1 && in.walDir != "":
		return usage(errors.New("give a data dir or --wal-dir, not both"))
	case len(args) == 0 && in.walDir == "":
		return usage(errors.New("missing the data dir or WAL dir (or --wal-dir)"))
	}
	return nil
}

// dir resolves the WAL directory. A data dir is recognised by its
// member/wal; a WAL dir by the *.wal files in it. Anything else is a usage
// error that says what was found.
func (in *walInput) dir(args []string) (string, error) {
	path := in.walDir
	if path == "" {
		path = args[0]
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", usage(fmt.Errorf("walkit: %s: no such directory", path))
	case err != nil:
		return "", usage(fmt.Errorf("walkit: %w", err))
	case !fi.IsDir():
		return "", usage(fmt.Errorf("walkit: %s: is a file, not a data dir or WAL dir (give the directory that holds the .wal files)", path))
	}
	if in.walDir == "" {
		if layout, err := datadir.Locate(path); err == nil {
			if fi, err := os.Stat(layout.WALDir()); err == nil && fi.IsDir() {
				path = layout.WALDir()
			}
		}
	}
	segs, err := filepath.Glob(filepath.Join(path, "*.wal"))
	if err != nil {
		return "", usage(fmt.Errorf("walkit: %s: %w", path, err))
	}
	if len(segs) == 0 {
		what := "no .wal files"
		if ents, err := os.ReadDir(path); err == nil && len(ents) == 0 {
			what = "empty directory"
		}
		return "", usage(fmt.Errorf("walkit: %s: %s: not a data dir (no member/wal) nor a WAL dir (no *.wal)", path, what))
	}
	return path, nil
}
