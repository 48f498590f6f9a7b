package interoptest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBinaryVersion(t *testing.T) {
	out, err := exec.Command(Binary(t, "etcd"), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("etcd --version: %v\n%s", err, out)
	}
	if want := "etcd Version: " + strings.TrimPrefix(EtcdVersion, "v"); !strings.Contains(string(out), want) {
		t.Fatalf("etcd --version = %q, want it to contain %q", out, want)
	}
}

func TestOracleReadsWALItWrote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	script := `{"metadata":"bWV0YQ==","ops":[{"save":{"hardState":{"term":1,"vote":1,"commit":2},"entries":[{"term":1,"index":1,"type":0},{"term":1,"index":2,"type":0,"data":"eA=="}]}}]}`
	write := exec.Command(Oracle(t, "walwrite"), "--out", dir)
	write.Stdin = strings.NewReader(script)
	if out, err := write.CombinedOutput(); err != nil {
		t.Fatalf("walwrite: %v\n%s", err, out)
	}
	out, err := exec.Command(Oracle(t, "walread"), dir).Output()
	if err != nil {
		t.Fatalf("walread: %v", err)
	}
	var got struct {
		Metadata  string
		HardState struct{ Commit uint64 }
		Entries   []struct {
			Index uint64
			Data  *string
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("walread output %q: %v", out, err)
	}
	if got.Metadata != "bWV0YQ==" || got.HardState.Commit != 2 || len(got.Entries) != 2 ||
		got.Entries[0].Data != nil || got.Entries[1].Data == nil || *got.Entries[1].Data != "eA==" {
		t.Fatalf("walread = %s, want the script's metadata, commit 2 and two entries (nil data, then eA==)", out)
	}
}

func TestThreeMemberClusterSurvivesKillAndRestart(t *testing.T) {
	c := StartEtcd(t, Options{Members: 3, Token: "interoptest", SnapshotCount: 20})
	if len(c.Endpoints()) != 3 || !strings.HasPrefix(c.Endpoints()[0], "127.0.0.1:") {
		t.Fatalf("Endpoints() = %v, want three 127.0.0.1:port", c.Endpoints())
	}
	etcdctl := func(endpoint string, args ...string) string {
		t.Helper()
		// Retried for up to 30s: killing the leader leaves the cluster
		// without one until the next election.
		deadline := time.Now().Add(30 * time.Second)
		for {
			cmd := exec.Command(Binary(t, "etcdctl"), append([]string{"--endpoints", endpoint}, args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err == nil {
				return strings.TrimSpace(string(out))
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcdctl %v: %v\n%s", args, err, stderr.String())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	m3 := c.Members[2]
	if err := m3.Kill(); err != nil {
		t.Fatal(err)
	}
	if m3.Running() {
		t.Fatal("m3 still running after Kill")
	}
	for i := range 30 { // enough to pass --snapshot-count while m3 is down
		etcdctl(c.Endpoints()[0], "put", "k", string(rune('a'+i%26)))
	}
	if err := m3.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m3.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if got := etcdctl(c.Endpoints()[2], "get", "--print-value-only", "k"); got != "d" {
		t.Fatalf("get k from restarted m3 = %q, want %q", got, "d")
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members {
		if _, err := os.Stat(filepath.Join(m.DataDir, "member", "wal")); err != nil {
			t.Errorf("member %s left no WAL: %v", m.Name, err)
		}
	}
}
