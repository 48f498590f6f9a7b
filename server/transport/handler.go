package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"go.etcd.io/raft/v3/raftpb"
)

// Handler serves the peer endpoints (StreamPath and SnapshotPath). Mount it
// on the peer listener, served with HTTP/2 cleartext enabled.
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
	if err := http.NewResponseController(w).Flush(); err != nil {
		lg.Warn("cannot flush stream response", "error", err)
		return
	}
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
	br := bufio.NewReaderSize(countingReader{r.Body, t.m.receivedBytes.WithLabelValues(strconv.FormatUint(from, 16))}, 64<<10)
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
