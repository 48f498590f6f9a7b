// Package restoresource is a backupd bucket as a restore.Source: it lists
// the committed backups (a manifest that parses) and fetches one, verified
// and decrypted by backupd.Fetch, into a local snapshot file with its
// trailer. It imports both backupd and restore, so that restore never
// imports backupd; cmd/restore wires Open into restore/cli.Options.
package restoresource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/restore"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// Source is a bucket's backups under a prefix.
type Source struct {
	st      *store.Store
	ids     []age.Identity
	dir     string
	tempDir bool // dir is ours: Close removes it, a release its file
	lg      *slog.Logger
	listing *store.Listing
}

// Open opens the bucket at url (any gocloud URL backupd takes) as a
// restore.Source; it has the type of a restore.BucketOpener once o is
// bound.
func Open(ctx context.Context, lg *slog.Logger, url string, o restore.BucketOptions) (restore.Source, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ids, err := codec.ParseIdentityFiles(o.IdentityFiles)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", restore.ErrUsage, err)
	}
	st, err := store.Open(ctx, url, o.Prefix, lg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", restore.ErrUsage, err)
	}
	s := &Source{st: st, ids: ids, dir: o.Dir, lg: lg}
	if s.dir == "" {
		s.dir, err = os.MkdirTemp("", "restore-fetch-*")
		s.tempDir = true
	} else {
		err = os.MkdirAll(s.dir, 0o700)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("restoresource: %w", err)
	}
	return s, nil
}

// Opener binds o: the restore.BucketOpener of restore.PlanOptions.
func Opener(o restore.BucketOptions) restore.BucketOpener {
	return func(ctx context.Context, lg *slog.Logger, url string) (restore.Source, error) {
		return Open(ctx, lg, url, o)
	}
}

func (s *Source) String() string {
	if p := s.st.Prefix(); p != "" {
		return "bucket " + s.st.URL() + " prefix " + p
	}
	return "bucket " + s.st.URL()
}

// Close closes the bucket and removes a temporary fetch dir.
func (s *Source) Close() error {
	err := s.st.Close()
	s.removeTemp()
	return err
}

func (s *Source) removeTemp() {
	if s.tempDir {
		if err := os.RemoveAll(s.dir); err != nil {
			s.lg.Warn("removing the fetch dir", "dir", s.dir, "error", err)
		}
	}
}

func (s *Source) list(ctx context.Context) (*store.Listing, error) {
	if s.listing == nil {
		l, err := s.st.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("restoresource: %s: %w", s, err)
		}
		s.listing = l
	}
	return s.listing, nil
}

// find resolves an ID of List, a backup name, or "latest".
func (s *Source) find(ctx context.Context, ref string) (store.Backup, error) {
	l, err := s.list(ctx)
	if err != nil {
		return store.Backup{}, err
	}
	b, err := l.Find(ref)
	if errors.Is(err, store.ErrNoBackup) {
		return b, fmt.Errorf("%w: %s: %w", restore.ErrUsage, s, err)
	}
	return b, err
}

// entry is what the manifest says of a backup, without reading it.
func entry(b store.Backup, location string) restore.Backup {
	m := b.Manifest
	return restore.Backup{ID: m.ID, Kind: string(snapkit.KindSnapshot), Location: location, Time: m.End,
		Size: m.DBSize + snapkit.TrailerSize, Revision: m.Revision, CompactRevision: m.CompactRevision,
		ConsistentIndex: m.RaftIndex, Term: m.RaftTerm, ClusterID: m.ClusterID, SHA256: m.DBSHA256}
}

// List returns the committed backups, oldest first, as their manifests
// describe them; Location is the stored object's key.
func (s *Source) List(ctx context.Context) ([]restore.Backup, error) {
	l, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]restore.Backup, 0, len(l.Backups))
	for _, b := range l.Backups {
		out = append(out, entry(b, b.Manifest.Object.Key))
	}
	return out, nil
}

// fetch leaves the backup verified in the fetch dir, once.
func (s *Source) fetch(ctx context.Context, b store.Backup) (string, error) {
	path := filepath.Join(s.dir, strings.ReplaceAll(b.Manifest.ID, "/", "-")+".db")
	if _, err := os.Stat(path); err == nil {
		return path, nil // Fetch leaves a file only once every check passed
	}
	_, err := backupd.Fetch(ctx, s.st, b, backupd.ReadOptions{Identities: s.ids, SpoolDir: s.dir, Logger: s.lg}, path)
	switch {
	case errors.Is(err, codec.ErrIdentity):
		return "", fmt.Errorf("%w: fetch %s: %w (--identity)", restore.ErrUsage, b.Manifest.ID, err)
	case err != nil:
		return "", fmt.Errorf("restoresource: fetch %s: %w", b.Manifest.ID, err)
	}
	return path, nil
}

// Describe fetches the backup (checked against its manifest) and reads it
// with snapkit, as a snapshot file is read; ClusterID is the manifest's.
func (s *Source) Describe(ctx context.Context, id string) (*restore.Backup, error) {
	b, err := s.find(ctx, id)
	if err != nil {
		return nil, err
	}
	path, err := s.fetch(ctx, b)
	if err != nil {
		return nil, err
	}
	d := entry(b, path)
	if err := restore.DescribeDB(ctx, s.lg, &d, path); err != nil {
		return nil, err
	}
	return &d, nil
}

// Open fetches the backup and gives its local snapshot file; release
// removes it unless the fetch dir was given.
func (s *Source) Open(ctx context.Context, id string) (string, func() error, error) {
	b, err := s.find(ctx, id)
	if err != nil {
		return "", nil, err
	}
	path, err := s.fetch(ctx, b)
	if err != nil {
		return "", nil, err
	}
	release := func() error { return nil }
	if s.tempDir {
		release = func() error { return os.Remove(path) }
	}
	return path, release, nil
}
