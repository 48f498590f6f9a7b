package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// peer owns the outgoing stream to one member.
type peer struct {
	t    *Transport
	id   uint64
	msgc chan raftpb.Message
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	urls    []string
	next    int  // index of the URL to try next
	sending bool // a snapshot send is running

	// activeSince is when the stream connected (Unix nanoseconds), 0
	// while it is down.
	activeSince atomic.Int64
}

func newPeer(t *Transport, id uint64, urls []string) *peer {
	return &peer{
		t:    t,
		id:   id,
		msgc: make(chan raftpb.Message, t.cfg.QueueSize),
		done: make(chan struct{}),
		urls: append([]string(nil), urls...),
	}
}

func (p *peer) setURLs(urls []string) {
	p.mu.Lock()
	p.urls = append([]string(nil), urls...)
	p.next = 0
	p.mu.Unlock()
}

// url returns the next URL to try, rotating through the list.
func (p *peer) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.urls) == 0 {
		return ""
	}
	u := p.urls[p.next%len(p.urls)]
	return strings.TrimSuffix(u, "/")
}

func (p *peer) rotate() {
	p.mu.Lock()
	p.next++
	p.mu.Unlock()
}

func (p *peer) connected() bool { return p.activeSince.Load() != 0 }

func (p *peer) stop() { p.once.Do(func() { close(p.done) }) }

func (p *peer) enqueue(m raftpb.Message) {
	if !p.connected() {
		p.t.m.sentFailures.WithLabelValues(strconv.FormatUint(p.id, 16)).Inc()
		p.t.cfg.Raft.ReportUnreachable(p.id)
		return
	}
	select {
	case p.msgc <- m:
	default:
		p.t.lg.Warn("dropped message: peer queue full", "peer-id", strconv.FormatUint(p.id, 16), "type", m.Type.String())
		p.t.m.sentFailures.WithLabelValues(strconv.FormatUint(p.id, 16)).Inc()
		p.t.cfg.Raft.ReportUnreachable(p.id)
	}
}

// probe measures the round trip time to the peer every ProbeInterval, as
// etcd's prober, into etcd_network_peer_round_trip_time_seconds.
func (p *peer) probe() {
	rtt := p.t.m.rtt.WithLabelValues(strconv.FormatUint(p.id, 16))
	for {
		if u := p.url(); u != "" {
			ctx, cancel := context.WithTimeout(p.t.ctx, p.t.cfg.ProbeInterval)
			start := time.Now()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+ProbePath, nil)
			if err == nil {
				var resp *http.Response
				if resp, err = p.t.client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64))
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						rtt.Observe(time.Since(start).Seconds())
					}
				}
			}
			cancel()
		}
		select {
		case <-p.done:
			return
		case <-p.t.ctx.Done():
			return
		case <-time.After(p.t.cfg.ProbeInterval):
		}
	}
}

