package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
)

// LockInfo is the content of <prefix>/backupd.lock.
type LockInfo struct {
	Holder   string    `json:"holder"`
	Purpose  string    `json:"purpose"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Lock is a held lock on the prefix.
type Lock struct {
	s    *Store
	key  string
	info LockInfo
}

// Info is what the lock object says.
func (l *Lock) Info() LockInfo { return l.info }

func (s *Store) lockKey() string { return manifest.PrefixKey(s.prefix, manifest.LockName) }

// Lock takes the prefix's lock for holder, for ttl, with a conditional
// write: of two callers, one gets ErrLocked. A lock past its expiry is
// broken and taken over, and so is one left by the same holder (holders
// must be unique: host and pid). The conditional write is as atomic as the
// store makes it: S3, GCS and Azure check on the server; file:// checks
// within one process only (gocloud's fileblob stats, then renames).
func (s *Store) Lock(ctx context.Context, holder, purpose string, ttl time.Duration) (*Lock, error) {
	key := s.lockKey()
	for attempt := 0; ; attempt++ {
		now := s.Now().UTC()
		info := LockInfo{Holder: holder, Purpose: purpose, Acquired: now, Expires: now.Add(ttl)}
		b, err := json.Marshal(info)
		if err != nil {
			return nil, fmt.Errorf("store: lock: %w", err)
		}
		err = s.WriteAll(ctx, key, b, true)
		if err == nil {
			s.lg.Debug("lock taken", "key", key, "holder", holder, "purpose", purpose, "expires", info.Expires)
			return &Lock{s: s, key: key, info: info}, nil
		}
		if !errors.Is(err, ErrExists) {
			return nil, err
		}
		cur, err := s.readLock(ctx)
		if errors.Is(err, ErrNotFound) && attempt == 0 {
			continue // released meanwhile
		}
		if err != nil {
			return nil, err
		}
		// A lock of the same holder is this process's, left by a release
		// that failed (the store was down): take it over.
		if (now.Before(cur.Expires) && cur.Holder != holder) || attempt > 0 {
			return nil, fmt.Errorf("%w: held by %s for %s since %s, until %s", ErrLocked, cur.Holder, cur.Purpose,
				cur.Acquired.Format(time.RFC3339), cur.Expires.Format(time.RFC3339))
		}
		s.lg.Warn("breaking an expired lock", "key", key, "holder", cur.Holder, "expired", cur.Expires)
		if err := s.Delete(ctx, key); err != nil {
			return nil, err
		}
	}
}

func (s *Store) readLock(ctx context.Context) (LockInfo, error) {
	b, err := s.ReadAll(ctx, s.lockKey())
	if err != nil {
		return LockInfo{}, err
	}
	var info LockInfo
	if err := json.Unmarshal(b, &info); err != nil {
		// An unreadable lock is treated as expired long ago.
		return LockInfo{Holder: "unreadable lock object"}, nil
	}
	return info, nil
}

// ErrLockLost means the lock expired and someone else took it.
var ErrLockLost = errors.New("store: lock lost")

// Refresh extends a held lock by ttl from now.
func (l *Lock) Refresh(ctx context.Context, ttl time.Duration) error {
	if err := l.check(ctx); err != nil {
		return err
	}
	info := l.info
	info.Expires = l.s.Now().UTC().Add(ttl)
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("store: lock: %w", err)
	}
	if err := l.s.WriteAll(ctx, l.key, b, false); err != nil {
		return err
	}
	l.info = info
	return nil
}

// check reports ErrLockLost unless the lock object is still ours.
func (l *Lock) check(ctx context.Context) error {
	cur, err := l.s.readLock(ctx)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s was removed", ErrLockLost, l.key)
	}
	if err != nil {
		return err
	}
	if cur.Holder != l.info.Holder || !cur.Acquired.Equal(l.info.Acquired) {
		return fmt.Errorf("%w: %s is held by %s since %s", ErrLockLost, l.key, cur.Holder, cur.Acquired.Format(time.RFC3339))
	}
	return nil
}

// Release deletes the lock if it is still ours.
func (l *Lock) Release(ctx context.Context) error {
	if err := l.check(ctx); err != nil {
		return err
	}
	return l.s.Delete(ctx, l.key)
}
