package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	_ "gocloud.dev/blob/fileblob"  // file://
	_ "gocloud.dev/blob/gcsblob"   // gs://
	_ "gocloud.dev/blob/memblob"   // mem://
	_ "gocloud.dev/blob/s3blob"    // s3://
	"gocloud.dev/gcerrors"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/backoff"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
)

// Sentinel errors; test them with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrLocked   = errors.New("store: prefix is locked by another backupd")
	// ErrChecksum means the store holds other bytes than were sent.
	ErrChecksum = errors.New("store: stored object does not match what was uploaded")
)

// Store is a bucket and a prefix.
type Store struct {
	bucket *blob.Bucket
	url    string
	prefix string
	lg     *slog.Logger
	// Retry bounds the retries of every call but a streamed upload.
	Retry backoff.Policy
	// Now is the clock for the lock's expiry and the orphans' grace.
	Now func() time.Time
	// lockDir is the directory of a file:// bucket, where the lock is
	// created exclusively (fileLock); empty for other buckets.
	lockDir string
}

// Open opens the bucket at a gocloud URL. A file:// directory is created if
// it does not exist, and its lock is safe between processes (see Lock).
func Open(ctx context.Context, bucketURL, prefix string, lg *slog.Logger) (*Store, error) {
	u, err := url.Parse(bucketURL)
	if err != nil {
		return nil, fmt.Errorf("store: bucket URL %q: %w", bucketURL, err)
	}
	var dir string
	if u.Scheme == "file" {
		q := u.Query()
		if q.Get("create_dir") == "" {
			q.Set("create_dir", "true")
			u.RawQuery = q.Encode()
		}
		// The directory fileblob opens: a host of "." is a relative path.
		dir = u.Path
		if u.Host == "." || os.PathSeparator != '/' {
			dir = strings.TrimPrefix(dir, "/")
		}
		if dir, err = filepath.Abs(filepath.FromSlash(dir)); err != nil {
			return nil, fmt.Errorf("store: bucket URL %q: %w", bucketURL, err)
		}
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", bucketURL, err)
	}
	s := New(b, redact(u), prefix, lg)
	s.lockDir = dir
	return s, nil
}

// New wraps an open bucket; url names it in logs and errors.
func New(b *blob.Bucket, url, prefix string, lg *slog.Logger) *Store {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Store{bucket: b, url: url, prefix: strings.Trim(prefix, "/"), lg: lg, Retry: backoff.Default, Now: time.Now}
}

// redact drops credentials from a URL for logs.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// URL is the bucket's URL without credentials.
func (s *Store) URL() string { return s.url }

// Prefix is the prefix, without leading or trailing slashes.
func (s *Store) Prefix() string { return s.prefix }

// Bucket is the underlying bucket.
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// Close closes the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// wrap names the key in err and maps gocloud's codes to the sentinels.
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		err = errors.Join(ErrNotFound, err)
	case gcerrors.FailedPrecondition:
		err = errors.Join(ErrExists, err)
	}
	return fmt.Errorf("store: %s %s in %s: %w", op, key, s.url, err)
}

// retryable says whether a failed call may succeed if made again.
func retryable(err error) bool {
	switch gcerrors.Code(err) {
	case gcerrors.NotFound, gcerrors.FailedPrecondition, gcerrors.InvalidArgument,
		gcerrors.PermissionDenied, gcerrors.Unimplemented, gcerrors.AlreadyExists, gcerrors.Canceled:
		return false
	}
	return !errors.Is(err, context.Canceled)
}

// do runs one store call with retries.
func (s *Store) do(ctx context.Context, op, key string, fn func(ctx context.Context) error) error {
	err := s.Retry.Do(ctx, func(ctx context.Context) error {
		err := fn(ctx)
		if err != nil && !retryable(err) {
			return backoff.Permanent(err)
		}
		return err
	}, func(attempt int, err error, wait time.Duration) {
		s.lg.Warn("store call failed, retrying", "op", op, "key", key, "attempt", attempt, "wait", wait, "error", err)
	})
	return s.wrap(op, key, err)
}

