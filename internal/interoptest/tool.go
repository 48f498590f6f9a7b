package interoptest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tools memoizes the commands of this module built for the test process.
var tools struct {
	sync.Mutex
	dir  string
	done map[string]buildResult
}

// Tool builds ./cmd/<name> of this module, with the given build tags, once
// per test process and returns the binary's path. A command that is
// missing, has no sources or does not build fails the test. The
// binaries live in a temporary directory that RemoveTools deletes (call it
// from TestMain).
func Tool(t testing.TB, name string, tags ...string) string {
	t.Helper()
	root := filepath.Dir(InteropDir())
	src := filepath.Join(root, "cmd", name)
	if m, _ := filepath.Glob(filepath.Join(src, "*.go")); len(m) == 0 {
		// A skip here would hide a missing binary: fail the test that needs it.
		t.Fatalf("interoptest: cmd/%s: no Go sources in %s", name, src)
		return ""
	}
	key := strings.Join(append([]string{name}, tags...), "+")
	tools.Lock()
	defer tools.Unlock()
	r, ok := tools.done[key]
	if !ok {
		r.path, r.err = buildTool(root, name, key, tags)
		if tools.done == nil {
			tools.done = map[string]buildResult{}
		}
		tools.done[key] = r
	}
	if r.err != nil {
		t.Fatalf("interoptest: %v", r.err)
	}
	return r.path
}

// buildTool runs go build under tools' lock.
func buildTool(root, name, key string, tags []string) (string, error) {
	if tools.dir == "" {
		dir, err := os.MkdirTemp("", "lifeboat-test-bin-")
		if err != nil {
			return "", fmt.Errorf("building cmd/%s: %w", name, err)
		}
		tools.dir = dir
	}
	bin := filepath.Join(tools.dir, key)
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/"+name)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s ./cmd/%s: %w\n%s", strings.Join(args, " "), name, err, out)
	}
	return bin, nil
}

// RemoveTools deletes the binaries that Tool built.
func RemoveTools() {
	tools.Lock()
	defer tools.Unlock()
	if tools.dir != "" {
		os.RemoveAll(tools.dir)
	}
	tools.dir, tools.done = "", nil
}
