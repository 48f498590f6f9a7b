package cli

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/clustertest"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/internal/syncbuf"
)

// buildBackupd builds cmd/backupd into a temporary directory.
func buildBackupd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "backupd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lifeboat-dev/lifeboat/cmd/backupd").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/backupd: %v\n%s", err, out)
	}
	return bin
}

// Two backupd processes (the built binary) run on one file:// prefix, on
// a 1-second schedule that they agree on: in every slot both wake at once
// and race for the lock, and never do both take a backup of the same slot
// (gocloud's fileblob alone checks IfNotExist within one process only).
func TestTwoProcessesOneFilePrefix(t *testing.T) {
	bin := buildBackupd(t)
	c := clustertest.NewLifeboat(t, 3)
	bucket := "file://" + filepath.Join(t.TempDir(), "bucket")
	const prefix, slots = "shared", 15
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var logs [2]syncbuf.Buffer
	var cmds []*exec.Cmd
	for i := range logs {
		cmd := exec.CommandContext(ctx, bin, "run", "--endpoints", strings.Join(c.Endpoints, ","),
			"--bucket", bucket, "--prefix", prefix, "--schedule", "@every 1s", "--retention", "1h", "--slot-retries", "0")
		cmd.Stdout, cmd.Stderr = &logs[i], &logs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("backupd %d: %v\n%s", i, err, logs[i].String())
			}
		}
	}
	defer stop()

	s, err := store.Open(ctx, bucket, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var l *store.Listing
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if l, err = s.List(ctx); err != nil {
			t.Fatal(err)
		}
		if len(l.Backups) >= slots {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backups after 2 minutes, want %d\n%s\n%s", len(l.Backups), slots, logs[0].String(), logs[1].String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	if l, err = s.List(ctx); err != nil {
		t.Fatal(err)
	}
	bySlot := map[time.Time][]string{}
	for _, b := range l.Backups {
		if b.Manifest.Slot == nil {
			t.Fatalf("backup %s has no slot", b.Manifest.ID)
		}
		bySlot[*b.Manifest.Slot] = append(bySlot[*b.Manifest.Slot], b.Manifest.ID)
	}
	for slot, ids := range bySlot {
		if len(ids) > 1 {
			t.Errorf("slot %s taken %d times: %v", slot.Format(time.RFC3339), len(ids), ids)
		}
	}
	// Both raced: in each slot one of them stood aside.
	for i := range logs {
		if !strings.Contains(logs[i].String(), "backup skipped") {
			t.Errorf("backupd %d never stood aside for the other:\n%s", i, logs[i].String())
		}
	}
	t.Logf("%d backups in %d slots", len(l.Backups), len(bySlot))
}
