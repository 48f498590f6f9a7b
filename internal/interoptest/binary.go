package interoptest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// EtcdVersion is the etcd release the tests run against. It must match the
// version that interop/go.mod requires.
const EtcdVersion = "v3.6.6"

// RequireEnv names the environment variable that turns a skip for a missing
// binary into a failure when set to "require".
const RequireEnv = "LIFEBOAT_INTEROP"

// CacheEnv names the environment variable that overrides the cache root.
const CacheEnv = "LIFEBOAT_ETCD_CACHE"

var etcdBinaries = map[string]bool{"etcd": true, "etcdctl": true, "etcdutl": true}

// CacheRoot returns the root of the binary cache: $LIFEBOAT_ETCD_CACHE, or
// $HOME/.cache/lifeboat-etcd.
func CacheRoot() (string, error) {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("interoptest: no %s and no home directory: %w", CacheEnv, err)
	}
	return filepath.Join(home, ".cache", "lifeboat-etcd"), nil
}

// InteropDir returns the interop module's directory, found from this source
// file's location.
func InteropDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "interop")
}

// Binary returns the path of a real etcd v3.6.6 binary: "etcd", "etcdctl"
// or "etcdutl". It skips the test (fails it under LIFEBOAT_INTEROP=require)
// when the binary is neither cached nor buildable.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if !etcdBinaries[name] {
		t.Fatalf("interoptest: unknown etcd binary %q (want etcd, etcdctl or etcdutl)", name)
		return ""
	}
	root, err := CacheRoot()
	if err != nil {
		unavailable(t, name, err)
		return ""
	}
	path := filepath.Join(root, EtcdVersion, name)
	if isExecutable(path) {
		return path
	}
	return built(t, name)
}

// Oracle returns the path of an oracle program of interop/cmd/<name>
// (walread, walwrite, snapread, hashkv), built from the current sources.
func Oracle(t testing.TB, name string) string {
	t.Helper()
	if etcdBinaries[name] {
		t.Fatalf("interoptest: %q is an etcd binary; use Binary", name)
		return ""
	}
	if _, err := os.Stat(filepath.Join(InteropDir(), "cmd", name)); err != nil {
		t.Fatalf("interoptest: no oracle %q: %v", name, err)
		return ""
	}
	return built(t, name)
}

// builds memoizes build-etcd's answers for the life of the test process, so
// that `go run` happens once per binary and process.
var builds struct {
	sync.Mutex
	done map[string]buildResult
}

type buildResult struct {
	path string
	err  error
}

func built(t testing.TB, name string) string {
	t.Helper()
	builds.Lock()
	r, ok := builds.done[name]
	if !ok {
		r.path, r.err = runBuildEtcd(name)
		if builds.done == nil {
			builds.done = map[string]buildResult{}
		}
		builds.done[name] = r
	}
	builds.Unlock()
	if r.err != nil {
		unavailable(t, name, r.err)
		return ""
	}
	return r.path
}

// runBuildEtcd asks interop/cmd/build-etcd for one binary; it builds it
// into the cache under a file lock if needed and prints its path.
func runBuildEtcd(name string) (string, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("building %s needs the go command: %w", name, err)
	}
	cmd := exec.Command("go", "run", "./cmd/build-etcd", name)
	cmd.Dir = InteropDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go run ./cmd/build-etcd %s in %s: %w\n%s", name, cmd.Dir, err, etcdproc.Tail(stderr.String(), 4000))
	}
	path := strings.TrimSpace(stdout.String())
	if !isExecutable(path) {
		return "", fmt.Errorf("build-etcd %s printed %q, which is not an executable", name, path)
	}
	return path, nil
}

func unavailable(t testing.TB, name string, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "require" {
		t.Fatalf("interoptest: %s is required (%s=require) but unavailable: %v", name, RequireEnv, err)
		return
	}
	t.Skipf("interoptest: skipping, %s unavailable (set %s=require to fail instead): %v", name, RequireEnv, err)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
