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
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// walInput is the WAL a command reads: a positional data dir or WAL dir,
// or --wal-dir (with --data-dir, for commands that read the member's other
// files too).
type walInput struct {
	walDir  string
	dataDir string
}

// AddFlags registers --wal-dir.
func (in *walInput) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&in.walDir, "wal-dir", "", "the WAL directory, when it is not <data-dir>/member/wal")
}

// AddDataDirFlag registers --data-dir, for a command that reads the db and
// .snap files beside the WAL.
func (in *walInput) AddDataDirFlag(fs *pflag.FlagSet) {
	fs.StringVar(&in.dataDir, "data-dir", "", "the member's data dir, when --wal-dir is a dedicated WAL dir outside it")
}

// args accepts one positional directory, or none with --wal-dir.
func (in *walInput) args(_ *cobra.Command, args []string) error {
	switch {
	case in.dataDir != "" && in.walDir == "":
		return usage(errors.New("--data-dir goes with --wal-dir; give the data dir alone as the argument"))
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
	if _, err := walkit.ListSegments(path); errors.Is(err, walkit.ErrFileNotFound) {
		return "", usage(err) // *.wal files, none named as a segment
	}
	return path, nil
}

// layout finds the data dir of the member whose WAL is walDir: --data-dir,
// or the data dir given, or the one walDir sits in (<data-dir>/member/wal).
// It reports false when walDir belongs to no data dir it can see.
func (in *walInput) layout(args []string, walDir string) (datadir.Layout, bool, error) {
	if in.dataDir != "" {
		l, err := datadir.Locate(in.dataDir)
		if err != nil {
			return datadir.Layout{}, false, usage(fmt.Errorf("walkit: --data-dir: %w", err))
		}
		l.DedicatedWALDir = walDir
		return l, true, nil
	}
	candidates := []string{filepath.Dir(filepath.Clean(walDir))}
	if len(args) == 1 {
		candidates = []string{args[0], candidates[0]}
	}
	for _, c := range candidates {
		if l, err := datadir.Locate(c); err == nil && filepath.Clean(l.WALDir()) == filepath.Clean(walDir) {
			return l, true, nil
		}
	}
	return datadir.Layout{}, false, nil
}