// run keeps a stream to the peer open until stop, reconnecting with backoff.
func (p *peer) run() {
	backoff := 50 * time.Millisecond
	for {
		start := time.Now()
		err := p.stream()
		p.activeSince.Store(0)
		select {
		case <-p.done:
			return
		case <-p.t.ctx.Done():
			return
		default:
		}
		if err != nil {
			p.t.lg.Debug("peer stream ended", "peer-id", strconv.FormatUint(p.id, 16), "error", err)
			p.t.cfg.Raft.ReportUnreachable(p.id)
			p.rotate()
		}
		if time.Since(start) > 5*time.Second {
			backoff = 50 * time.Millisecond
		}
		p.drop()
		select {
		case <-p.done:
			return
		case <-p.t.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// drop discards the queued messages of a broken stream: raft resends what
// matters, and stale messages only slow the next stream.
func (p *peer) drop() {
	for {
		select {
		case <-p.msgc:
		default:
			return
		}
	}
}

// stream opens one request to the peer and writes queued messages into it
// until an error or stop.
func (p *peer) stream() error {
	u := p.url()
	if u == "" {
		return fmt.Errorf("transport: peer %x has no URL", p.id)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequestWithContext(p.t.ctx, http.MethodPost, u+StreamPath, pr)
	if err != nil {
		return fmt.Errorf("transport: stream to peer %x at %s: %w", p.id, u, err)
	}
	p.t.setHeaders(req.Header)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.t.client.Do(req)
	if err != nil {
		return fmt.Errorf("transport: stream to peer %x at %s: %w", p.id, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		p.t.cfg.Raft.RemovedFromCluster()
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("transport: stream to peer %x at %s: %s: %s", p.id, u, resp.Status, strings.TrimSpace(string(msg)))
	}
	// The response body ends when the peer closes the stream.
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		close(closed)
	}()
	p.activeSince.Store(time.Now().UnixNano())
	p.t.lg.Info("peer stream connected", "peer-id", strconv.FormatUint(p.id, 16), "url", u)

	sent := p.t.m.sentBytes.WithLabelValues(strconv.FormatUint(p.id, 16))
	bw := bufio.NewWriterSize(pw, 64<<10)
	var buf []byte
	for {
		var m raftpb.Message
		select {
		case <-p.done:
			return nil
		case <-closed:
			return fmt.Errorf("transport: peer %x closed the stream", p.id)
		case m = <-p.msgc:
		}
		// Write this message and every one already queued, then flush once.
		for {
			var n int
			if buf, n, err = writeFrame(bw, buf, &m); err != nil {
				p.t.m.sentFailures.WithLabelValues(strconv.FormatUint(p.id, 16)).Inc()
				return fmt.Errorf("transport: write to peer %x: %w", p.id, err)
			}
			sent.Add(float64(n))
			select {
			case m = <-p.msgc:
				continue
			default:
			}
			break
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("transport: write to peer %x: %w", p.id, err)
		}
	}
}

// writeFrame writes one length-prefixed message, reusing buf, and returns
// the bytes written.
func writeFrame(w io.Writer, buf []byte, m *raftpb.Message) ([]byte, int, error) {
	n := m.Size()
	need := binary.MaxVarintLen64 + n
	if cap(buf) < need {
		buf = make([]byte, need)
	}
	buf = buf[:need]
	l := binary.PutUvarint(buf, uint64(n))
	if _, err := m.MarshalTo(buf[l : l+n]); err != nil {
		return buf, 0, fmt.Errorf("marshal %s: %w", m.Type, err)
	}
	w2, err := w.Write(buf[:l+n])
	return buf, w2, err
}

// readFrame reads one length-prefixed message into m, reusing buf.
func readFrame(r *bufio.Reader, buf []byte, m *raftpb.Message) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return buf, err
	}
	if n > maxFrameSize {
		return buf, fmt.Errorf("transport: frame of %d bytes exceeds the limit of %d", n, maxFrameSize)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, fmt.Errorf("transport: read frame of %d bytes: %w", n, err)
	}
	*m = raftpb.Message{}
	if err := m.Unmarshal(buf); err != nil {
		return buf, fmt.Errorf("transport: decode message: %w", err)
	}
	return buf, nil
}

// sendSnapshot streams m and the db to the peer in the background, one at
// a time per peer, and reports the outcome to raft.
func (p *peer) sendSnapshot(m raftpb.Message) {
	p.mu.Lock()
	if p.sending {
		p.mu.Unlock()
		p.t.cfg.Raft.ReportSnapshot(p.id, raft.SnapshotFailure)
		return
	}
	p.sending = true
	p.mu.Unlock()
	started := p.t.goTracked(func() {
		defer func() {
			p.mu.Lock()
			p.sending = false
			p.mu.Unlock()
		}()
		start := time.Now()
		n, err := p.t.postSnapshot(p, m)
		lg := p.t.lg.With("peer-id", strconv.FormatUint(p.id, 16), "snapshot-index", m.Snapshot.Metadata.Index)
		if err != nil {
			lg.Warn("sending snapshot failed", "error", err)
			p.t.cfg.Raft.ReportUnreachable(p.id)
			p.t.cfg.Raft.ReportSnapshot(p.id, raft.SnapshotFailure)
			return
		}
		lg.Info("sent snapshot", "db-bytes", n, "took", time.Since(start).String())
		p.t.cfg.Raft.ReportSnapshot(p.id, raft.SnapshotFinish)
	})
	if !started { // the transport is closed
		p.mu.Lock()
		p.sending = false
		p.mu.Unlock()
		p.t.cfg.Raft.ReportSnapshot(p.id, raft.SnapshotFailure)
	}
}
