package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// killPlan makes a new-cluster plan from the v3.6 snapshot for one member
// whose data dir holds an old member, written to plan.json.
func killPlan(t *testing.T) (p *Plan, planPath, oldNode string) {
	t.Helper()
	dir := t.TempDir()
	member := filepath.Join(dir, "a.etcd")
	old, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: fixture.Path("v3.6", "snapshot.db"), Name: "old", DataDir: member})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := ParseInitialCluster("a=http://127.0.0.1:2380", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err = MakePlan(context.Background(), nil, PlanOptions{From: []string{fixture.Path("v3.6", "snapshot.db")}, Cluster: specs, MemberDirs: map[string]string{"a": member}})
	if err != nil {
		t.Fatal(err)
	}
	planPath = filepath.Join(dir, "plan.json")
	if err := WritePlan(p, planPath); err != nil {
		t.Fatal(err)
	}
	return p, planPath, old.MemberID
}

// An apply killed (SIGKILL) at any point and run again ends in the planned
// state: the old dir kept whole, the new one exactly what a restore with
// the plan's options writes, every step recorded, nothing left over.
func TestApplyKilledRerunsToTheSameState(t *testing.T) {
	bin := restoreBinary(t)
	// How long a whole run takes, to spread the kills over it.
	_, planPath, _ := killPlan(t)
	start := time.Now()
	if out, err := exec.Command(bin, "apply", planPath).CombinedOutput(); err != nil {
		t.Fatalf("clean apply: %v\n%s", err, out)
	}
	whole := time.Since(start)
	const runs = 10
	killed := 0
	for i := range runs {
		p, planPath, oldNode := killPlan(t)
		cmd := exec.Command(bin, "apply", planPath)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(whole * time.Duration(i) / runs) // where to kill, not a wait for a condition
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil {
			killed++
		}
		if st, err := readState(statePath(p, p.Members[0])); err == nil {
			var done []string
			for _, r := range st.Steps {
				done = append(done, r.Name)
			}
			t.Logf("run %d: killed after %v with %v recorded", i, whole*time.Duration(i)/runs, done)
		}
		if _, err := Apply(context.Background(), nil, p, ApplyOptions{}); err != nil {
			t.Fatalf("run %d: rerun after the kill: %v", i, err)
		}
		m := p.Members[0]
		// The old member, moved aside and whole.
		old := viewDir(t, aside(m.DataDir, p))
		if got := old.Metadata.NodeID; got != mustParseID(t, oldNode) {
			t.Errorf("run %d: the moved-aside dir holds member %x", i, got)
		}
		// The new one: what restore writes for the plan.
		ref := filepath.Join(t.TempDir(), "ref")
		if _, err := Snapshot(context.Background(), nil, SnapshotOptions{Path: p.SourcePath, Name: m.Name, Cluster: p.specs(), Token: p.Token,
			DataDir: ref, BumpRevision: p.BumpRevision, MarkCompacted: true, Compact: true}); err != nil {
			t.Fatal(err)
		}
		for _, d := range diffViews(viewDir(t, ref), viewDir(t, m.DataDir)) {
			t.Errorf("run %d: %s", i, d)
		}
		ents, err := os.ReadDir(m.DataDir)
		if err != nil || len(ents) != 1 || ents[0].Name() != "member" {
			t.Errorf("run %d: the data dir holds %v (%v)", i, ents, err)
		}
		st, err := readState(statePath(p, m))
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range m.Steps {
			if r := st.find(step.Name); step.Auto && (r == nil || !r.Done) {
				t.Errorf("run %d: step %s not recorded done", i, step.Name)
			}
		}
	}
	if killed == 0 {
		t.Errorf("no run was killed before it finished (a whole run takes %v)", whole)
	}
	t.Logf("%d of %d runs killed before they finished", killed, runs)
}

