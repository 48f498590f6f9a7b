package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Environment of a lock-taking child process (see lockChild).
const (
	childEnv  = "BACKUPD_STORE_LOCK_CHILD" // the bucket URL
	startEnv  = "BACKUPD_STORE_LOCK_START" // Unix nanoseconds of the first round
	roundsEnv = "BACKUPD_STORE_LOCK_ROUNDS"
	roundGap  = 100 * time.Millisecond
)

// lockChild is the test binary run as a child: in each round, at the same
// instant as the other children, it takes the lock of the prefix
// round-<n> and prints "<n> won" or "<n> locked"; it never releases.
func lockChild(bucket string) int {
	start, err1 := strconv.ParseInt(os.Getenv(startEnv), 10, 64)
	rounds, err2 := strconv.Atoi(os.Getenv(roundsEnv))
	if err1 != nil || err2 != nil {
		fmt.Println("bad environment")
		return 2
	}
	ctx := context.Background()
	holder := "child-" + strconv.Itoa(os.Getpid())
	for n := range rounds {
		s, err := Open(ctx, bucket, "round-"+strconv.Itoa(n), nil)
		if err != nil {
			fmt.Println(n, "error", err)
			return 1
		}
		time.Sleep(time.Until(time.Unix(0, start).Add(time.Duration(n) * roundGap)))
		switch _, err := s.Lock(ctx, holder, "test", time.Hour); {
		case err == nil:
			fmt.Println(n, "won")
		case errors.Is(err, ErrLocked):
			fmt.Println(n, "locked")
		default:
			fmt.Println(n, "error", err)
		}
		s.Close()
	}
	return 0
}

// Processes that take a file:// prefix's lock at the same instant: in each
// round exactly one gets it. (gocloud's fileblob checks IfNotExist within
// its process only; the store's file lock is an exclusive link.)
func TestFileLockAcrossProcesses(t *testing.T) {
	const children, rounds = 6, 20
	bucket := "file://" + t.TempDir()
	start := time.Now().Add(time.Second) // all children started by then
	var outs [children]bytes.Buffer
	var cmds []*exec.Cmd
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+bucket, startEnv+"="+strconv.FormatInt(start.UnixNano(), 10),
			roundsEnv+"="+strconv.Itoa(rounds))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	won := make([]int, rounds)
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i].String())
		}
		sc := bufio.NewScanner(&outs[i])
		lines := 0
		for sc.Scan() {
			var n int
			var result string
			if _, err := fmt.Sscan(sc.Text(), &n, &result); err != nil || n < 0 || n >= rounds || (result != "won" && result != "locked") {
				t.Fatalf("child %d: %q", i, sc.Text())
			}
			if result == "won" {
				won[n]++
			}
			lines++
		}
		if lines != rounds {
			t.Fatalf("child %d answered %d rounds of %d", i, lines, rounds)
		}
	}
	for n, w := range won {
		if w != 1 {
			t.Errorf("round %d: %d of %d processes took the lock, want 1", n, w, children)
		}
	}
}
