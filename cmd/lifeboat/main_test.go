package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd"
	backupdcli "github.com/lifeboat-dev/lifeboat/backupd/cli"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/internal/freeport"
	"github.com/lifeboat-dev/lifeboat/internal/syncbuf"
	"github.com/lifeboat-dev/lifeboat/server/cli"
)

func joinPorts(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// `lifeboat demo`, as main wires it, runs a backupd beside its cluster
// into file://<data-dir>/backups: a verified backup appears there, and the
// command it prints lists it. With --no-backup there is none.
func TestDemoTakesBackups(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  []string
		backup bool
	}{
		{"backups", []string{"--backup-schedule", "@every 2s"}, true},
		{"--no-backup", []string{"--no-backup"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports, err := freeport.Pick(6)
			if err != nil {
				t.Fatal(err)
			}
			dataDir := filepath.Join(t.TempDir(), "lifeboat-demo")
			bucket := "file://" + filepath.Join(dataDir, "backups")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dctx, stop := context.WithCancel(ctx)
			var stdout, stderr syncbuf.Buffer
			root := cli.NewRootCommand(&stdout, &stderr, cli.Options{DemoBackup: demoBackup})
			root.SetArgs(append([]string{"demo", "--data-dir", dataDir, "--client-ports", joinPorts(ports[:3]), "--peer-ports", joinPorts(ports[3:])}, tc.flags...))
			done := make(chan error, 1)
			go func() { done <- root.ExecuteContext(dctx) }()
			stopped := false
			stopDemo := func() {
				if stopped {
					return
				}
				stopped = true
				stop()
				if err := <-done; err != nil {
					t.Errorf("demo: %v\n%s", err, stderr.String())
				}
			}
			defer stopDemo()
			for deadline := time.Now().Add(time.Minute); !strings.Contains(stdout.String(), "Ctrl-C stops the cluster"); {
				if time.Now().After(deadline) {
					t.Fatalf("demo not running after a minute:\n%s\n%s", stdout.String(), stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			hint := "go run ./cmd/backupd list --bucket " + bucket + "\n"
			if strings.Contains(stdout.String(), hint) != tc.backup {
				t.Fatalf("demo's output says %q: %v, want %v:\n%s", hint, !tc.backup, tc.backup, stdout.String())
			}
			if !tc.backup {
				stopDemo()
				if _, err := os.Stat(filepath.Join(dataDir, "backups")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("--no-backup made %s: %v", filepath.Join(dataDir, "backups"), err)
				}
				return
			}

			s, err := store.Open(ctx, bucket, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var l *store.Listing
			for deadline := time.Now().Add(time.Minute); ; {
				if l, err = s.List(ctx); err != nil {
					t.Fatal(err)
				}
				if len(l.Backups) > 0 {
					break
				}
				if time.Now().After(deadline) {
					log, _ := os.ReadFile(filepath.Join(dataDir, "backupd.log"))
					t.Fatalf("no backup in %s after a minute; backupd.log:\n%s", bucket, log)
				}
				time.Sleep(100 * time.Millisecond)
			}
			b := l.Backups[0]
			rep, err := backupd.Verify(ctx, s, b, backupd.ReadOptions{SpoolDir: t.TempDir()})
			if err != nil || !rep.OK {
				t.Fatalf("verify %s: %v %+v", b.Manifest.ID, err, rep)
			}
			if b.Manifest.Slot == nil || b.Manifest.Slot.UnixNano()%int64(2*time.Second) != 0 {
				t.Errorf("backup %s: slot %v is not on --backup-schedule's 2s grid", b.Manifest.ID, b.Manifest.Slot)
			}
			// The command the demo prints.
			var out, errb bytes.Buffer
			if code := backupdcli.Run(ctx, []string{"list", "--bucket", bucket}, &out, &errb, func(string) string { return "" }, backupdcli.Options{}); code != 0 ||
				!strings.Contains(out.String(), b.Manifest.ID) || !strings.Contains(out.String(), "schedule @every 2s") {
				t.Errorf("backupd list: exit %d\n%s%s", code, out.String(), errb.String())
			}
		})
	}
}
