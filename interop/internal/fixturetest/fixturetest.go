package fixturetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Path returns the path of a file of a fixture set, e.g. Path("v3.6", "snapshot.db").
func Path(set, name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "fixtures", set, name)
}

// DataDir unpacks <set>/<member>.tar.gz into t.TempDir() and returns the
// member's data dir (the directory that holds member/).
func DataDir(t testing.TB, set, member string) string {
	t.Helper()
	archive := Path(set, member+".tar.gz")
	if _, err := os.Stat(archive); err != nil {
		t.Fatalf("fixture %s/%s: %v", set, member, err)
	}
	dst := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", archive, "-C", dst).CombinedOutput(); err != nil {
		t.Fatalf("fixture %s: tar: %v\n%s", archive, err, out)
	}
	return filepath.Join(dst, member)
}
