package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/internal/scripttest"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

func TestMain(m *testing.M) {
	testscript.Main(m, scripttest.Program("snapkit", Execute))
}

// run executes snapkit in process and returns its exit code and output.
func run(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), argv, &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

// TestScripts runs testdata/script/*.txtar. $FIXTURES is the fixtures
// directory; $WORK holds m1 (a v3.6 data dir), trunc.db (the first half of
// the v3.6 snapshot), flipped.db (the snapshot with one byte changed),
// meta.db (the snapshot with its newer bbolt meta page damaged), bad.snap
// (a .snap of m1 with a byte changed), the same .snap misnamed,
// notbolt.db (text), empty.db, and auth.db (m1's db with auth enabled at
// auth revision 5, users root and alice, role root).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("FIXTURES", fixture.Root())
			for _, m := range []string{"m1", "solo"} {
				if err := fixture.Unpack(fixture.Path("v3.6", m+".tar.gz"), env.WorkDir); err != nil {
					return err
				}
			}
			snap, err := os.ReadFile(fixture.Path("v3.6", "snapshot.db"))
			if err != nil {
				return err
			}
			flipped := bytes.Clone(snap)
			flipped[len(flipped)/3] ^= 0x40
			// meta.db: the newer of the two bbolt meta pages has a bad checksum.
			meta := bytes.Clone(snap)
			ps := int(binary.LittleEndian.Uint32(meta[16+8:]))
			txid := func(page int) uint64 { return binary.LittleEndian.Uint64(meta[page*ps+16+48:]) }
			newer := 0
			if txid(1) > txid(0) {
				newer = 1
			}
			meta[newer*ps+16+56] ^= 0xff
			// bad.snap: a .snap with one byte changed; and one under a wrong name.
			snapFile, err := os.ReadFile(filepath.Join(env.WorkDir, "m1", "member", "snap", "0000000000000002-000000000000025e.snap"))
			if err != nil {
				return err
			}
			badSnap := bytes.Clone(snapFile)
			badSnap[len(badSnap)/2] ^= 0x01
			if err := writeAuthDB(filepath.Join(env.WorkDir, "m1", "member", "snap", "db"), filepath.Join(env.WorkDir, "auth.db")); err != nil {
				return err
			}
			for name, data := range map[string][]byte{
				"bad.snap":                               badSnap,
				"0000000000000002-0000000000000001.snap": snapFile,
				"trunc.db":                               snap[:len(snap)/2],
				"flipped.db":                             flipped,
				"meta.db":                                meta,
				"notbolt.db":                             bytes.Repeat([]byte("this is not a bbolt file\n"), 400),
				"empty.db":                               nil,
			} {
				if err := os.WriteFile(filepath.Join(env.WorkDir, name), data, 0o600); err != nil {
					return err
				}
			}
			return nil
		},
		Cmds: map[string]scripttest.Cmd{
			// exits N args...: run snapkit and expect exit code N.
			"exits": scripttest.Exits("snapkit"),
		},
	})
}

// writeAuthDB copies the db at src to dst and enables auth in the copy,
// at auth revision 5, with users root and alice and the role root.
func writeAuthDB(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return err
	}
	db, err := schema.Open(dst, schema.Options{})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return errors.Join(
			schema.SetAuthEnabled(tx, true),
			schema.SetAuthRevision(tx, 5),
			schema.PutUser(tx, &authpb.User{Name: []byte("root"), Roles: []string{"root"}}),
			schema.PutUser(tx, &authpb.User{Name: []byte("alice")}),
			schema.PutRole(tx, &authpb.Role{Name: []byte("root")}))
	})
	return errors.Join(err, db.Close())
}

