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

// ModeEnv names the environment variable that says what the interop tests
// do: "off" skips them at once and builds nothing; unset finds or builds
// the binaries and skips a test whose binary cannot be had; "require" fails
// that test instead. Any other value fails the test.
const ModeEnv = "LIFEBOAT_INTEROP"

// mode returns ModeEnv's value, failing the test on a value it does not know.
func mode(t testing.TB) (string, bool) {
	t.Helper()
	switch v := os.Getenv(ModeEnv); v {
	case "", "off", "require":
		return v, true
	default:
		t.Fatalf("interoptest: %s=%q; want off, require, or unset", ModeEnv, v)
		return v, false
	}
}

// skipOff skips the test under LIFEBOAT_INTEROP=off (and fails it under an
// unknown value); it reports whether the test may go on.
func skipOff(t testing.TB, name string) bool {
	t.Helper()
	m, ok := mode(t)
	if !ok {
		return false
	}
	if m == "off" {
		t.Skipf("interoptest: skipping, %s=off (needs %s)", ModeEnv, name)
		return false
	}
	return true
}

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
// or "etcdutl". It skips the test under LIFEBOAT_INTEROP=off, and when the
// binary is neither cached nor buildable (fails it under
// LIFEBOAT_INTEROP=require).
func Binary(t testing.TB, name string) string {
	t.Helper()
	if !etcdBinaries[name] {
		t.Fatalf("interoptest: unknown etcd binary %q (want etcd, etcdctl or etcdutl)", name)
		return ""
	}
	if !skipOff(t, name) {
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
// LIFEBOAT_INTEROP acts on it as on Binary.
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
	if !skipOff(t, name) {
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
	if os.Getenv(ModeEnv) == "require" {
		t.Fatalf("interoptest: %s is required (%s=require) but unavailable: %v", name, ModeEnv, err)
		return
	}
	t.Skipf("interoptest: skipping, %s unavailable (set %s=require to fail instead, off to skip at once): %v", name, ModeEnv, err)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
