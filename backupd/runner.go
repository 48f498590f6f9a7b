package backupd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
	"github.com/lifeboat-dev/lifeboat/backupd/retention"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
)

// DefaultLockTTL is how long a lock holds without a refresh; a holder
// refreshes it every third of that while it works.
const DefaultLockTTL = 10 * time.Minute

// DefaultOrphanGrace is how old an orphan must be before prune removes it;
// an upload in progress is never that old.
const DefaultOrphanGrace = 24 * time.Hour

// Runner takes backups and applies retention on a prefix, under the
// prefix's lock, at most one backup per slot whatever the number of
// daemons.
type Runner struct {
	Config  *Config
	Holder  string // this process in the lock and the state
	LockTTL time.Duration
	Policy  retention.Policy
	Grace   time.Duration // for orphans; 0 means DefaultOrphanGrace
	// PruneAfter applies retention after each committed backup (the
	// daemon does; once only when asked).
	PruneAfter bool
}

// Attempt is the outcome of one backup attempt.
type Attempt struct {
	Slot     time.Time
	Start    time.Time
	End      time.Time
	Manifest *manifest.Manifest // nil unless it committed
	// Skipped says why no backup was attempted (another daemon has the
	// slot); Err is then nil.
	Skipped string
	Err     error
	Prune   *PruneReport // the retention pass after it, if one ran
}

func (r *Runner) ttl() time.Duration {
	if r.LockTTL == 0 {
		return DefaultLockTTL
	}
	return r.LockTTL
}

// withLock runs fn holding the prefix's lock, refreshing it meanwhile; fn's
// context ends if the lock is lost.
func (r *Runner) withLock(ctx context.Context, purpose string, fn func(ctx context.Context) error) error {
	lg := r.Config.logger()
	s := r.Config.Store
	lock, err := s.Lock(ctx, r.Holder, purpose, r.ttl())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		t := time.NewTicker(r.ttl() / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := lock.Refresh(ctx, r.ttl()); err != nil && ctx.Err() == nil {
					lg.Error("lock refresh failed; stopping", "error", err)
					if errors.Is(err, store.ErrLockLost) {
						cancel(err)
						return
					}
				}
			}
		}
	}()
	err = fn(ctx)
	if cause := context.Cause(ctx); err != nil && cause != nil && errors.Is(cause, store.ErrLockLost) {
		err = fail(CauseLock, fmt.Errorf("%w (%v)", cause, err))
	}
	cancel(nil)
	<-refreshed
	if rerr := lock.Release(context.WithoutCancel(ctx)); rerr != nil {
		lg.Warn("releasing the lock", "error", rerr)
	}
	return err
}

