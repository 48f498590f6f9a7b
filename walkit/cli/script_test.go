package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/internal/scripttest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, scripttest.Program("walkit", Execute))
}

// scriptCmds are the helper commands of the scripts:
//
//	fixture <set> <member> <dir>   unpack fixtures/<set>/<member>.tar.gz; <dir> is the data dir
//	exitcode <n>                   the last walkit exited with n
//	corrupt <file> <where>         flip every bit of the byte at <where>
//	truncate <file> <where>        cut (or extend with zeros) a file at <where>
//	isprefix <short> <long>        <short> is a proper, non-empty prefix of <long>
//
// <where> is a byte offset, or @text#n: the offset of the n-th occurrence
// of text in the file (found by searching bytes, not by reading the WAL),
// so that a script can hit a key inside an entry whatever the fixture's
// layout.
var scriptCmds = map[string]scripttest.Cmd{
	"fixture":  scripttest.Fixture,
	"exitcode": scripttest.Exitcode("walkit"),
	"corrupt": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: corrupt <file> <where>")
		}
		path := ts.MkAbs(args[0])
		scripttest.FlipByte(ts, path, where(ts, path, args[1]))
	},
	"truncate": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: truncate <file> <where>")
		}
		path := ts.MkAbs(args[0])
		ts.Check(os.Truncate(path, where(ts, path, args[1])))
	},
	"isprefix": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: isprefix <short> <long>")
		}
		short, err := os.ReadFile(ts.MkAbs(args[0]))
		ts.Check(err)
		long, err := os.ReadFile(ts.MkAbs(args[1]))
		ts.Check(err)
		ok := len(short) > 0 && len(short) < len(long) && bytes.Equal(short, long[:len(short)])
		if ok == neg {
			ts.Fatalf("isprefix %s (%d bytes) %s (%d bytes): %t", args[0], len(short), args[1], len(long), ok)
		}
	},
}

// where resolves a script's <where> in file path.
func where(ts *testscript.TestScript, path, spec string) int64 {
	text, ok := strings.CutPrefix(spec, "@")
	if !ok {
		off, err := strconv.ParseInt(spec, 0, 64)
		ts.Check(err)
		return off
	}
	text, nth, _ := strings.Cut(text, "#")
	n := 1
	if nth != "" {
		var err error
		n, err = strconv.Atoi(nth)
		ts.Check(err)
	}
	data, err := os.ReadFile(path)
	ts.Check(err)
	at := -1
	for i := 0; i < n; i++ {
		j := bytes.Index(data[at+1:], []byte(text))
		if j < 0 {
			ts.Fatalf("%s: %q occurs fewer than %d times", path, text, n)
		}
		at += j + 1
	}
	return int64(at)
}

// TestUsageScripts runs the scripts that need no fixture facts: bad usage
// and unreadable input.
func TestUsageScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/usage",
		Cmds: scriptCmds,
		Setup: func(env *testscript.Env) error {
			scripttest.SetStatusFile(env)
			return nil
		},
	})
}

// TestScripts runs the end-to-end scripts on real etcd fixtures. What they
// expect comes from etcd's own WAL reader (the walread oracle) run on the
// same fixtures, exported as variables: V36_ENTRIES, V36_FIRST, ...
func TestScripts(t *testing.T) {
	facts := map[string]string{}
	walread := interoptest.Oracle(t, "walread")
	for _, fx := range []struct{ set, prefix string }{{"v3.6", "V36"}, {"v3.5", "V35"}} {
		out := readWithOracle(t, walread, fixture.WALDir(t, fx.set, "m1"))
		for k, v := range out.facts() {
			facts[fx.prefix+"_"+k] = v
		}
	}
	facts["WALREAD"] = walread
	t.Logf("facts from etcd's reader: %v", facts)
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/script",
		Cmds: scriptCmds,
		Setup: func(env *testscript.Env) error {
			scripttest.SetStatusFile(env)
			for k, v := range facts {
				env.Setenv(k, v)
			}
			return nil
		},
	})
}

