package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Handler serves the peer endpoints (StreamPath, SnapshotPath and
// ProbePath). Mount it on the peer listener, served over HTTP/1.1: the
// transport's client speaks nothing else.
func (t *Transport) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(StreamPath, t.serveStream)
	mux.HandleFunc(SnapshotPath, t.serveSnapshot)
	mux.HandleFunc(ProbePath, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return mux
}

// propQueueSize bounds the forwarded proposals of one stream that wait for
// raft (etcd's rafthttp uses 4096).
const propQueueSize = 4096

// serveStream reads messages from a peer's stream until it ends.
func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request) {
	// The body is read while the response is written; and an answer that
	// refuses the stream must not wait for the body's end, which never
	// comes.
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		http.Error(w, fmt.Sprintf("transport: stream needs a full duplex connection: %v", err), http.StatusInternalServerError)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	from, err := t.checkRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusPreconditionFailed)
		return
	}
	if t.cfg.Raft.IsIDRemoved(from) {
		http.Error(w, fmt.Sprintf("transport: member %x was removed from the cluster", from), http.StatusGone)
		return
	}
	t.learnPeer(from, r.Header)
	lg := t.lg.With("peer-id", strconv.FormatUint(from, 16))
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		lg.Warn("cannot flush stream response", "error", err)
		return
	}
	stop := make(chan struct{})
	var answering sync.WaitGroup
	answering.Go(func() { t.answer(w, rc, stop) })
	defer answering.Wait()
	defer close(stop)
	// Raft holds a proposal until this member knows a leader, so
	// forwarded proposals go to raft apart from the other messages, as
	// etcd's rafthttp does: one waiting must not stop the reading of the
	// stream, whose next messages may be the new leader's.
	props := make(chan raftpb.Message, propQueueSize)
	defer close(props)
	go func() {
		for m := range props {
			if err := t.cfg.Raft.Process(r.Context(), m); err != nil {
				lg.Debug("raft refused message", "type", m.Type.String(), "error", err)
			}
		}
	}()
	// A peer that sends nothing, not even a keepalive, for silentAfter is
	// taken for dead.
	body := deadlineReader{r.Body, rc, t.silentAfter()}
	br := bufio.NewReaderSize(countingReader{body, t.m.receivedBytes.WithLabelValues(strconv.FormatUint(from, 16))}, 64<<10)
	var buf []byte
	for {
		var m raftpb.Message
		buf, err = readFrame(br, buf, &m)
		if err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil && t.ctx.Err() == nil {
				lg.Debug("peer stream read failed", "error", err)
			}
			return
		}
		if m.Type == raftpb.MsgSnap {
			lg.Warn("dropped MsgSnap received on the message stream")
			continue
		}
		if m.Type == raftpb.MsgProp {
			select {
			case props <- m:
			default:
				lg.Warn("dropped forwarded proposal: queue full")
			}
			continue
		}
		if err := t.cfg.Raft.Process(r.Context(), m); err != nil {
			lg.Debug("raft refused message", "type", m.Type.String(), "error", err)
			if r.Context().Err() != nil || t.ctx.Err() != nil || t.cfg.Raft.IsIDRemoved(from) {
				return
			}
		}
	}
}

// answer writes a keepalive on a stream's response every KeepaliveInterval
// until stop, so that the sender knows this member is alive; a write that
// the sender does not take within silentAfter ends it.
func (t *Transport) answer(w http.ResponseWriter, rc *http.ResponseController, stop <-chan struct{}) {
	tick := time.NewTicker(t.cfg.KeepaliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if rc.SetWriteDeadline(time.Now().Add(t.silentAfter())) != nil {
			return
		}
		if _, err := w.Write([]byte{keepalive}); err != nil {
			return
		}
		if rc.Flush() != nil || rc.SetWriteDeadline(time.Time{}) != nil {
			return
		}
	}
}

// deadlineReader gives each read of a stream's body timeout to return.
type deadlineReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
}

func (d deadlineReader) Read(p []byte) (int, error) {
	if err := d.rc.SetReadDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, fmt.Errorf("transport: set read deadline: %w", err)
	}
	return d.r.Read(p)
}
