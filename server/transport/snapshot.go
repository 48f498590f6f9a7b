package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/failpoint"
)

// postSnapshot sends m followed by the db to the peer and returns the db size.
func (t *Transport) postSnapshot(p *peer, m raftpb.Message) (int64, error) {
	db, size, err := t.cfg.Raft.SnapshotDB(m)
	if err != nil {
		return 0, fmt.Errorf("transport: open snapshot db: %w", err)
	}
	defer db.Close()
	u := p.url()
	ctx, cancel := context.WithCancelCause(t.ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	// A peer that takes no bytes of the body for silentAfter is taken for
	// dead; waiting for its answer, TCP keepalives watch it.
	silent := t.watchdog(ctx, cancel, pw)
	defer silent.Stop()
	go func() {
		err := writeSnapshotBody(progressWriter{pw, func() { silent.Reset(t.silentAfter()) }}, &m, db, size)
		if err == nil {
			silent.Stop()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	fail := func(err error) error {
		return fmt.Errorf("transport: snapshot to peer %x at %s: %w", p.id, u, silentCause(ctx, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+SnapshotPath, pr)
	if err != nil {
		return 0, fail(err)
	}
	t.setHeaders(req.Header)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, fail(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusNoContent {
		return 0, fmt.Errorf("transport: snapshot to peer %x at %s: %s: %s", p.id, u, resp.Status, strings.TrimSpace(string(msg)))
	}
	return size, nil
}

// progressWriter calls progress after every write.
type progressWriter struct {
	w        io.Writer
	progress func()
}

func (pw progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.progress()
	return n, err
}

// writeSnapshotBody writes [frame(m)][uint64 BE size][db][sha256(db)].
func writeSnapshotBody(w io.Writer, m *raftpb.Message, db io.Reader, size int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, _, err := writeFrame(bw, nil, m); err != nil {
		return err
	}
	var sz [8]byte
	binary.BigEndian.PutUint64(sz[:], uint64(size))
	if _, err := bw.Write(sz[:]); err != nil {
		return err
	}
	h := sha256.New()
	n, err := copyHalves(io.MultiWriter(bw, h), db, size, failpoint.SnapshotMidSend)
	if err != nil {
		return fmt.Errorf("copy db: %w", err)
	}
	if n != size {
		return fmt.Errorf("db is %d bytes, expected %d", n, size)
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return err
	}
	return bw.Flush()
}

// copyHalves copies up to size bytes from r to w, as io.Copy of an
// io.LimitReader does, hitting mid half-way.
func copyHalves(w io.Writer, r io.Reader, size int64, mid failpoint.Point) (int64, error) {
	n, err := io.Copy(w, io.LimitReader(r, size/2))
	if err != nil || n < size/2 {
		return n, err
	}
	mid.Hit()
	m, err := io.Copy(w, io.LimitReader(r, size-n))
	return n + m, err
}

// serveSnapshot receives a MsgSnap and its db, stores the db as
// DBFileName(index) in the snap dir, then steps the message into raft.
func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	from, err := t.checkRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusPreconditionFailed)
		return
	}
	lg := t.lg.With("peer-id", strconv.FormatUint(from, 16))
	br := bufio.NewReaderSize(r.Body, 64<<10)
	var m raftpb.Message
	if _, err := readFrame(br, nil, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if m.Type != raftpb.MsgSnap {
		http.Error(w, fmt.Sprintf("transport: expected MsgSnap, got %s", m.Type), http.StatusBadRequest)
		return
	}
	index := m.Snapshot.Metadata.Index
	n, err := t.receiveDB(br, index)
	if err != nil {
		lg.Warn("receiving snapshot db failed", "snapshot-index", index, "error", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	lg.Info("received snapshot db", "snapshot-index", index, "db-bytes", n)
	if err := t.cfg.Raft.Process(r.Context(), m); err != nil {
		http.Error(w, fmt.Sprintf("transport: raft refused snapshot: %v", err), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// receiveDB copies the db from r into a tmp file, checks its SHA-256,
// fsyncs it and renames it into place.
func (t *Transport) receiveDB(r io.Reader, index uint64) (int64, error) {
	if t.cfg.Layout.DataDir == "" {
		return 0, errors.New("transport: no snap dir to receive a snapshot db")
	}
	var sz [8]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return 0, fmt.Errorf("transport: read db size: %w", err)
	}
	size := int64(binary.BigEndian.Uint64(sz[:]))
	f, err := t.cfg.Layout.CreateTemp()
	if err != nil {
		return 0, fmt.Errorf("transport: create tmp db: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	n, err := copyHalves(io.MultiWriter(f, h), r, size, failpoint.SnapshotMidReceive)
	if err != nil {
		return n, fmt.Errorf("transport: receive db into %s: %w", tmp, err)
	}
	if n != size {
		return n, fmt.Errorf("transport: db ended after %d of %d bytes", n, size)
	}
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return n, fmt.Errorf("transport: read db hash: %w", err)
	}
	if !bytes.Equal(sum[:], h.Sum(nil)) {
		return n, fmt.Errorf("transport: db sha256 mismatch (want %x, got %x)", sum, h.Sum(nil))
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("transport: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("transport: close %s: %w", tmp, err)
	}
	dst := t.cfg.Layout.ReceivedDBPath(index)
	if err := os.Rename(tmp, dst); err != nil {
		return n, fmt.Errorf("transport: rename db to %s: %w", dst, err)
	}
	ok = true
	if d, err := os.Open(t.cfg.Layout.SnapDir()); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}
