package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// snapkit save against a real etcd: the file appears only complete, and
// its status is the member's revision, with a valid trailer, and the same
// numbers as etcdutl's.
func TestSaveFromRealEtcd(t *testing.T) {
	c := interoptest.StartEtcd(t, interoptest.Options{})
	// A running member holds its db: snapkit says so instead of waiting.
	if code, _, stderr := run(t, "status", c.Members[0].DataDir); code != ExitUsage || !strings.Contains(stderr, "is etcd running") {
		t.Errorf("status of a running member's data dir: exit %d, %s", code, stderr)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.ClientURLs, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rev int64
	for i := range 200 {
		resp, err := cli.Put(ctx, fmt.Sprintf("/save-test/k%03d", i), fmt.Sprintf("value %d", i))
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	if _, err := cli.Delete(ctx, "/save-test/k000"); err != nil {
		t.Fatal(err)
	}
	rev++

	path := filepath.Join(t.TempDir(), "saved.db")
	code, out, stderr := run(t, "save", "-w", "json", "--endpoints", c.ClientURLs[0], path)
	if code != ExitOK {
		t.Fatalf("save: exit %d: %s", code, stderr)
	}
	var saved struct {
		Size int64
	}
	if err := json.Unmarshal([]byte(out), &saved); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".part"); !os.IsNotExist(err) {
		t.Errorf("%s.part left behind: %v", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != saved.Size {
		t.Fatalf("saved file: %v, size %d, save said %d", err, fi.Size(), saved.Size)
	}

	code, out, stderr = run(t, "status", "-w", "json", path)
	if code != ExitOK {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if got := st["revision"]; fmt.Sprint(got) != fmt.Sprint(rev) {
		t.Errorf("revision: status %v, etcd answered %d", got, rev)
	}
	if tr, _ := st["trailer"].(map[string]any); tr["present"] != true || tr["valid"] != true {
		t.Errorf("trailer %v, want present and valid", st["trailer"])
	}
	want := etcdutlStatus(t, interoptest.Binary(t, "etcdutl"), path)
	for _, f := range etcdutlFields {
		if fmt.Sprint(st[f]) != fmt.Sprint(want[f]) {
			t.Errorf("%s: snapkit %v, etcdutl %v", f, st[f], want[f])
		}
	}

	// Change the cluster: 20 keys added, 10 removed, 30 changed, and one
	// rewritten with the same value (no difference); save again.
	for i := range 20 {
		mustPut(t, ctx, cli, fmt.Sprintf("/save-test/new%02d", i), "new")
	}
	for i := 1; i <= 10; i++ {
		if _, err := cli.Delete(ctx, fmt.Sprintf("/save-test/k%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 100; i < 130; i++ {
		mustPut(t, ctx, cli, fmt.Sprintf("/save-test/k%03d", i), "changed")
	}
	mustPut(t, ctx, cli, "/save-test/k150", "value 150")
	second := filepath.Join(t.TempDir(), "second.db")
	if code, _, stderr := run(t, "save", "--endpoints", c.ClientURLs[0], second); code != ExitOK {
		t.Fatalf("save: exit %d: %s", code, stderr)
	}

	// get --prefix equals etcd's answer, now and at the first snapshot's revision.
	for _, tc := range []struct {
		file string
		rev  int64
	}{{second, 0}, {path, rev}, {second, rev}} {
		var opts []clientv3.OpOption
		argv := []string{"get", "-w", "json", "--prefix", tc.file, "/save-test/"}
		if tc.rev != 0 {
			opts = append(opts, clientv3.WithRev(tc.rev))
			argv = append(argv, "--rev", fmt.Sprint(tc.rev))
		}
		live, err := cli.Get(ctx, "/save-test/", append(opts, clientv3.WithPrefix())...)
		if err != nil {
			t.Fatal(err)
		}
		code, out, stderr := run(t, argv...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d: %s", argv, code, stderr)
		}
		var got struct {
			Count int
			KVs   []struct {
				Key, Value string
				Create     int64 `json:"create_revision"`
				Mod        int64 `json:"mod_revision"`
				Ver        int64 `json:"version"`
			}
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if got.Count != len(live.Kvs) || len(got.KVs) != len(live.Kvs) {
			t.Fatalf("%v: %d keys, etcd has %d", argv, got.Count, len(live.Kvs))
		}
		for i, kv := range live.Kvs {
			g := got.KVs[i]
			if g.Key != string(kv.Key) || g.Value != string(kv.Value) || g.Create != kv.CreateRevision || g.Mod != kv.ModRevision || g.Ver != kv.Version {
				t.Errorf("%v: key %d: %+v, etcd %+v", argv, i, g, kv)
			}
		}
	}

	// get -w simple and -w fields print what etcdctl's print, less the
	// response header's cluster, member and raft term, which a file lacks.
	etcdctl := interoptest.Binary(t, "etcdctl")
	for _, format := range []string{"simple", "fields"} {
		want, err := exec.Command(etcdctl, "--endpoints", c.ClientURLs[0], "get", "--prefix", "/save-test/k1", "-w", format).Output()
		if err != nil {
			t.Fatalf("etcdctl get -w %s: %v", format, err)
		}
		var lines []string
		for _, l := range strings.SplitAfter(string(want), "\n") {
			if !strings.HasPrefix(l, `"ClusterID"`) && !strings.HasPrefix(l, `"MemberID"`) && !strings.HasPrefix(l, `"RaftTerm"`) {
				lines = append(lines, l)
			}
		}
		code, out, stderr := run(t, "get", "-w", format, "--prefix", second, "/save-test/k1")
		if code != ExitOK || out != strings.Join(lines, "") {
			t.Errorf("get -w %s: exit %d (%s)\n%s\netcdctl printed\n%s", format, code, stderr, out, want)
		}
	}

	// diff counts exactly the changes made.
	code, out, _ = run(t, "diff", "-w", "json", path, second)
	var d struct{ Added, Removed, Changed int }
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if code != ExitFinding || d.Added != 20 || d.Removed != 10 || d.Changed != 30 {
		t.Errorf("diff: exit %d, %+v; want exit 1 with 20 added, 10 removed, 30 changed", code, d)
	}

	// hashkv of the file equals the member's own answer at that revision.
	head, err := cli.Get(ctx, "/save-test/k199")
	if err != nil {
		t.Fatal(err)
	}
	liveHash, err := cli.HashKV(ctx, c.ClientURLs[0], head.Header.Revision)
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr = run(t, "hashkv", "-w", "json", second)
	if code != ExitOK {
		t.Fatalf("hashkv: exit %d: %s", code, stderr)
	}
	var hk struct {
		Hash     uint32 `json:"hash"`
		Revision int64  `json:"hashRevision"`
	}
	if err := json.Unmarshal([]byte(out), &hk); err != nil {
		t.Fatal(err)
	}
	if hk.Hash != liveHash.Hash || hk.Revision != head.Header.Revision {
		t.Errorf("hashkv %+v, member answered %d at %d", hk, liveHash.Hash, head.Header.Revision)
	}

	// The legacy Maintenance.Hash of the file equals the member's, with no
	// write in between.
	live, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Hash(ctx, &pb.HashRequest{})
	if err != nil {
		t.Fatal(err)
	}
	third := filepath.Join(t.TempDir(), "third.db")
	if code, _, stderr := run(t, "save", "--endpoints", c.ClientURLs[0], third); code != ExitOK {
		t.Fatalf("save: exit %d: %s", code, stderr)
	}
	db, err := snapkit.OpenDB(ctx, third, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got uint32
	if err := db.View(func(tx *bolt.Tx) error { got, err = snapkit.Hash(tx); return err }); err != nil {
		t.Fatal(err)
	}
	if got != live.Hash {
		t.Errorf("Hash %d, member answered %d", got, live.Hash)
	}
}

func mustPut(t *testing.T, ctx context.Context, cli *clientv3.Client, k, v string) {
	t.Helper()
	if _, err := cli.Put(ctx, k, v); err != nil {
		t.Fatal(err)
	}
}
