package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// putKeys writes n keys p000.. and returns the last revision.
func putKeys(t *testing.T, cli *clientv3.Client, prefix string, n int) int64 {
	t.Helper()
	var rev int64
	for i := range n {
		r, err := cli.Put(ctxT(t), fmt.Sprintf("%s%03d", prefix, i), "v")
		if err != nil {
			t.Fatal(err)
		}
		rev = r.Header.Revision
	}
	return rev
}

// lastRecord returns the path and offset of the last record of a WAL dir.
func lastRecord(t *testing.T, dir string) (string, int64) {
	t.Helper()
	r, err := walkit.NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	paths := make(map[string]string)
	for _, s := range r.Segments() {
		paths[s.Name] = s.Path
		paths[s.Path] = s.Path
	}
	var last walkit.Position
	for {
		_, pos, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read WAL: %v", err)
		}
		last = pos
	}
	p, ok := paths[last.Segment]
	if !ok {
		p = filepath.Join(dir, filepath.Base(last.Segment))
	}
	return p, last.Offset
}

func TestRestartRepairsTornWALTail(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	putKeys(t, c.client(), "t", 20)
	c.stop(0)

	// Tear the last record: its length field stays, its bytes become zeros,
	// as after a crash in the middle of a write.
	path, off := lastRecord(t, c.cfgs[0].Layout().WALDir())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lf [8]byte
	if _, err := f.ReadAt(lf[:], off); err != nil {
		t.Fatal(err)
	}
	n := int64(binary.LittleEndian.Uint64(lf[:]) & 0x00FFFFFFFFFFFFFF)
	if _, err := f.WriteAt(make([]byte, n), off+8); err != nil {
		t.Fatal(err)
	}
	f.Close()

	c.start(0)
	c.waitLeader()
	cli := c.client()
	g, err := cli.Get(ctxT(t), "t", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if g.Count < 19 {
		t.Fatalf("after repair: %d keys, want at least 19", g.Count)
	}
	if _, err := cli.Put(ctxT(t), "after", "repair"); err != nil {
		t.Fatal(err)
	}
	broken, _ := filepath.Glob(filepath.Join(c.cfgs[0].Layout().WALDir(), "*.broken"))
	if len(broken) == 0 {
		t.Fatal("repair kept no .broken copy of the torn segment")
	}
}

func TestDataDirIsReadableByWalkitAndSnapkit(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.SnapshotCount = 10 })
	c.waitLeader()
	rev := putKeys(t, c.client(), "d", 25)
	c.stop(0)
	cfg := c.cfgs[0]

	snaps, err := walkit.ValidSnapshotEntries(nil, cfg.Layout().WALDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) < 2 {
		t.Fatalf("WAL has %d snapshot records, want a snapshot past the initial one", len(snaps))
	}
	at := snaps[len(snaps)-1]
	w, err := walkit.OpenForRead(nil, cfg.Layout().WALDir(), walkit.Snapshot{Index: at.Index, Term: at.Term})
	if err != nil {
		t.Fatal(err)
	}
	md, st, ents, err := w.ReadAll()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := walkit.ParseMetadata(md)
	if err != nil || meta.NodeID != c.cfgs[0].memberIDForTest(t) {
		t.Fatalf("metadata %+v: %v", meta, err)
	}
	if st.Commit < at.Index || (len(ents) > 0 && ents[len(ents)-1].Index != st.Commit) {
		t.Fatalf("hard state %+v, %d entries after snapshot %d", st, len(ents), at.Index)
	}
	rep, err := snapkit.Inspect(context.Background(), cfg.DataDir, snapkit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Revision != rev || rep.Version != StorageVersion || !rep.OK() {
		t.Fatalf("snapkit status: revision %d (want %d) version %q findings %v", rep.Revision, rev, rep.Version, rep.Findings)
	}
}

// memberIDForTest derives the member ID of a config as bootNew does.
func (c Config) memberIDForTest(t *testing.T) uint64 {
	t.Helper()
	ms, _, err := initialMembers(&c)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name == c.Name {
			return m.ID
		}
	}
	t.Fatalf("no member %s", c.Name)
	return 0
}

func TestEtcdctlAgainstLifeboat(t *testing.T) {
	etcdctl := interoptest.Binary(t, "etcdctl")
	c := newTestCluster(t, 3, nil)
	c.waitLeader()
	eps := strings.Join([]string{c.endpoint(0), c.endpoint(1), c.endpoint(2)}, ",")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctxT(t), etcdctl, append([]string{"--endpoints", eps}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"put", "greeting", "hello"}, "OK\n"},
		{[]string{"get", "greeting", "--print-value-only"}, "hello\n"},
		{[]string{"del", "greeting"}, "1\n"},
		{[]string{"auth", "status"}, "Authentication Status: false\nAuthRevision: 1\n"}, // as etcd: a new auth store is at revision 1
	}
	for _, tc := range tests {
		if got := run(tc.args...); got != tc.want {
			t.Fatalf("etcdctl %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	var status []struct {
		Endpoint string
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			}
			Version        string
			Leader         uint64
			RaftIndex      uint64 `json:"raftIndex"`
			StorageVersion string `json:"storageVersion"`
			DBSizeQuota    int64  `json:"dbSizeQuota"`
		}
	}
	if err := json.Unmarshal([]byte(run("endpoint", "status", "-w", "json")), &status); err != nil {
		t.Fatal(err)
	}
	if len(status) != 3 {
		t.Fatalf("status of %d endpoints", len(status))
	}
	for _, s := range status {
		if s.Status.Version != Version || s.Status.Leader == 0 || s.Status.RaftIndex == 0 ||
			s.Status.StorageVersion != StorageVersion || s.Status.DBSizeQuota != DefaultQuotaBackendBytes {
			t.Fatalf("endpoint status %+v", s)
		}
	}
	if out := run("endpoint", "health"); strings.Count(out, "is healthy") != 3 {
		t.Fatalf("endpoint health:\n%s", out)
	}
}

func TestRealEtcdStartsOnLifeboatDataDir(t *testing.T) {
	etcd := interoptest.Binary(t, "etcd")
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.SnapshotCount = 10 })
	c.waitLeader()
	putKeys(t, c.client(), "e", 25)
	c.stop(0)
	cfg := c.cfgs[0]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := startEtcdOn(ctx, t, etcd, cfg)
	cli := c.client(0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		g, err := cli.Get(ctx, "e", clientv3.WithPrefix())
		if err == nil {
			if g.Count != 25 {
				t.Fatalf("etcd sees %d keys, want 25", g.Count)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not serve the lifeboat data dir: %v\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startEtcdOn starts real etcd (the binary etcd) as the member cfg
// describes, on its data dir, until the test ends or ctx does, and returns
// its log.
func startEtcdOn(ctx context.Context, t *testing.T, etcd string, cfg Config) *strings.Builder {
	t.Helper()
	cmd := exec.CommandContext(ctx, etcd,
		"--name", cfg.Name, "--data-dir", cfg.DataDir,
		"--listen-client-urls", cfg.ListenClientURLs[0], "--advertise-client-urls", cfg.AdvertiseClientURLs[0],
		"--listen-peer-urls", cfg.ListenPeerURLs[0], "--initial-advertise-peer-urls", cfg.AdvertisePeerURLs[0],
		"--initial-cluster", formatInitialCluster(cfg.InitialCluster), "--initial-cluster-token", cfg.InitialClusterToken)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return logs
}

// formatInitialCluster renders m as --initial-cluster, sorted by name.
func formatInitialCluster(m map[string][]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		for _, u := range m[n] {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}