// ReadAll reads a small object.
func (s *Store) ReadAll(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := s.do(ctx, "read", key, func(ctx context.Context) (err error) {
		b, err = s.bucket.ReadAll(ctx, key)
		return err
	})
	return b, err
}

// WriteAll writes a small object with its Content-MD5; ifNotExist makes
// the write conditional (ErrExists if the key exists).
func (s *Store) WriteAll(ctx context.Context, key string, p []byte, ifNotExist bool) error {
	sum := md5.Sum(p)
	return s.do(ctx, "write", key, func(ctx context.Context) error {
		return s.bucket.WriteAll(ctx, key, p, &blob.WriterOptions{
			ContentType: "application/json", ContentMD5: sum[:], IfNotExist: ifNotExist,
		})
	})
}

// Delete deletes a key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.do(ctx, "delete", key, func(ctx context.Context) error { return s.bucket.Delete(ctx, key) })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Attributes returns an object's attributes.
func (s *Store) Attributes(ctx context.Context, key string) (*blob.Attributes, error) {
	var a *blob.Attributes
	err := s.do(ctx, "stat", key, func(ctx context.Context) (err error) {
		a, err = s.bucket.Attributes(ctx, key)
		return err
	})
	return a, err
}

// Copy copies src to dst within the bucket (server-side where the store
// offers it).
func (s *Store) Copy(ctx context.Context, dst, src string) error {
	return s.do(ctx, "copy "+src+" to", dst, func(ctx context.Context) error { return s.bucket.Copy(ctx, dst, src, nil) })
}

// NewWriter starts a streamed upload. It is not retried: a failure fails the
// backup. Cancel ctx to abort it; Close commits it.
func (s *Store) NewWriter(ctx context.Context, key string) (*blob.Writer, error) {
	w, err := s.bucket.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType: "application/octet-stream", DisableContentTypeDetection: true,
		BufferSize: 8 << 20,
	})
	return w, s.wrap("upload", key, err)
}

// NewReader streams an object.
func (s *Store) NewReader(ctx context.Context, key string) (*blob.Reader, error) {
	var r *blob.Reader
	err := s.do(ctx, "open", key, func(ctx context.Context) (err error) {
		r, err = s.bucket.NewReader(ctx, key, nil)
		return err
	})
	return r, err
}

// Uploaded is what the uploader computed over the bytes it sent; MD5 is
// nil where the store's own MD5 is computed in process (MD5InProcess).
type Uploaded struct {
	Size   int64
	MD5    []byte
	SHA256 []byte
}

// MD5InProcess reports whether the store's MD5 of an object is computed in
// this process over the very writes of the upload (gocloud's fileblob for
// file:// and memblob for mem://): comparing it with an MD5 of the
// uploader's proves nothing, so the uploader need not compute one. S3,
// GCS and Azure compute theirs on the server, over what they received.
func (s *Store) MD5InProcess() bool {
	return strings.HasPrefix(s.url, "file://") || strings.HasPrefix(s.url, "mem://")
}

// CheckStored compares an object's size, and its MD5 where the store keeps
// one and the upload has one, with what was uploaded. It returns the
// store's MD5 (nil if it keeps none).
func (s *Store) CheckStored(ctx context.Context, key string, up Uploaded) ([]byte, error) {
	a, err := s.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	if a.Size != up.Size {
		return nil, fmt.Errorf("%w: %s: %d bytes stored, %d uploaded", ErrChecksum, key, a.Size, up.Size)
	}
	if len(a.MD5) > 0 && len(up.MD5) > 0 && !bytes.Equal(a.MD5, up.MD5) {
		return nil, fmt.Errorf("%w: %s: store's MD5 %x, uploaded %x", ErrChecksum, key, a.MD5, up.MD5)
	}
	return a.MD5, nil
}

// Object is a listed key.
type Object struct {
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
}

// Backup is a committed backup: a manifest that parses, and the objects of
// its directory.
type Backup struct {
	ID       manifest.ID
	Manifest *manifest.Manifest
	Objects  []Object
}

// Orphan is an object of no committed backup.
type Orphan struct {
	Object
	Reason string `json:"reason"`
}

