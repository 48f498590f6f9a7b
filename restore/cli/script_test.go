package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

// statusFileEnv names the file where the restore process started by a
// script leaves its exit code, for the exitcode command.
const statusFileEnv = "RESTORE_STATUS_FILE"

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"restore": func() {
			code := Execute(Options{})
			if f := os.Getenv(statusFileEnv); f != "" {
				if err := os.WriteFile(f, []byte(strconv.Itoa(code)), 0o600); err != nil {
					fmt.Fprintln(os.Stderr, "restore test: write exit status:", err)
					code = 100
				}
			}
			os.Exit(code)
		},
	})
}

// scriptCmds are the helper commands of the scripts:
//
//	fixture <set> <member> <dir>   unpack fixtures/<set>/<member>.tar.gz as <dir>
//	exitcode <n>                   the last restore exited with n
//	flip <file> <offset>           flip every bit of one byte (negative: from the end)
//	samefield <field> <a> <b>      JSON files a and b have the same top-level field
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"fixture": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 3 {
			ts.Fatalf("usage: fixture <set> <member> <dir>")
		}
		tmp := ts.MkAbs(args[2] + ".unpack")
		ts.Check(fixture.Unpack(fixture.Path(args[0], args[1]+".tar.gz"), tmp))
		ts.Check(os.Rename(filepath.Join(tmp, args[1]), ts.MkAbs(args[2])))
		ts.Check(os.Remove(tmp))
	},
	"exitcode": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: exitcode <n>")
		}
		b, err := os.ReadFile(ts.Getenv(statusFileEnv))
		ts.Check(err)
		if got := string(b); got != args[0] {
			ts.Fatalf("restore exited with %s, want %s", got, args[0])
		}
	},
	"samefield": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 3 {
			ts.Fatalf("usage: samefield <field> <a.json> <b.json>")
		}
		var vals [2]any
		for i, name := range args[1:] {
			b, err := os.ReadFile(ts.MkAbs(name))
			ts.Check(err)
			var m map[string]any
			ts.Check(json.Unmarshal(b, &m))
			v, ok := m[args[0]]
			if !ok {
				ts.Fatalf("%s has no field %q", name, args[0])
			}
			vals[i] = v
		}
		if same := fmt.Sprint(vals[0]) == fmt.Sprint(vals[1]); same == neg {
			ts.Fatalf("%s: %v and %v", args[0], vals[0], vals[1])
		}
	},
	"flip": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: flip <file> <offset>")
		}
		path := ts.MkAbs(args[0])
		off, err := strconv.ParseInt(args[1], 0, 64)
		ts.Check(err)
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
	},
}

// TestScripts runs testdata/script/*.txtar. $FIXTURES is the fixtures
// directory.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("FIXTURES", fixture.Root())
			env.Setenv(statusFileEnv, filepath.Join(env.WorkDir, ".restore-status"))
			return nil
		},
		Cmds: scriptCmds,
	})
}
