package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/tui"
)

// bucket is the backup panel's source: a backupd store, listed by its
// manifests, and what backupd run records there (store.DaemonInfo): the
// schedule's interval, unless lbtop's --interval overrides it, and the
// last drill.
type bucket struct {
	s        *store.Store
	interval time.Duration // --interval; 0: the recorded one
}

// bucketSource opens the backupd store of --bucket and --prefix.
func bucketSource(ctx context.Context, url, prefix string, interval time.Duration) (*bucket, error) {
	if interval < 0 {
		return nil, fmt.Errorf("--interval %s is negative", interval)
	}
	s, err := store.Open(ctx, url, prefix, nil)
	if err != nil {
		return nil, fmt.Errorf("--bucket: %w", err)
	}
	return &bucket{s: s, interval: interval}, nil
}

// Name is the bucket's URL (without credentials) and the prefix.
func (b *bucket) Name() string {
	if p := b.s.Prefix(); p != "" {
		return b.s.URL() + "  prefix " + p
	}
	return b.s.URL()
}

// BackupState lists the bucket: every backup with a manifest counts, as
// backupd counts them (it writes the manifest last, after checking the
// stored object). The interval and the last drill are the daemon's
// record; without one (no backupd run on the prefix) the interval is
// --interval's and no drill is known.
func (b *bucket) BackupState(ctx context.Context) (tui.BackupState, error) {
	l, err := b.s.List(ctx)
	if err != nil {
		return tui.BackupState{}, err
	}
	info, _, err := b.s.DaemonInfo(ctx)
	if err != nil {
		return tui.BackupState{}, err
	}
	st := tui.BackupState{Kept: len(l.Backups), Interval: b.interval}
	if st.Interval == 0 {
		st.Interval = time.Duration(info.Schedule.Interval)
	}
	if d := info.LastDrill; d != nil {
		st.LastDrill = &tui.Drill{Time: d.End, ID: d.ID, OK: d.OK, Err: d.Error}
	}
	if n := len(l.Backups); n > 0 {
		newest := l.Backups[n-1] // oldest first
		st.Newest = &tui.Backup{Time: newest.ID.Time, Revision: newest.Manifest.Revision, Size: newest.Manifest.Object.Size}
	}
	return st, nil
}

// Close closes the bucket.
func (b *bucket) Close() error { return b.s.Close() }
