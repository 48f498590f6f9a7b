package tui

import (
	"context"
	"time"
)

// BackupSource reads the state of a backupd bucket for the backup panel.
type BackupSource interface {
	// Name is what the panel calls the bucket (its URL).
	Name() string
	// BackupState lists the bucket. It is called every BackupRefresh and on
	// "refresh now", never concurrently.
	BackupState(ctx context.Context) (BackupState, error)
}

// BackupState is what a bucket holds, as the panel needs it.
type BackupState struct {
	// Newest is the newest verified backup; nil if there is none.
	Newest *Backup
	// Kept is the number of backups kept in the bucket.
	Kept int
	// LastDrill is the last restore drill; nil if none is recorded.
	LastDrill *Drill
	// Interval is the schedule: a backup is due every Interval; 0 if
	// unknown, and then only a missing backup is stale.
	Interval time.Duration
}

// Backup is one verified backup.
type Backup struct {
	Time     time.Time // when the snapshot was taken
	Revision int64
	Size     int64
}

// Drill is the outcome of a restore drill.
type Drill struct {
	Time time.Time // when it ended
	ID   string    // the backup it restored; empty if it found none
	OK   bool
	Err  string // why it failed
}

// BackupView is the backup panel as a report.
type BackupView struct {
	Name     string
	Err      error // the bucket could not be read
	Newest   *Backup
	Age      time.Duration // of Newest
	Kept     int
	Interval time.Duration
	// Stale is true when there is no verified backup, or the newest is
	// older than twice the interval (if the interval is known), as
	// backupd's /healthz and its BackupdNoRecentBackup alert judge it.
	Stale     bool
	LastDrill *Drill
	DrillAge  time.Duration
}

// backupView judges st at now.
func backupView(name string, st *BackupState, err error, now time.Time) *BackupView {
	v := &BackupView{Name: name, Err: err}
	if st == nil {
		return v
	}
	v.Newest, v.Kept, v.Interval, v.LastDrill = st.Newest, st.Kept, st.Interval, st.LastDrill
	if st.Newest == nil {
		v.Stale = true
	} else {
		v.Age = now.Sub(st.Newest.Time)
		v.Stale = st.Interval > 0 && v.Age > 2*st.Interval
	}
	if st.LastDrill != nil {
		v.DrillAge = now.Sub(st.LastDrill.Time)
	}
	return v
}