func mustParseID(t *testing.T, s string) uint64 {
	t.Helper()
	id, err := schema.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestApplyRefusals(t *testing.T) {
	p, planPath, _ := killPlan(t)
	// A plan edited after it was made.
	q := *p
	q.BumpRevision++
	b, err := json.Marshal(&q)
	if err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(edited, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPlan(planPath); err != nil {
		t.Errorf("the plan as written: %v", err)
	}
	if _, err := ReadPlan(edited); !errors.Is(err, ErrBadPlan) {
		t.Errorf("edited plan: %v, want ErrBadPlan", err)
	}
	// An unknown member.
	if _, err := Apply(context.Background(), nil, p, ApplyOptions{Members: []string{"zz"}}); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown member: %v", err)
	}
}

// Apply restores the first new member from the plan's source and copies
// its checked db for the others (every member's db is the same): each dir
// then holds that db byte for byte, its own identity in its WAL, and
// passes its check, the copies by their SHA-256 against the first's db as
// checked. A run for one member alone restores from the source,
// and a member dir that an earlier run wrote (stopped before it recorded
// the write) is not copied: the next member restores from the source.
func TestApplyCopiesTheFirstMembersDB(t *testing.T) {
	dir := t.TempDir()
	specs, err := ParseInitialCluster("a=http://127.0.0.1:2380,b=http://127.0.0.1:2381,c=http://127.0.0.1:2382", nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, s := range specs {
		dirs[s.Name] = filepath.Join(dir, s.Name+".etcd")
	}
	src := fixture.Path("v3.6", "snapshot.db")
	p, err := MakePlan(context.Background(), nil, PlanOptions{From: []string{src}, Cluster: specs, MemberDirs: dirs})
	if err != nil {
		t.Fatal(err)
	}
	// writtenBefore applies the plan for the first member, then forgets that its
	// write and check were done, as a run stopped between the rename of
	// the member dir and the record of the step leaves it.
	writtenBefore := func(t *testing.T) {
		if _, err := Apply(context.Background(), nil, p, ApplyOptions{Members: []string{p.Members[0].Name}}); err != nil {
			t.Fatal(err)
		}
		path := statePath(p, p.Members[0])
		st, err := readState(path)
		if err != nil {
			t.Fatal(err)
		}
		st.Steps = slices.DeleteFunc(st.Steps, func(r StepRecord) bool { return r.Name == "write" || r.Name == "check" })
		if err := st.write(path); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		before  func(t *testing.T)
		members []string
		copied  []bool // per member applied, whether its db was copied
		from    int    // the member whose db the copies hold
	}{
		{"one member", nil, []string{"b"}, []bool{false}, 0},
		{"all", nil, nil, []bool{false, true, true}, 0},
		{"the first written by an earlier run", writtenBefore, nil, []bool{false, false, true}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range p.Members {
				os.RemoveAll(m.DataDir)
				os.Remove(statePath(p, m))
			}
			if tc.before != nil {
				tc.before(t)
			}
			res, err := Apply(context.Background(), nil, p, ApplyOptions{Members: tc.members})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Members) != len(tc.copied) {
				t.Fatalf("%d members applied, want %d", len(res.Members), len(tc.copied))
			}
			first, err := os.ReadFile(filepath.Join(p.Members[tc.from].DataDir, "member", "snap", "db"))
			if err != nil && tc.members == nil {
				t.Fatal(err)
			}
			for i, mr := range res.Members {
				var write, check StepRecord
				for _, r := range mr.Steps {
					switch r.Name {
					case "write":
						write = r
					case "check":
						check = r
					}
				}
				if got := strings.HasPrefix(write.Detail, "copied "); got != tc.copied[i] {
					t.Errorf("member %s: write %q, copied %v, want %v", mr.Name, write.Detail, got, tc.copied[i])
				}
				// A copy is checked by its SHA-256 against the checked db.
				if got := strings.Contains(check.Detail, "SHA-256"); got != tc.copied[i] {
					t.Errorf("member %s: check %q, by SHA-256 %v, want %v", mr.Name, check.Detail, got, tc.copied[i])
				}
				m := p.Members[slices.IndexFunc(p.Members, func(m PlanMember) bool { return m.Name == mr.Name })]
				if v := viewDir(t, m.DataDir); schema.FormatID(v.Metadata.NodeID) != m.ID {
					t.Errorf("member %s: WAL of node %x, want %s", m.Name, v.Metadata.NodeID, m.ID)
				}
				if !tc.copied[i] {
					continue
				}
				db, err := os.ReadFile(filepath.Join(m.DataDir, "member", "snap", "db"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(db, first) {
					t.Errorf("member %s: db differs from member %s's", m.Name, p.Members[tc.from].Name)
				}
			}
		})
	}
}

// The plan keeps the keep set that its walk of a snapshot found beside
// itself (KeepSetPath); apply's compacted write then walks the source once,
// and the member passes its check (the plan's HashKV, which comes from the
// source's pairs). Without the file apply walks the source twice, to the
// same check; a file that is not the plan's is refused, and so is a source
// that changed since the plan, which leaves no member dir.
func TestApplyKeepSet(t *testing.T) {
	specs, err := ParseInitialCluster("a=http://127.0.0.1:2380", nil)
	if err != nil {
		t.Fatal(err)
	}
	// plan makes and writes a plan from a copy of the v3.6 snapshot.
	plan := func(t *testing.T) (planPath, src string) {
		dir := t.TempDir()
		src = copyFile(t, fixture.Path("v3.6", "snapshot.db"))
		p, err := MakePlan(context.Background(), nil, PlanOptions{From: []string{src}, Cluster: specs, MemberDirs: map[string]string{"a": filepath.Join(dir, "a.etcd")}})
		if err != nil {
			t.Fatal(err)
		}
		if p.KeepSet == nil || p.KeepSet.DBSHA256 != p.Sources[p.Chosen].Backup.SHA256 || p.KeepSet.Kept == 0 {
			t.Fatalf("keep set %+v, want one of the db %s", p.KeepSet, p.Sources[p.Chosen].Backup.SHA256)
		}
		planPath = filepath.Join(dir, "plan.json")
		if err := WritePlan(p, planPath); err != nil {
			t.Fatal(err)
		}
		return planPath, src
	}
	apply := func(t *testing.T, planPath string) (string, error) {
		p, err := ReadPlan(planPath)
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		_, err = Apply(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), p, ApplyOptions{})
		return logs.String(), err
	}
	t.Run("beside the plan", func(t *testing.T) {
		planPath, _ := plan(t)
		logs, err := apply(t, planPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs, "keep-set=true") {
			t.Errorf("the compacted write did not take the keep set:\n%s", logs)
		}
	})
	t.Run("missing", func(t *testing.T) {
		planPath, _ := plan(t)
		if err := os.Remove(KeepSetPath(planPath)); err != nil {
			t.Fatal(err)
		}
		logs, err := apply(t, planPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs, "keep-set=false") {
			t.Errorf("a keep set without its file:\n%s", logs)
		}
	})
	t.Run("not the plan's", func(t *testing.T) {
		planPath, _ := plan(t)
		b, err := os.ReadFile(KeepSetPath(planPath))
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 1
		if err := os.WriteFile(KeepSetPath(planPath), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPlan(planPath); !errors.Is(err, ErrBadPlan) {
			t.Errorf("ReadPlan: %v, want ErrBadPlan", err)
		}
	})
	t.Run("the source changed", func(t *testing.T) {
		planPath, src := plan(t)
		other, err := os.ReadFile(fixture.Path("v3.5", "snapshot.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(src, other, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := ReadPlan(planPath)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Apply(context.Background(), nil, p, ApplyOptions{})
		if !errors.Is(err, ErrBadPlan) && !errors.Is(err, snapkit.ErrDamaged) {
			t.Errorf("apply from a changed source: %v, want ErrBadPlan or snapkit.ErrDamaged", err)
		}
		t.Logf("refused: %v", err)
		if exists(p.Members[0].DataDir) && datadir.New(p.Members[0].DataDir, "").Exists() {
			t.Errorf("a member dir at %s", p.Members[0].DataDir)
		}
	})
}
