package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/internal/scripttest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, scripttest.Program("restore", func() int { return Execute(Options{}) }))
}

// scriptCmds are the helper commands of the scripts:
//
//	fixture <set> <member> <dir>   unpack fixtures/<set>/<member>.tar.gz as <dir>
//	exitcode <n>                   the last restore exited with n
//	flip <file> <offset>           flip every bit of one byte (negative: from the end)
//	samefield <field> <a> <b>      JSON files a and b have the same top-level field
var scriptCmds = map[string]scripttest.Cmd{
	"fixture":  scripttest.Fixture,
	"exitcode": scripttest.Exitcode("restore"),
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
		off, err := strconv.ParseInt(args[1], 0, 64)
		ts.Check(err)
		scripttest.FlipByte(ts, ts.MkAbs(args[0]), off)
	},
}

// TestScripts runs testdata/script/*.txtar. $FIXTURES is the fixtures
// directory.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("FIXTURES", fixture.Root())
			scripttest.SetStatusFile(env)
			return nil
		},
		Cmds: scriptCmds,
	})
}