// oracleOutput is what walread prints.
type oracleOutput struct {
	HardState struct{ Term, Vote, Commit uint64 }
	Entries   []struct {
		Term, Index uint64
		Type        int
		Data        string
	}
	Snapshots []struct{ Index, Term uint64 }
}

func readWithOracle(t *testing.T, walread, dir string) oracleOutput {
	t.Helper()
	out, err := exec.Command(walread, dir).Output()
	if err != nil {
		t.Fatalf("walread %s: %v", dir, err)
	}
	var o oracleOutput
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("walread %s: %v", dir, err)
	}
	if len(o.Entries) == 0 {
		t.Fatalf("walread %s: no entries", dir)
	}
	return o
}

// facts are the numbers the scripts check, each computed here from etcd's
// reading without walkit: counts by raft type and term, an index window,
// and the entries whose raw bytes mention a key prefix.
func (o oracleOutput) facts() map[string]string {
	n := func(v int) string { return strconv.Itoa(v) }
	first, last := o.Entries[0].Index, o.Entries[len(o.Entries)-1].Index
	lo, hi := first+(last-first)/4, first+(last-first)/2
	var conf, term1, window, txnKey, podKey int
	for _, e := range o.Entries {
		data, _ := base64.StdEncoding.DecodeString(e.Data)
		if e.Type == 1 {
			conf++
		}
		if e.Term == 1 {
			term1++
		}
		if e.Index >= lo && e.Index <= hi {
			window++
		}
		if bytes.Contains(data, []byte("/registry/txn/")) {
			txnKey++
		}
		if bytes.Contains(data, []byte("/registry/pods/")) {
			podKey++
		}
	}
	return map[string]string{
		"ENTRIES": n(len(o.Entries)), "FIRST": fmt.Sprint(first), "LAST": fmt.Sprint(last),
		"HS_TERM": fmt.Sprint(o.HardState.Term), "HS_COMMIT": fmt.Sprint(o.HardState.Commit),
		"HS_VOTE":   strconv.FormatUint(o.HardState.Vote, 16),
		"SNAPSHOTS": n(len(o.Snapshots)), "CONF": n(conf), "NORMAL": n(len(o.Entries) - conf),
		"TERM1": n(term1), "LO": fmt.Sprint(lo), "HI": fmt.Sprint(hi), "WINDOW": n(window),
		"TXN_KEY": n(txnKey), "POD_KEY": n(podKey),
		"LAST_TERM": fmt.Sprint(o.Entries[len(o.Entries)-1].Term),
	}
}

// TestDumpMatchesOracle checks, entry by entry, that walkit dump reads the
// fixtures' WALs as etcd does: same indexes, terms, raft types and data sizes.
func TestDumpMatchesOracle(t *testing.T) {
	walread := interoptest.Oracle(t, "walread")
	for _, set := range fixture.Sets {
		for _, member := range fixture.Members {
			t.Run(set+"/"+member, func(t *testing.T) {
				dir := fixture.WALDir(t, set, member)
				want := readWithOracle(t, walread, dir)
				var out, errOut bytes.Buffer
				if code := Run(t.Context(), []string{"dump", "-w", "jsonl", dir}, &out, &errOut); code != ExitOK {
					t.Fatalf("exit %d: %s", code, errOut.String())
				}
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				if len(lines) != len(want.Entries) {
					t.Fatalf("%d entries, etcd reads %d", len(lines), len(want.Entries))
				}
				for i, line := range lines {
					var got struct {
						Term, Index uint64
						Type        string
						Size        int
					}
					if err := json.Unmarshal([]byte(line), &got); err != nil {
						t.Fatal(err)
					}
					w := want.Entries[i]
					data, _ := base64.StdEncoding.DecodeString(w.Data)
					isConf := got.Type == "ConfigChange"
					if got.Index != w.Index || got.Term != w.Term || got.Size != len(data) || isConf != (w.Type == 1) {
						t.Fatalf("entry %d: got %+v, etcd reads index %d term %d type %d size %d", i, got, w.Index, w.Term, w.Type, len(data))
					}
					if strings.Contains(got.Type, "Unknown") {
						t.Errorf("entry %d (index %d) does not decode: %s", i, got.Index, line)
					}
				}
			})
		}
	}
}
