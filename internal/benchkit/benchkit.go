// Package benchkit holds what benchmarks of several packages share: big
// inputs generated once and cached under the user cache dir (never in the
// repository), and child processes measured for wall time, CPU time and
// peak RSS under /usr/bin/time.
package benchkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// CacheDir is <user cache dir>/lifeboat-bench, where Cached keeps its files.
func CacheDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("benchkit: %w", err)
	}
	return filepath.Join(cache, "lifeboat-bench"), nil
}

// Cached returns the path of the cached file name, made by gen first if it
// is not there. gen writes to the path it is given, a temporary name that
// is renamed into place only once gen succeeds, so a cut run leaves no
// half file; made says gen ran.
func Cached(name string, gen func(path string) error) (path string, made bool, err error) {
	dir, err := CacheDir()
	if err != nil {
		return "", false, err
	}
	path = filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("benchkit: %w", err)
	}
	tmp := path + ".gen"
	os.Remove(tmp)
	if err := gen(tmp); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("benchkit: generating %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", false, fmt.Errorf("benchkit: %w", err)
	}
	return path, true, nil
}

// Usage is what a child process took.
type Usage struct {
	Wall    time.Duration
	CPU     time.Duration // user + system, all threads
	PeakRSS int64         // bytes: the child's ru_maxrss
}

// TimeBin is the GNU time that Run measures children with.
const TimeBin = "/usr/bin/time"

// ErrNoTime means TimeBin is missing: a benchmark skips.
var ErrNoTime = errors.New("benchkit: " + TimeBin + " is needed to measure a child's peak RSS")

// Run runs cmd under /usr/bin/time and returns its usage. cmd must not be
// started; its Stderr is taken (the child's stderr is in the error if it
// fails). Go's own rusage of a child is no use for the RSS: a vforked
// child inherits this process's high-water mark.
func Run(ctx context.Context, cmd *exec.Cmd) (Usage, error) {
	if cmd.Err != nil {
		return Usage{}, fmt.Errorf("benchkit: %w", cmd.Err)
	}
	if _, err := os.Stat(TimeBin); err != nil {
		return Usage{}, ErrNoTime
	}
	timed := exec.CommandContext(ctx, TimeBin, append([]string{"-f", "benchkit: %M %U %S", cmd.Path}, cmd.Args[1:]...)...)
	timed.Dir, timed.Env, timed.Stdin, timed.Stdout = cmd.Dir, cmd.Env, cmd.Stdin, cmd.Stdout
	var stderr bytes.Buffer
	timed.Stderr = &stderr
	start := time.Now()
	err := timed.Run()
	wall := time.Since(start)
	if err != nil {
		return Usage{}, fmt.Errorf("benchkit: %v: %w\n%s", cmd.Args, err, stderr.String())
	}
	out := stderr.String()
	i := strings.LastIndex(out, "benchkit: ")
	var (
		kb        int64
		user, sys float64
	)
	if i < 0 {
		return Usage{}, fmt.Errorf("benchkit: %s printed no usage: %q", TimeBin, out)
	}
	if _, err := fmt.Sscanf(out[i:], "benchkit: %d %f %f", &kb, &user, &sys); err != nil {
		return Usage{}, fmt.Errorf("benchkit: %s output %q: %w", TimeBin, out[i:], err)
	}
	return Usage{Wall: wall, CPU: time.Duration((user + sys) * float64(time.Second)), PeakRSS: kb << 10}, nil
}
