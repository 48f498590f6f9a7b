// Package scripttest is what the CLIs' testscript tests share: the test
// binary standing in for the program, and the script commands every CLI's
// scripts use (exits, exitcode, fixture). Only tests import it.
package scripttest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

// StatusEnv names the file where the program started by a script leaves
// its exit code, for the exitcode command; SetStatusFile sets it.
const StatusEnv = "SCRIPTTEST_STATUS_FILE"

// Cmd is a script command.
type Cmd = func(ts *testscript.TestScript, neg bool, args []string)

// Program is the map for testscript.Main: the test binary runs as name by
// calling run, and exits with its code, which it also leaves in the file
// $SCRIPTTEST_STATUS_FILE names, if set.
func Program(name string, run func() int) map[string]func() {
	return map[string]func(){
		name: func() {
			code := run()
			if f := os.Getenv(StatusEnv); f != "" {
				if err := os.WriteFile(f, []byte(strconv.Itoa(code)), 0o600); err != nil {
					fmt.Fprintf(os.Stderr, "%s test: write exit status: %v\n", name, err)
					code = 100
				}
			}
			os.Exit(code)
		},
	}
}

// SetStatusFile points $SCRIPTTEST_STATUS_FILE into the script's work
// directory, for Exitcode.
func SetStatusFile(env *testscript.Env) {
	env.Setenv(StatusEnv, filepath.Join(env.WorkDir, ".status"))
}

// Exitcode is "exitcode <n>": the last run of the program exited with n.
func Exitcode(name string) Cmd {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: exitcode <n>")
		}
		b, err := os.ReadFile(ts.Getenv(StatusEnv))
		ts.Check(err)
		if got := string(b); got != args[0] {
			ts.Fatalf("%s exited with %s, want %s", name, got, args[0])
		}
	}
}

// Exits is "exits <code> <args>...": run the program with args and expect
// exit code <code>.
func Exits(name string) Cmd {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 1 {
			ts.Fatalf("usage: exits <code> <%s args>...", name)
		}
		want, err := strconv.Atoi(args[0])
		if err != nil {
			ts.Fatalf("exits: %v", err)
		}
		code := 0
		if err := ts.Exec(name, args[1:]...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				ts.Fatalf("%s: %v", name, err)
			}
			code = ee.ExitCode()
		}
		if code != want {
			ts.Fatalf("%s %s: exit %d, want %d", name, strings.Join(args[1:], " "), code, want)
		}
	}
}

// Fixture is "fixture <set> <member> <dir>": unpack
// fixtures/<set>/<member>.tar.gz as <dir>, the member's data dir.
func Fixture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: fixture <set> <member> <dir>")
	}
	tmp := ts.MkAbs(args[2] + ".unpack")
	ts.Check(fixture.Unpack(fixture.Path(args[0], args[1]+".tar.gz"), tmp))
	ts.Check(os.Rename(filepath.Join(tmp, args[1]), ts.MkAbs(args[2])))
	ts.Check(os.Remove(tmp))
}

// FlipByte flips every bit of the byte at off in path; a negative off
// counts from the end.
func FlipByte(ts *testscript.TestScript, path string, off int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	ts.Check(err)
	defer f.Close()
	if off < 0 {
		fi, err := f.Stat()
		ts.Check(err)
		off += fi.Size()
	}
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	ts.Check(err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	ts.Check(err)
}