// Attempt takes the backup of slot (zero for once): under the lock, unless
// the state shows the slot already taken, it records the attempt as
// running, backs up, records the result, and then applies retention
// (which deletes nothing after a failure).
func (r *Runner) Attempt(ctx context.Context, slot time.Time) Attempt {
	cfg := r.Config
	s := cfg.Store
	lg := cfg.logger()
	a := Attempt{Slot: slot, Start: cfg.now().UTC()}
	err := r.withLock(ctx, "backup", func(ctx context.Context) error {
		st, found, err := s.State(ctx)
		if err != nil {
			return fail(CauseStore, err)
		}
		// A slot is taken once it has an attempt, unless it was this
		// holder's own failed attempt, which it may retry.
		ownRetry := st.Slot.Equal(slot) && st.Holder == r.Holder && st.Result != store.ResultOK
		if !slot.IsZero() && found && !st.Slot.IsZero() && !st.Slot.Before(slot) && !ownRetry {
			a.Skipped = fmt.Sprintf("slot %s already taken by %s (%s)", slot.UTC().Format(time.RFC3339), st.Holder, st.Result)
			return nil
		}
		running := store.State{Slot: slot.UTC(), Holder: r.Holder, Start: a.Start, Result: store.ResultRunning}
		if err := s.PutState(ctx, running); err != nil {
			return fail(CauseStore, err)
		}
		a.Manifest, a.Err = Backup(ctx, cfg, slot)
		done := running
		done.End = cfg.now().UTC()
		if a.Err != nil {
			done.Result, done.Cause, done.Error = store.ResultFailed, CauseOf(a.Err), a.Err.Error()
		} else {
			done.Result, done.ID = store.ResultOK, a.Manifest.ID
		}
		if err := s.PutState(context.WithoutCancel(ctx), done); err != nil {
			lg.Error("recording the attempt", "error", err)
		}
		if a.Err != nil || !r.PruneAfter {
			return nil
		}
		a.Prune, err = r.prune(ctx, false)
		if err != nil {
			lg.Error("retention failed", "error", err)
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrLocked) && !slot.IsZero():
		a.Skipped = "another daemon holds the lock: " + err.Error()
	case err != nil:
		a.Err = fail(CauseLock, err)
	}
	a.End = cfg.now().UTC()
	switch {
	case a.Skipped != "":
		lg.Info("backup skipped", "slot", slot, "reason", a.Skipped)
	case a.Err != nil:
		lg.Error("backup failed", "slot", slot, "cause", CauseOf(a.Err), "error", a.Err)
	}
	return a
}

// PruneReport is retention's plan and what was done of it.
type PruneReport struct {
	Policy    retention.Policy     `json:"policy"`
	Paused    string               `json:"paused,omitempty"`
	Decisions []retention.Decision `json:"decisions"`
	Orphans   []OrphanDecision     `json:"orphans"`
	Broken    []store.Broken       `json:"broken,omitempty"`
	DryRun    bool                 `json:"dryRun"`
	Deleted   int                  `json:"deleted"` // backups
	Removed   int                  `json:"removed"` // orphan objects
}

// OrphanDecision says whether an orphan is removed.
type OrphanDecision struct {
	store.Orphan
	Remove bool `json:"remove"`
}

// Prune applies retention under the lock (or only plans it with dryRun,
// without the lock).
func (r *Runner) Prune(ctx context.Context, dryRun bool) (*PruneReport, error) {
	if dryRun {
		return r.prune(ctx, true)
	}
	var rep *PruneReport
	err := r.withLock(ctx, "prune", func(ctx context.Context) (err error) {
		rep, err = r.prune(ctx, false)
		return err
	})
	return rep, err
}

// prune plans retention from the listing and the state and, unless
// dryRun, deletes what the plan deletes. The caller holds the lock.
func (r *Runner) prune(ctx context.Context, dryRun bool) (*PruneReport, error) {
	cfg := r.Config
	s := cfg.Store
	lg := cfg.logger()
	l, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	st, found, err := s.State(ctx)
	if err != nil {
		return nil, err
	}
	now := cfg.now()
	rep := &PruneReport{Policy: r.Policy, DryRun: dryRun, Broken: l.Broken}
	switch {
	case found && st.Result == store.ResultFailed:
		rep.Paused = fmt.Sprintf("the newest backup attempt failed (%s, %s)", st.Cause, st.Start.Format(time.RFC3339))
	case found && st.Result == store.ResultRunning:
		// Under the lock nobody is backing up: the attempt died, or could
		// not record its end (a store outage).
		rep.Paused = fmt.Sprintf("the newest backup attempt (%s, by %s) did not record its end", st.Start.Format(time.RFC3339), st.Holder)
	}
	// Each cluster's backups are planned on their own.
	byCluster := map[uint64][]store.Backup{}
	var clusters []uint64
	for _, b := range l.Backups {
		if byCluster[b.ID.Cluster] == nil {
			clusters = append(clusters, b.ID.Cluster)
		}
		byCluster[b.ID.Cluster] = append(byCluster[b.ID.Cluster], b)
	}
	for _, c := range clusters {
		bs := byCluster[c]
		items := make([]retention.Item, len(bs))
		for i, b := range bs {
			items[i] = retention.Item{ID: b.ID.String(), Time: b.ID.Time}
		}
		ds := retention.Plan(items, now, r.Policy, rep.Paused)
		rep.Decisions = append(rep.Decisions, ds...)
		if dryRun {
			continue
		}
		for i, d := range ds {
			if d.Keep {
				continue
			}
			if err := s.DeleteBackup(ctx, bs[i]); err != nil {
				return rep, fmt.Errorf("backupd: retention: delete %s: %w", d.ID, err)
			}
			rep.Deleted++
			lg.Info("retention deleted backup", "id", d.ID, "reason", d.Reasons[0])
		}
	}
	grace := r.Grace
	if grace == 0 {
		grace = DefaultOrphanGrace
	}
	for _, o := range l.Orphans {
		od := OrphanDecision{Orphan: o, Remove: rep.Paused == "" && now.Sub(o.ModTime) > grace}
		switch {
		case rep.Paused != "":
			od.Reason += "; kept while retention is paused"
		case od.Remove:
			od.Reason += fmt.Sprintf("; older than %s", grace)
		default:
			od.Reason += fmt.Sprintf("; younger than %s, kept", grace)
		}
		rep.Orphans = append(rep.Orphans, od)
		if od.Remove && !dryRun {
			if err := s.Delete(ctx, o.Key); err != nil {
				return rep, fmt.Errorf("backupd: remove orphan: %w", err)
			}
			rep.Removed++
		}
	}
	return rep, nil
}
