package cli

import (
	"strings"

	"github.com/lifeboat-dev/lifeboat/restore"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// runNewDataDir is what force-new-cluster and roll-forward share: each
// writes a member into a new data dir, *outputDir defaulting to
// <dataDir>.<suffix>, copying the db of src. write runs with the progress
// of that copy; an error gets its exit code; the result is printed as
// JSON, or as the fields describe adds, then how to start the member on
// the data dir describe returns.
func runNewDataDir[R any](e *env, outputDir *string, dataDir, suffix, src string,
	write func(restore.Progress) (R, error), describe func(*fields, R) string) error {
	if *outputDir == "" {
		*outputDir = strings.TrimSuffix(dataDir, "/") + "." + suffix
	}
	var progress restore.Progress
	end := func() {}
	if s, err := snapkit.Resolve(src); err == nil {
		progress, end = e.progress("copying "+s.DBPath, s.DBSize)
	}
	res, err := write(progress)
	end()
	if err != nil {
		return classify(err)
	}
	if e.output == "json" {
		return writeJSON(e.stdout, res)
	}
	f := newFields(e.stdout)
	written := describe(f, res)
	f.add("next", "start the member on %s as usual; then add members with etcdctl member add", written)
	return f.flush()
}