// Broken is a backup directory whose manifest does not parse. It is never
// counted and never deleted by backupd: it may come from a newer version.
type Broken struct {
	Dir     string   `json:"dir"`
	Error   string   `json:"error"`
	Objects []Object `json:"objects"`
}

// Listing is everything backupd finds under the prefix.
type Listing struct {
	Backups []Backup // oldest first
	Orphans []Orphan
	Broken  []Broken
}

// List reads every key under the prefix and the manifest of every backup
// directory. It never counts a directory without a manifest.
func (s *Store) List(ctx context.Context) (*Listing, error) {
	type dir struct {
		id      manifest.ID
		objects []Object
		hasMan  bool
	}
	var (
		dirs  []*dir
		byKey = map[string]*dir{}
		l     = &Listing{}
	)
	listPrefix := ""
	if s.prefix != "" {
		listPrefix = s.prefix + "/"
	}
	err := s.do(ctx, "list", listPrefix, func(ctx context.Context) error {
		dirs, byKey, l.Orphans = nil, map[string]*dir{}, nil
		it := s.bucket.List(&blob.ListOptions{Prefix: listPrefix})
		for {
			o, err := it.Next(ctx)
			if err == io.EOF {
				return nil
			}
			if gcerrors.Code(err) == gcerrors.NotFound {
				// fileblob fails a listing when a file goes while it
				// walks the directory (the lock released, a staging
				// object dropped): list again (%v: not NotFound).
				return fmt.Errorf("a key went during the listing: %v", err)
			}
			if err != nil {
				return err
			}
			if o.IsDir {
				continue
			}
			obj := Object{Key: o.Key, Size: o.Size, ModTime: o.ModTime}
			pk := manifest.ParseKey(s.prefix, o.Key)
			switch pk.Kind {
			case manifest.KindIncoming:
				l.Orphans = append(l.Orphans, Orphan{Object: obj, Reason: "staging object of a backup that did not commit"})
			case manifest.KindBackup:
				d := byKey[pk.ID.String()]
				if d == nil {
					d = &dir{id: pk.ID}
					byKey[pk.ID.String()] = d
					dirs = append(dirs, d)
				}
				d.objects = append(d.objects, obj)
				d.hasMan = d.hasMan || pk.Object == manifest.ManifestName
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if !d.hasMan {
			for _, o := range d.objects {
				l.Orphans = append(l.Orphans, Orphan{Object: o, Reason: "no manifest"})
			}
			continue
		}
		key := d.id.Key(s.prefix, manifest.ManifestName)
		b, err := s.ReadAll(ctx, key)
		if errors.Is(err, ErrNotFound) { // deleted since it was listed
			continue
		}
		if err != nil {
			return nil, err
		}
		m, err := manifest.Parse(s.prefix, key, b)
		if err != nil {
			l.Broken = append(l.Broken, Broken{Dir: d.id.Dir(s.prefix), Error: err.Error(), Objects: d.objects})
			continue
		}
		l.Backups = append(l.Backups, Backup{ID: d.id, Manifest: m, Objects: d.objects})
	}
	sortBackups(l.Backups)
	return l, nil
}

// ErrNoBackup means a reference names no committed backup.
var ErrNoBackup = errors.New("store: no such backup")

// Find resolves "latest" (the newest backup), a full ID
// ("<cluster>/<time>-r<rev>") or a unique "<time>-r<rev>".
func (l *Listing) Find(ref string) (Backup, error) {
	if len(l.Backups) == 0 {
		return Backup{}, fmt.Errorf("%w: %s: the prefix holds no backup", ErrNoBackup, ref)
	}
	if ref == "latest" {
		newest := l.Backups[0]
		for _, b := range l.Backups[1:] {
			if b.ID.Time.After(newest.ID.Time) {
				newest = b
			}
		}
		return newest, nil
	}
	var found []Backup
	for _, b := range l.Backups {
		if b.ID.String() == ref || b.ID.Name() == ref {
			found = append(found, b)
		}
	}
	switch len(found) {
	case 0:
		return Backup{}, fmt.Errorf("%w: %s", ErrNoBackup, ref)
	case 1:
		return found[0], nil
	}
	return Backup{}, fmt.Errorf("%w: %s names a backup of %d clusters; give <cluster>/%s", ErrNoBackup, ref, len(found), ref)
}

// commitCopy copies the staged object to its final key. On file:// it links
// the file and its attributes (fileblob's sidecar, with the MD5 fileblob
// computed as it was written) under the final name instead of copying the
// bytes (gocloud's fileblob Copy reads and rewrites them); Commit then
// deletes the staging names as after a copy, so that a crash at any point
// leaves what a copy would have left: objects without a manifest, which
// are orphans. Elsewhere, and for keys fileblob would escape, it is the
// store's Copy (server-side on S3, GCS and Azure).
func (s *Store) commitCopy(ctx context.Context, dst, src string) error {
	if s.lockDir == "" || !plainKey(dst) || !plainKey(src) {
		return s.Copy(ctx, dst, src)
	}
	from, to := filepath.Join(s.lockDir, filepath.FromSlash(src)), filepath.Join(s.lockDir, filepath.FromSlash(dst))
	if err := os.MkdirAll(filepath.Dir(to), 0o777); err != nil {
		return fmt.Errorf("store: copy %s to %s in %s: %w", src, dst, s.url, err)
	}
	// The sidecar first: the object is never seen without its attributes.
	if err := os.Link(from+fileblobAttrs, to+fileblobAttrs); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: copy %s to %s in %s: %w", src, dst, s.url, err)
	}
	if err := os.Link(from, to); err != nil {
		_ = os.Remove(to + fileblobAttrs)
		return fmt.Errorf("store: copy %s to %s in %s: %w", src, dst, s.url, err)
	}
	return nil
}

// fileblobAttrs ends the name of fileblob's attributes sidecar.
const fileblobAttrs = ".attrs"

// plainKey says whether fileblob stores key under its own name (it escapes
// control characters, "//", "../" and a trailing slash).
func plainKey(key string) bool {
	if key != path.Clean(key) || strings.HasPrefix(key, "/") || strings.HasSuffix(key, fileblobAttrs) {
		return false
	}
	for _, c := range key {
		if c < 32 || c == '\\' {
			return false
		}
	}
	return true
}

// Commit makes a staged upload a backup: it checks the staged object, copies
// it to the manifest's object key (hard links on file://, see commitCopy), checks the copy, writes the manifest
// (conditionally: an existing backup of the same name is never replaced) and
// removes the staging object. m.Object.StoreMD5 records whether the store's
// MD5 was compared; an upload without an MD5 (MD5InProcess) records the
// store's as m.Object.MD5.
func (s *Store) Commit(ctx context.Context, staging string, up Uploaded, m *manifest.Manifest) error {
	stagedMD5, err := s.CheckStored(ctx, staging, up)
	if err != nil {
		return err
	}
	if err := s.commitCopy(ctx, m.Object.Key, staging); err != nil {
		return err
	}
	storedMD5, err := s.CheckStored(ctx, m.Object.Key, up)
	if err != nil {
		return err
	}
	m.Object.StoreMD5 = len(up.MD5) > 0 && (len(stagedMD5) > 0 || len(storedMD5) > 0)
	if m.Object.MD5 == "" && len(storedMD5) > 0 {
		m.Object.MD5 = hex.EncodeToString(storedMD5)
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	id, err := m.ParsedID()
	if err != nil {
		return err
	}
	if err := s.WriteAll(ctx, id.Key(s.prefix, manifest.ManifestName), b, true); err != nil {
		return err
	}
	if err := s.Delete(ctx, staging); err != nil {
		s.lg.Warn("staging object left behind; it is removed as an orphan later", "key", staging, "error", err)
	}
	return nil
}

// DeleteBackup deletes a backup: the manifest first, so that it stops
// counting at once, then its objects.
func (s *Store) DeleteBackup(ctx context.Context, b Backup) error {
	if err := s.Delete(ctx, b.ID.Key(s.prefix, manifest.ManifestName)); err != nil {
		return err
	}
	var errs []error
	for _, o := range b.Objects {
		if strings.HasSuffix(o.Key, "/"+manifest.ManifestName) {
			continue
		}
		errs = append(errs, s.Delete(ctx, o.Key))
	}
	return errors.Join(errs...)
}
