// Package save streams a snapshot from a live member into a file, as
// `etcdctl snapshot save` does, checking its SHA-256 trailer on the way. It
// is apart from snapkit so that readers of files (the server's backend
// among them) do not link etcd's client.
package save

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// Result describes a snapshot written by Snapshot.
type Result struct {
	Path     string        `json:"path"`
	Endpoint string        `json:"endpoint"`
	Size     int64         `json:"size"`     // the file, trailer included
	MemberID string        `json:"memberID"` // hex, from the stream's header
	Version  string        `json:"version"`  // the server's, empty before 3.6
	SHA256   string        `json:"sha256"`
	Took     time.Duration `json:"took"`
}

// Snapshot streams a snapshot from the single endpoint in cfg into path. It
// writes path+".part", checks the SHA-256 that ends the stream as the bytes
// go by, and renames the file to path only if it matches; on a mismatch the
// .part file is kept for inspection. path must not exist. With
// cfg.DialTimeout set, an endpoint that does not answer within it fails
// then, with an error that names it.
func Snapshot(ctx context.Context, lg *slog.Logger, cfg clientv3.Config, path string, progress snapkit.Progress) (Result, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Endpoints) != 1 {
		return Result{}, fmt.Errorf("save: save needs exactly one endpoint, got %d: a snapshot is one member's state", len(cfg.Endpoints))
	}
	if _, err := os.Lstat(path); err == nil {
		return Result{}, fmt.Errorf("save: %s already exists", path)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.DialTimeout > 0 {
		// Without a blocking dial (etcdctl's too), clientv3.New returns at
		// once and the snapshot request waits for the connection until ctx
		// ends: --command-timeout, not --dial-timeout.
		cfg.DialOptions = append(slices.Clip(cfg.DialOptions), grpc.WithBlock())
	}
	if cfg.Context == nil {
		cfg.Context = ctx // SIGINT and the command timeout end the dial too
	}
	start := time.Now()
	cli, err := clientv3.New(cfg)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return Result{}, fmt.Errorf("save: connect %s: no connection within the dial timeout (%s): %w", cfg.Endpoints[0], cfg.DialTimeout, err)
	}
	if err != nil {
		return Result{}, fmt.Errorf("save: connect %s: %w", cfg.Endpoints[0], err)
	}
	defer cli.Close()
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("save: snapshot from %s: %w", cfg.Endpoints[0], err)
	}
	defer resp.Snapshot.Close()
	res := Result{Path: path, Endpoint: cfg.Endpoints[0], Version: resp.Version}
	if resp.Header != nil {
		res.MemberID = strconv.FormatUint(resp.Header.MemberId, 16)
	}
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Result{}, fmt.Errorf("save: %w", err)
	}
	lg.Info("saving snapshot", "endpoint", res.Endpoint, "part", part, "member", res.MemberID)
	tw := &trailerWriter{w: f, h: sha256.New(), progress: progress}
	_, err = io.Copy(tw, resp.Snapshot)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(part)
		return Result{}, fmt.Errorf("save: snapshot from %s into %s: %w", res.Endpoint, part, err)
	}
	res.Size = tw.n
	sum := tw.h.Sum(nil)
	res.SHA256 = hex.EncodeToString(sum)
	switch {
	case !snapkit.HasTrailer(tw.n):
		return res, fmt.Errorf("%w: %s: stream of %d bytes does not end with a SHA-256 (size %% 512 != 32); kept as %s", snapkit.ErrSnapshotHash, res.Endpoint, tw.n, part)
	case !bytes.Equal(sum, tw.tail):
		return res, fmt.Errorf("%w: %s: trailer %x, computed %x; kept as %s", snapkit.ErrSnapshotHash, res.Endpoint, tw.tail, sum, part)
	}
	if err := os.Rename(part, path); err != nil {
		return res, fmt.Errorf("save: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	res.Took = time.Since(start)
	lg.Info("saved snapshot", "path", path, "size", res.Size, "took", res.Took)
	return res, nil
}

// trailerWriter writes everything through and hashes all but the last 32
// bytes seen so far, which it holds in tail.
type trailerWriter struct {
	w        io.Writer
	h        hash.Hash
	tail     []byte
	n        int64
	progress snapkit.Progress
}

func (t *trailerWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		return n, err
	}
	t.n += int64(n)
	if len(t.tail)+len(p) <= snapkit.TrailerSize {
		t.tail = append(t.tail, p...)
	} else {
		// Hash what leaves the 32-byte window: the old tail first, then p.
		spill := len(t.tail) + len(p) - snapkit.TrailerSize
		fromTail := min(spill, len(t.tail))
		t.h.Write(t.tail[:fromTail])
		t.h.Write(p[:spill-fromTail])
		t.tail = append(t.tail[fromTail:len(t.tail):len(t.tail)], p[spill-fromTail:]...)
	}
	if t.progress != nil {
		t.progress(t.n, -1)
	}
	return n, nil
}