// etcdutlStatus runs `etcdutl snapshot status -w json` on a copy of db.
func etcdutlStatus(t *testing.T, etcdutl, db string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(etcdutl, "snapshot", "status", "-w", "json", cp).Output()
	if err != nil {
		t.Fatalf("etcdutl snapshot status %s: %v", db, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("etcdutl: %v: %s", err, out)
	}
	return m
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// etcdutlFields are the fields of `etcdutl snapshot status -w json`.
var etcdutlFields = []string{"hash", "revision", "totalKey", "totalSize", "version"}

// `snapkit status -w json` prints etcdutl's five numbers exactly, for every
// fixture snapshot and member db of both versions, and leaves the input as
// it was.
func TestStatusMatchesEtcdutl(t *testing.T) {
	etcdutl := interoptest.Binary(t, "etcdutl")
	for _, set := range fixture.Sets {
		inputs := map[string]struct{ arg, db string }{}
		snap := fixture.Path(set, "snapshot.db")
		inputs["snapshot.db"] = struct{ arg, db string }{snap, snap}
		for _, m := range fixture.Members {
			dir := fixture.DataDir(t, set, m)
			inputs[m] = struct{ arg, db string }{dir, filepath.Join(dir, "member", "snap", "db")}
		}
		for name, in := range inputs {
			t.Run(set+"/"+name, func(t *testing.T) {
				before := fileSum(t, in.db)
				code, out, stderr := run(t, "status", "-w", "json", in.arg)
				if code != ExitOK {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				if fileSum(t, in.db) != before {
					t.Fatalf("%s changed", in.db)
				}
				var got map[string]any
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatal(err)
				}
				want := etcdutlStatus(t, etcdutl, in.db)
				for _, f := range etcdutlFields {
					if fmt.Sprint(got[f]) != fmt.Sprint(want[f]) {
						t.Errorf("%s: snapkit %v, etcdutl %v", f, got[f], want[f])
					}
				}
			})
		}
	}
}

// For snapshot.db, status equals the snapshot-status.json that etcd's own
// etcdutl printed when the fixture was made: etcdutl 3.6 for v3.6, and for
// v3.5 etcdutl 3.5, whose totalKey counted every pair (our totalKeyV35).
func TestStatusMatchesFixtureJSON(t *testing.T) {
	for _, set := range fixture.Sets {
		t.Run(set, func(t *testing.T) {
			b, err := os.ReadFile(fixture.Path(set, "snapshot-status.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			version, err := os.ReadFile(fixture.Path(set, "VERSION"))
			if err != nil {
				t.Fatal(err)
			}
			code, out, stderr := run(t, "status", "-w", "json", fixture.Path(set, "snapshot.db"))
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatal("empty fixture JSON")
			}
			for f, w := range want {
				g := f
				if f == "totalKey" && strings.Contains(string(version), "3.5.") {
					g = "totalKeyV35"
				}
				if fmt.Sprint(got[g]) != fmt.Sprint(w) {
					t.Errorf("%s: snapkit %s = %v, fixture %v", f, g, got[g], w)
				}
			}
		})
	}
}

// `status -w simple` and `-w fields` print what etcdutl's do, byte for byte.
func TestStatusFormatsMatchEtcdutl(t *testing.T) {
	etcdutl := interoptest.Binary(t, "etcdutl")
	for _, set := range fixture.Sets {
		for _, format := range []string{"simple", "fields"} {
			t.Run(set+"/"+format, func(t *testing.T) {
				cp := filepath.Join(t.TempDir(), "copy.db")
				b, err := os.ReadFile(fixture.Path(set, "snapshot.db"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cp, b, 0o600); err != nil {
					t.Fatal(err)
				}
				want, err := exec.Command(etcdutl, "snapshot", "status", "-w", format, cp).Output()
				if err != nil {
					t.Fatalf("etcdutl: %v", err)
				}
				code, out, stderr := run(t, "status", "-w", format, cp)
				if code != ExitOK || out != string(want) {
					t.Errorf("exit %d, %q (%s); etcdutl printed %q", code, out, stderr, want)
				}
			})
		}
	}
}

// `status -w json` of every .snap file of the fixtures has the term, index
// and voters that etcd's own snap.Read finds (the snapread oracle).
func TestSnapStatusMatchesEtcd(t *testing.T) {
	snapread := interoptest.Oracle(t, "snapread")
	for _, set := range fixture.Sets {
		files, err := filepath.Glob(filepath.Join(fixture.DataDir(t, set, "m1"), "member", "snap", "*.snap"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no .snap files: %v", set, err)
		}
		for _, f := range files {
			out, err := exec.Command(snapread, f).Output()
			if err != nil {
				t.Fatalf("snapread %s: %v", f, err)
			}
			var want struct {
				Metadata struct {
					Index, Term uint64
					ConfState   struct{ Voters []uint64 }
				}
			}
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatal(err)
			}
			code, got, stderr := run(t, "status", "-w", "json", f)
			if code != ExitOK {
				t.Fatalf("%s: exit %d: %s", f, code, stderr)
			}
			var st struct {
				Index, Term uint64
				ConfState   struct{ Voters []uint64 }
				Members     []struct{ ID string }
			}
			if err := json.Unmarshal([]byte(got), &st); err != nil {
				t.Fatal(err)
			}
			w := want.Metadata
			if st.Index != w.Index || st.Term != w.Term || fmt.Sprint(st.ConfState.Voters) != fmt.Sprint(w.ConfState.Voters) || len(st.Members) != len(w.ConfState.Voters) {
				t.Errorf("%s: snapkit %+v, etcd %+v", f, st, w)
			}
		}
	}
}
