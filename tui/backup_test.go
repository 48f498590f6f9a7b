package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// fixedBackups is a BackupSource that returns one state: the panel's own
// judgement (age against the schedule, drill, unreadable bucket) is tested
// with it. The panel over a real backupd bucket is tested in tui/cli.
type fixedBackups struct {
	st  BackupState
	err error
}

func (f fixedBackups) Name() string { return "file:///var/backups/etcd" }
func (f fixedBackups) BackupState(context.Context) (BackupState, error) {
	return f.st, f.err
}

func TestBackupPanel(t *testing.T) {
	now := t0.Add(2 * time.Second)
	good := &Drill{Time: now.Add(-3 * time.Hour), ID: "8e9e05c52164694d/20261201T090000.000Z-r4711", OK: true}
	for _, tc := range []struct {
		name  string
		src   fixedBackups
		stale bool
	}{
		{"fresh", fixedBackups{st: BackupState{
			Newest: &Backup{Time: now.Add(-12 * time.Minute), Revision: 4711, Size: 8 << 20},
			Kept:   24, LastDrill: good, Interval: 2 * time.Hour,
		}}, false},
		// One 2h backup is late: not yet stale.
		{"late", fixedBackups{st: BackupState{
			Newest: &Backup{Time: now.Add(-3*time.Hour - 10*time.Minute), Revision: 4711, Size: 8 << 20},
			Kept:   24, LastDrill: good, Interval: 2 * time.Hour,
		}}, false},
		// Older than twice the interval: stale.
		{"stale", fixedBackups{st: BackupState{
			Newest: &Backup{Time: now.Add(-4*time.Hour - 10*time.Minute), Revision: 4711, Size: 8 << 20},
			Kept:   24, LastDrill: good, Interval: 2 * time.Hour,
		}}, true},
		{"none", fixedBackups{st: BackupState{Interval: 2 * time.Hour}}, true},
		{"drill-failed", fixedBackups{st: BackupState{
			Newest: &Backup{Time: now.Add(-30 * time.Minute), Revision: 99, Size: 20 << 10},
			Kept:   3,
			LastDrill: &Drill{Time: now.Add(-25 * time.Hour), ID: "8e9e05c52164694d/20261130T110000.000Z-r99",
				Err: "restored member did not become healthy"},
			Interval: time.Hour,
		}}, false},
		// Without the schedule the age is shown but not judged.
		{"no-interval", fixedBackups{st: BackupState{
			Newest: &Backup{Time: now.Add(-30 * time.Hour), Revision: 7, Size: 4 << 10}, Kept: 1,
		}}, false},
		{"unreadable", fixedBackups{err: errors.New("list s3://b/etcd: AccessDenied")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Options{Backup: tc.src, Now: func() time.Time { return now }})
			m.Update(m.fetchBackup()())
			b := m.Backup()
			if b == nil || b.Stale != tc.stale || (b.Err != nil) != (tc.src.err != nil) {
				t.Fatalf("panel %+v, want stale %v", b, tc.stale)
			}
			golden(t, "backup-"+tc.name, ansi.Strip(strings.Join(m.backupLines(b), "\n"))+"\n")
		})
	}
}

// "Refresh now" reads the bucket again, and the read scheduled before it
// is dropped, so that reads do not pile up.
func TestBackupRefreshNow(t *testing.T) {
	m := New(Options{Backup: fixedBackups{st: BackupState{Interval: time.Hour}}})
	m.Update(m.fetchBackup()())
	old := m.backupSeq
	press(m, "r")
	if !m.backupFetching {
		t.Fatal("r did not read the bucket")
	}
	m.Update(backupMsg{st: BackupState{Interval: time.Hour}})
	if _, cmd := m.Update(backupTickMsg{old}); cmd != nil {
		t.Fatal("the read scheduled before r still reads")
	}
}
