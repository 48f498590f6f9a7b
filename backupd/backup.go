package backupd

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/backoff"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// Causes of a failed backup: the failures metric's cause label.
const (
	CauseEndpoint = "endpoint" // no member to stream from, or the stream broke
	CauseStore    = "store"    // the upload, the commit or a store call failed
	CauseVerify   = "verify"   // the spool failed snapkit's checks
	CauseSpool    = "spool"    // the local spool file could not be written
	CauseLock     = "lock"     // the prefix's lock could not be taken or was lost
)

// Failure is a failed backup with its cause.
type Failure struct {
	Cause string
	Err   error
}

func (f *Failure) Error() string { return "backupd: backup failed (" + f.Cause + "): " + f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

func fail(cause string, err error) error {
	if err == nil {
		return nil
	}
	var f *Failure
	if errors.As(err, &f) {
		return err
	}
	return &Failure{Cause: cause, Err: err}
}

// CauseOf is the cause of a failed backup ("" if err is nil).
func CauseOf(err error) string {
	var f *Failure
	switch {
	case err == nil:
		return ""
	case errors.As(err, &f):
		return f.Cause
	}
	return "other"
}

// DefaultRetry is the retry of choosing a member that the commands use.
var DefaultRetry = backoff.Default

// Config is what a backup needs.
type Config struct {
	// Client has the endpoints, TLS and credentials.
	Client clientv3.Config
	Store  *store.Store
	Codec  codec.Options
	// SpoolDir holds the spool file while a backup or a verification runs;
	// empty means os.TempDir().
	SpoolDir string
	// MaxLag is how far an up-to-date follower may trail; 0 means DefaultMaxLag.
	MaxLag uint64
	// Retry bounds the retries of choosing a member.
	Retry  backoff.Policy
	Logger *slog.Logger
	// Progress hears of the stream's bytes.
	Progress snapkit.Progress
	Now      func() time.Time
	// Chosen, if set, hears of the member chosen before the stream starts.
	Chosen func(Choice)
	// AfterSpool, if set, runs on the spool between the stream and its
	// verification: fault tests corrupt it there on purpose.
	AfterSpool func(path string) error
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c *Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// hashingWriter counts and hashes what goes through it to w: SHA-256, and
// MD5 if asked.
type hashingWriter struct {
	w      io.Writer
	n      int64
	sha, m hash.Hash
}

func newHashingWriter(w io.Writer, withMD5 bool) *hashingWriter {
	h := &hashingWriter{w: w, sha: sha256.New()}
	if withMD5 {
		h.m = md5.New()
	}
	return h
}

func (h *hashingWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.sha.Write(p[:n])
	if h.m != nil {
		h.m.Write(p[:n])
	}
	h.n += int64(n)
	return n, err
}

func (h *hashingWriter) uploaded() store.Uploaded {
	up := store.Uploaded{Size: h.n, SHA256: h.sha.Sum(nil)}
	if h.m != nil {
		up.MD5 = h.m.Sum(nil)
	}
	return up
}

// Backup takes one backup: it chooses a member, streams its snapshot into
// a spool file while a compressor behind the stream reads the spool,
// hashes it and uploads it (compressed, encrypted) to a staging object,
// verifies the spool with snapkit beside the compressor's end, then
// commits (copy to the final name, check, manifest last). slot is the
// scheduled time it is taken for (zero for once). On any failure nothing
// counts: the staging object is an orphan and no manifest is written.
func Backup(ctx context.Context, cfg *Config, slot time.Time) (*manifest.Manifest, error) {
	lg := cfg.logger()
	maxLag := cfg.MaxLag
	if maxLag == 0 {
		maxLag = DefaultMaxLag
	}
	var choice Choice
	err := cfg.Retry.Do(ctx, func(ctx context.Context) (err error) {
		choice, err = ChooseMember(ctx, cfg.Client, maxLag, lg)
		return err
	}, func(attempt int, err error, wait time.Duration) {
		lg.Warn("no member to back up from, retrying", "attempt", attempt, "wait", wait, "error", err)
	})
	if err != nil {
		return nil, fail(CauseEndpoint, err)
	}
	if cfg.Chosen != nil {
		cfg.Chosen(choice)
	}
	start := cfg.now().UTC()
	objName := manifest.ObjectName(cfg.Codec.Codec, len(cfg.Codec.Recipients) > 0)
	staging := manifest.StagingKey(cfg.Store.Prefix(), choice.ClusterID, start, objName)

	spool, err := os.CreateTemp(cfg.SpoolDir, "backupd-*.spool")
	if err != nil {
		return nil, fail(CauseSpool, fmt.Errorf("spool: %w", err))
	}
	defer os.Remove(spool.Name())
	lg.Info("backup started", "endpoint", choice.Endpoint, "member", strconv.FormatUint(choice.ID, 16), "role", choice.Role,
		"staging", staging, "spool", spool.Name())
	comp, version, err := stream(ctx, cfg, choice.Endpoint, spool, staging)
	if cerr := spool.Close(); err == nil && cerr != nil {
		err = fail(CauseSpool, cerr)
	}
	if err == nil && cfg.AfterSpool != nil {
		err = fail(CauseSpool, cfg.AfterSpool(spool.Name()))
	}
	if err != nil {
		if comp != nil {
			_, _, _ = comp.wait() // the upload is finished or aborted: its goroutine no longer reads the spool
		}
		return nil, err
	}
	return commit(ctx, cfg, choice, start, slot, spool.Name(), comp, staging, version)
}

// commit verifies a complete spool while its compressor ends: the trailer
// against the SHA-256 of what the compressor read, the spool read back
// against what it read, snapkit's walks of the spool; then, the upload of
// the same bytes done, it commits the backup with its manifest.
func commit(ctx context.Context, cfg *Config, choice Choice, start, slot time.Time, spool string, comp *compression, staging string, version string) (*manifest.Manifest, error) {
	lg := cfg.logger()
	objName := manifest.ObjectName(cfg.Codec.Codec, len(cfg.Codec.Recipients) > 0)
	facts, err := inspectSpool(ctx, spool, lg, func() (*streamSums, error) {
		_, sums, err := comp.wait()
		return sums, err
	})
	up, _, cerr := comp.wait()
	if cerr != nil {
		return nil, cerr // the upload failed: the store's failure, whatever the spool's
	}
	if err != nil {
		return nil, fail(CauseVerify, fmt.Errorf("snapshot from %s (member %x): %w", choice.Endpoint, choice.ID, err))
	}
	id := manifest.NewID(choice.ClusterID, start, facts.Revision)
	m := &manifest.Manifest{
		Format: manifest.Format, ID: id.String(),
		ClusterID: strconv.FormatUint(choice.ClusterID, 16), MemberID: strconv.FormatUint(choice.ID, 16), MemberName: choice.Name,
		Role: choice.Role, Endpoint: choice.Endpoint, EtcdVersion: choice.Version, StorageVersion: version,
		Revision: facts.Revision, CompactRevision: facts.CompactRevision, RaftIndex: facts.RaftIndex, RaftTerm: facts.RaftTerm,
		HashKV: facts.HashKV, HashKVRevision: facts.HashKVRevision, TotalKey: facts.TotalKey,
		DBSize: facts.DBSize, DBSHA256: facts.DBSHA256,
		Object: manifest.Object{
			Key: id.Key(cfg.Store.Prefix(), objName), Size: up.Size,
			SHA256: hex.EncodeToString(up.SHA256), MD5: hex.EncodeToString(up.MD5), // "" without one: Commit records the store's
			Codec: cfg.Codec.Codec, Level: cfg.Codec.Level, Recipients: cfg.Codec.RecipientNames,
		},
		Start: start,
	}
	if m.StorageVersion == "" {
		m.StorageVersion = facts.StorageVersion
	}
	if !slot.IsZero() {
		s := slot.UTC()
		m.Slot = &s
	}
	m.End = cfg.now().UTC()
	if err := cfg.Store.Commit(ctx, staging, up, m); err != nil {
		return nil, fail(CauseStore, err)
	}
	lg.Info("backup committed", "id", m.ID, "revision", m.Revision, "db_size", m.DBSize, "stored", m.Object.Size,
		"codec", m.Object.Codec, "encrypted", m.Encrypted(), "took", m.End.Sub(m.Start))
	return m, nil
}

// upload is a streamed upload through the codec to a staging object.
type upload struct {
	cancel context.CancelFunc
	w      io.WriteCloser // the bucket's writer
	hw     *hashingWriter
	enc    io.WriteCloser
	key    string
}

func newUpload(ctx context.Context, cfg *Config, key string) (*upload, error) {
	uctx, cancel := context.WithCancel(ctx)
	w, err := cfg.Store.NewWriter(uctx, key)
	if err != nil {
		cancel()
		return nil, err
	}
	u := &upload{cancel: cancel, w: w, hw: newHashingWriter(w, !cfg.Store.MD5InProcess()), key: key}
	if u.enc, err = codec.NewWriter(u.hw, cfg.Codec); err != nil {
		u.abort()
		return nil, err
	}
	return u, nil
}

func (u *upload) Write(p []byte) (int, error) {
	n, err := u.enc.Write(p)
	if err != nil {
		err = fmt.Errorf("upload %s after %d bytes: %w", u.key, u.hw.n, err)
	}
	return n, err
}

// abort discards the upload: a cancelled writer does not commit. The codec
// is closed first, so that its goroutines no longer write to the bucket's
// writer when that closes.
func (u *upload) abort() {
	u.cancel()
	if u.enc != nil {
		_ = u.enc.Close()
		u.enc = nil
	}
	_ = u.w.Close()
}

// finish flushes the codec and completes the upload.
func (u *upload) finish() (store.Uploaded, error) {
	defer u.cancel()
	err := u.enc.Close()
	u.enc = nil
	if err != nil {
		u.abort()
		return store.Uploaded{}, fmt.Errorf("upload %s: %w", u.key, err)
	}
	if err := u.w.Close(); err != nil {
		return store.Uploaded{}, fmt.Errorf("upload %s: %w", u.key, err)
	}
	return u.hw.uploaded(), nil
}

// spoolWriteSize is the size of the spool's writes: chunks of the stream
// (etcd sends 32 KiB) are gathered into writes this large.
const spoolWriteSize = 1 << 20

// stream copies the endpoint's snapshot into spool, which a compressor
// reads behind it (compressSpool). It returns the compressor, running, and
// the storage version the member sent; on an error the compressor, if one
// started, is ending (wait for it before the spool goes).
func stream(ctx context.Context, cfg *Config, endpoint string, spool *os.File, staging string) (*compression, string, error) {
	one := cfg.Client
	one.Endpoints = []string{endpoint}
	one.DialOptions = append(slices.Clip(one.DialOptions), snapshotDialOption)
	cli, err := newClient(one)
	if err != nil {
		return nil, "", fail(CauseEndpoint, fmt.Errorf("connect %s: %w", endpoint, err))
	}
	defer cli.Close()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		done, total int64
		version     string
		feed        = newSpoolFeed()
		w           = bufio.NewWriterSize(feedWriter{f: spool, feed: feed}, spoolWriteSize)
		comp        *compression
	)
	start := func() {
		comp = compressSpool(ctx, cfg, staging, spool.Name(), feed, total, stop)
	}
	// abort ends the feed and returns why the backup failed: the
	// compressor's own failure (which stopped the stream) comes first.
	abort := func(err error) (*compression, string, error) {
		feed.end(errStreamBroke)
		if comp != nil {
			if _, _, cerr := comp.wait(); cerr != nil && !errors.Is(cerr, errStreamBroke) {
				return comp, "", cerr
			}
		}
		return comp, "", err
	}
	ss, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Snapshot(sctx, &pb.SnapshotRequest{}, snapshotCallOption)
	if err != nil {
		return abort(fail(CauseEndpoint, fmt.Errorf("snapshot from %s: %w", endpoint, err)))
	}
	for {
		resp, err := ss.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return abort(fail(CauseEndpoint, fmt.Errorf("snapshot from %s after %d bytes: %w", endpoint, done, err)))
		}
		if total == 0 {
			total = int64(len(resp.Blob)) + int64(resp.RemainingBytes) + snapkit.TrailerSize
			version = resp.Version
			preallocate(spool, total)
			start()
		}
		if _, err := w.Write(resp.Blob); err != nil {
			return abort(fail(CauseSpool, fmt.Errorf("spool %s: %w", spool.Name(), err)))
		}
		done += int64(len(resp.Blob))
		if cfg.Progress != nil {
			cfg.Progress(done, total)
		}
	}
	if done != total {
		return abort(fail(CauseEndpoint, fmt.Errorf("snapshot from %s: stream ended after %d of %d bytes", endpoint, done, total)))
	}
	// The spool is not synced to disk: it is scratch, read back from the
	// page cache (by the compressor and the read-back) and removed once
	// the backup is verified; the stored object is the backup. (An fsync
	// of it cost 1.5 s of wall time on the benchmark's 820 MB.)
	if err := w.Flush(); err != nil {
		return abort(fail(CauseSpool, fmt.Errorf("spool %s: %w", spool.Name(), err)))
	}
	if comp == nil { // an empty stream
		start()
	}
	feed.end(nil)
	return comp, version, nil
}
