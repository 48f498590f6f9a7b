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

// Lock takes the prefix's lock for holder, for ttl, with an exclusive
// create: of two callers, one gets ErrLocked. A lock past its expiry is
// broken and taken over, and so is one left by the same holder (holders
// must be unique: host and pid). The create is as atomic as the store
// makes it: S3, GCS and Azure check a conditional write on the server; a
// file:// store (opened with Open) links a complete temporary file to the
// lock's name, which fails if the name exists, so that two processes never
// both take it (gocloud's fileblob checks IfNotExist within one process
// only: it stats, then renames); mem:// is one process. A bucket given to
// New gets gocloud's conditional write.
func (s *Store) Lock(ctx context.Context, holder, purpose string, ttl time.Duration) (*Lock, error) {
	key := s.lockKey()
	obj := s.lockObject()
	broke := false
	for attempt := 0; attempt < lockAttempts; attempt++ {
		now := s.Now().UTC()
		info := LockInfo{Holder: holder, Purpose: purpose, Acquired: now, Expires: now.Add(ttl)}
		b, err := json.Marshal(info)
		if err != nil {
			return nil, fmt.Errorf("store: lock: %w", err)
		}
		err = obj.create(ctx, b)
		if err == nil {
			s.lg.Debug("lock taken", "key", key, "holder", holder, "purpose", purpose, "expires", info.Expires)
			return &Lock{s: s, key: key, info: info}, nil
		}
		if !errors.Is(err, ErrExists) {
			return nil, err
		}
		raw, cur, err := s.readLock(ctx)
		if errors.Is(err, ErrNotFound) {
			continue // released between the create and the read
		}
		if err != nil {
			return nil, err
		}
		// A lock of the same holder is this process's, left by a release
		// that failed (the store was down): take it over. After breaking
		// one, a lock found again is another holder's.
		if (now.Before(cur.Expires) && cur.Holder != holder) || broke {
			return nil, fmt.Errorf("%w: held by %s for %s since %s, until %s", ErrLocked, cur.Holder, cur.Purpose,
				cur.Acquired.Format(time.RFC3339), cur.Expires.Format(time.RFC3339))
		}
		s.lg.Warn("breaking an expired lock", "key", key, "holder", cur.Holder, "expired", cur.Expires)
		if err := obj.removeIf(ctx, raw); errors.Is(err, errLockChanged) {
			return nil, fmt.Errorf("%w: taken by another holder while breaking the expired lock of %s", ErrLocked, cur.Holder)
		} else if err != nil {
			return nil, err
		}
		broke = true
	}
	return nil, fmt.Errorf("%w: %s was taken and released by others %d times while this holder tried", ErrLocked, key, lockAttempts)
}

// lockAttempts bounds Lock's creates: a lock that others keep taking and
// releasing between its create and its read counts as held.
const lockAttempts = 8

// readLock reads the lock object, as it is and as it says.
func (s *Store) readLock(ctx context.Context) ([]byte, LockInfo, error) {
	b, err := s.lockObject().read(ctx)
	if err != nil {
		return nil, LockInfo{}, err
	}
	var info LockInfo
	if err := json.Unmarshal(b, &info); err != nil {
		// An unreadable lock is treated as expired long ago.
		return b, LockInfo{Holder: "unreadable lock object"}, nil
	}
	return b, info, nil
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
	if err := l.s.lockObject().replace(ctx, b); err != nil {
		return err
	}
	l.info = info
	return nil
}

// check reports ErrLockLost unless the lock object is still ours.
func (l *Lock) check(ctx context.Context) error {
	_, cur, err := l.s.readLock(ctx)
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
	return l.s.lockObject().remove(ctx)
}
