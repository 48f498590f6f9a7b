package backupd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// ErrVerify means a stored backup does not match its manifest.
var ErrVerify = errors.New("backupd: backup failed verification")

// Check is one comparison of a verification.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// VerifyReport is the outcome of reading a backup back.
type VerifyReport struct {
	ID     string  `json:"id"`
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
	// Path is the fetched snapshot file (Fetch only).
	Path string `json:"path,omitempty"`
}

func (r *VerifyReport) add(name string, ok bool, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	if !ok {
		r.OK = false
	}
}

// err is nil if every check passed, else ErrVerify naming the backup and
// the first failed check.
func (r *VerifyReport) err() error {
	for _, c := range r.Checks {
		if !c.OK {
			return fmt.Errorf("%w: %s: %s: %s", ErrVerify, r.ID, c.Name, c.Detail)
		}
	}
	return nil
}

// ReadOptions are what reading a backup back needs.
type ReadOptions struct {
	Identities []age.Identity
	SpoolDir   string
	Logger     *slog.Logger
	Progress   snapkit.Progress // stored bytes read, of the stored size
}

// Verify downloads a backup, decrypts and decompresses it into a spool
// file, and checks the stored object's size and SHA-256, the snapshot's
// trailer, structure and status (snapkit), and hashkv at the manifest's
// revision against the manifest. A mismatch is an error wrapping ErrVerify
// that names the backup; the report lists every check.
func Verify(ctx context.Context, s *store.Store, b store.Backup, o ReadOptions) (*VerifyReport, error) {
	spool, err := os.CreateTemp(o.SpoolDir, "backupd-verify-*.spool")
	if err != nil {
		return nil, fmt.Errorf("backupd: spool: %w", err)
	}
	spool.Close()
	defer os.Remove(spool.Name())
	return readBack(ctx, s, b, o, spool.Name())
}

// Fetch verifies a backup as Verify does and leaves it at path as a
// snapshot file with its SHA-256 trailer, the form `etcdutl snapshot
// restore` takes. path must not exist; nothing is left there unless every
// check passed.
func Fetch(ctx context.Context, s *store.Store, b store.Backup, o ReadOptions, path string) (*VerifyReport, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("backupd: %s already exists", path)
	}
	part := path + ".part"
	rep, err := readBack(ctx, s, b, o, part)
	if err != nil || !rep.OK {
		os.Remove(part)
		return rep, err
	}
	if err := os.Rename(part, path); err != nil {
		os.Remove(part)
		return rep, fmt.Errorf("backupd: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	rep.Path = path
	return rep, nil
}

func readBack(ctx context.Context, s *store.Store, b store.Backup, o ReadOptions, path string) (*VerifyReport, error) {
	m := b.Manifest
	rep := &VerifyReport{ID: m.ID, OK: true}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	r, err := s.NewReader(ctx, m.Object.Key)
	if errors.Is(err, store.ErrNotFound) {
		rep.add("object", false, "%s is missing", m.Object.Key)
		return rep, rep.err()
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	hr := &hashingReader{r: r, h: newHashingWriter(io.Discard, false), progress: o.Progress, total: m.Object.Size}
	dec, err := codec.NewReader(hr, m.Object.Codec, m.Encrypted(), o.Identities)
	if errors.Is(err, codec.ErrIdentity) {
		return nil, fmt.Errorf("backupd: %s: %w", m.ID, err)
	}
	f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if ferr != nil {
		return nil, fmt.Errorf("backupd: %w", ferr)
	}
	var n int64
	if err == nil {
		n, err = io.Copy(f, dec)
		dec.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Read to the end, so that the sums cover the whole object.
		_, err = io.Copy(io.Discard, hr)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	up := hr.h.uploaded()
	rep.add("object", err == nil && up.Size == m.Object.Size && hex.EncodeToString(up.SHA256) == m.Object.SHA256,
		"%s: %d bytes, SHA-256 %x; manifest: %d bytes, %s%s", m.Object.Key, up.Size, up.SHA256, m.Object.Size, m.Object.SHA256, errDetail(err))
	if err != nil {
		rep.add("decode", false, "%s %s: %v", m.Object.Codec, encryptedWord(m.Encrypted()), err)
		return rep, rep.err()
	}
	rep.add("decode", true, "%s%s: %d bytes", m.Object.Codec, encryptedWord(m.Encrypted()), n)
	facts, err := inspectSpool(ctx, path, lg, nil)
	if err != nil {
		rep.add("snapshot", false, "%v", err)
		return rep, rep.err()
	}
	rep.add("snapshot", true, "SHA-256 trailer, bbolt structure and schema checked by snapkit")
	rep.add("db", facts.DBSHA256 == m.DBSHA256 && facts.DBSize == m.DBSize,
		"%d bytes, SHA-256 %s; manifest: %d bytes, %s", facts.DBSize, facts.DBSHA256, m.DBSize, m.DBSHA256)
	rep.add("status", facts.Revision == m.Revision && facts.CompactRevision == m.CompactRevision &&
		facts.RaftIndex == m.RaftIndex && facts.RaftTerm == m.RaftTerm && facts.TotalKey == m.TotalKey,
		"revision %d, compact %d, raft index %d term %d, %d keys; manifest: %d, %d, %d %d, %d",
		facts.Revision, facts.CompactRevision, facts.RaftIndex, facts.RaftTerm, facts.TotalKey,
		m.Revision, m.CompactRevision, m.RaftIndex, m.RaftTerm, m.TotalKey)
	rep.add("hashkv", facts.HashKV == m.HashKV && facts.HashKVRevision == m.HashKVRevision,
		"%d at revision %d; manifest: %d at %d", facts.HashKV, facts.HashKVRevision, m.HashKV, m.HashKVRevision)
	return rep, rep.err()
}

func errDetail(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

func encryptedWord(enc bool) string {
	if enc {
		return ", age-encrypted"
	}
	return ""
}

// hashingReader hashes what is read through it.
type hashingReader struct {
	r        io.Reader
	h        *hashingWriter
	progress snapkit.Progress
	total    int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	if h.progress != nil && n > 0 {
		h.progress(h.h.n, h.total)
	}
	return n, err
}
