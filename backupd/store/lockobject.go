package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// lockObject is where the prefix's lock lives: an object of the bucket, or
// for a file:// store a file that is created exclusively.
type lockObject interface {
	// create writes b if there is no lock; ErrExists if there is.
	create(ctx context.Context, b []byte) error
	// read returns the lock; ErrNotFound if there is none.
	read(ctx context.Context) ([]byte, error)
	// replace writes b over the lock (its holder refreshing it).
	replace(ctx context.Context, b []byte) error
	// removeIf removes the lock if it still is old (an expired lock
	// being broken); errLockChanged if another holder wrote it since.
	removeIf(ctx context.Context, old []byte) error
	// remove removes the lock; none is not an error.
	remove(ctx context.Context) error
}

// errLockChanged means the lock was not the one judged expired.
var errLockChanged = errors.New("store: the lock changed")

func (s *Store) lockObject() lockObject {
	if s.lockDir != "" {
		return fileLock(filepath.Join(s.lockDir, filepath.FromSlash(s.lockKey())))
	}
	return blobLock{s}
}

// blobLock is the lock as an object, created with a conditional write
// (IfNotExist), which S3, GCS and Azure check on the server. Breaking an
// expired lock reads it, then deletes it: two breakers at once could both
// delete, and the later delete remove the lock the earlier breaker took.
type blobLock struct{ s *Store }

func (l blobLock) create(ctx context.Context, b []byte) error {
	return l.s.WriteAll(ctx, l.s.lockKey(), b, true)
}
func (l blobLock) read(ctx context.Context) ([]byte, error) { return l.s.ReadAll(ctx, l.s.lockKey()) }
func (l blobLock) replace(ctx context.Context, b []byte) error {
	return l.s.WriteAll(ctx, l.s.lockKey(), b, false)
}
func (l blobLock) remove(ctx context.Context) error { return l.s.Delete(ctx, l.s.lockKey()) }

func (l blobLock) removeIf(ctx context.Context, old []byte) error {
	cur, err := l.read(ctx)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, old) {
		return errLockChanged
	}
	return l.remove(ctx)
}

// fileLock is the lock of a file:// store, at the path of its key in the
// bucket's directory, made safe between processes on one host (or on a
// file system whose link and rename are atomic): gocloud's fileblob
// checks IfNotExist under a mutex of its process only, then renames, so
// two processes could both take the lock. A lock is created by linking a
// complete temporary file to the lock's name, which fails if the name
// exists; a reader never sees a partial lock, as it could after an
// O_EXCL create and a write. It is broken by renaming it aside first:
// of two breakers one moves it, and a lock moved that is not the expired
// one is linked back.
type fileLock string

func (l fileLock) path() string { return string(l) }

func (l fileLock) wrap(op string, err error) error {
	return fmt.Errorf("store: lock %s: %s: %w", l.path(), op, err)
}

// temp writes b to a new file beside the lock and returns its name.
func (l fileLock) temp(b []byte) (string, error) {
	dir := filepath.Dir(l.path())
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", l.wrap("create its directory", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(l.path())+".*.tmp")
	if err != nil {
		return "", l.wrap("create a temporary file", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", l.wrap("write "+f.Name(), err)
	}
	return f.Name(), nil
}

func (l fileLock) create(_ context.Context, b []byte) error {
	tmp, err := l.temp(b)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, l.path())
	if errors.Is(err, fs.ErrExist) {
		return l.wrap("create", errors.Join(ErrExists, err))
	}
	if err != nil {
		return l.wrap("create", err)
	}
	return nil
}

func (l fileLock) read(context.Context) ([]byte, error) {
	b, err := os.ReadFile(l.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, l.wrap("read", errors.Join(ErrNotFound, err))
	}
	if err != nil {
		return nil, l.wrap("read", err)
	}
	return b, nil
}

func (l fileLock) replace(_ context.Context, b []byte) error {
	tmp, err := l.temp(b)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, l.path()); err != nil {
		os.Remove(tmp)
		return l.wrap("replace", err)
	}
	return nil
}

func (l fileLock) remove(context.Context) error {
	if err := os.Remove(l.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l.wrap("remove", err)
	}
	return nil
}

func (l fileLock) removeIf(_ context.Context, old []byte) error {
	aside, err := l.temp(nil) // a name of our own, which the rename replaces
	if err != nil {
		return err
	}
	defer os.Remove(aside)
	err = os.Rename(l.path(), aside)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // another breaker moved it
	}
	if err != nil {
		return l.wrap("move aside", err)
	}
	moved, err := os.ReadFile(aside)
	if err != nil {
		return l.wrap("read "+aside, err)
	}
	if bytes.Equal(moved, old) {
		return nil
	}
	// Another holder took the lock between our read and our rename: put
	// its lock back. Should a third have created one meanwhile, the one
	// moved is lost, and its holder learns it at its next refresh
	// (ErrLockLost).
	if err := os.Link(aside, l.path()); err != nil && !errors.Is(err, fs.ErrExist) {
		return l.wrap("put back", err)
	}
	return errLockChanged
}
