package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
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
// until an error or stop. An idle stream carries a keepalive every
// KeepaliveInterval; the peer answers with its own on the response, and a
// peer silent for silentAfter (from the request on) ends the stream.
func (p *peer) stream() error {
	u := p.url()
	if u == "" {
		return fmt.Errorf("transport: peer %x has no URL", p.id)
	}
	ctx, cancel := context.WithCancelCause(p.t.ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	defer pw.Close()
	silent := p.t.watchdog(ctx, cancel, pw)
	defer silent.Stop()
	fail := func(err error) error {
		return fmt.Errorf("transport: stream to peer %x at %s: %w", p.id, u, silentCause(ctx, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+StreamPath, pr)
	if err != nil {
		return fail(err)
	}
	p.t.setHeaders(req.Header)
	req.Header.Set("Content-Type", "application/octet-stream")
	// HTTP/1.1 hands over the response while the body is still written.
	resp, err := p.t.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		p.t.cfg.Raft.RemovedFromCluster()
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fail(fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg))))
	}
	silent.Reset(p.t.silentAfter())
	// The response carries the peer's keepalives and ends when the peer
	// closes the stream.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		var b [64]byte
		for {
			n, err := resp.Body.Read(b[:])
			if n > 0 {
				silent.Reset(p.t.silentAfter())
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel(nil) // closes the connection, so the read above returns
		<-closed
	}()
	p.activeSince.Store(time.Now().UnixNano())
	p.t.lg.Info("peer stream connected", "peer-id", strconv.FormatUint(p.id, 16), "url", u)

	sent := p.t.m.sentBytes.WithLabelValues(strconv.FormatUint(p.id, 16))
	bw := bufio.NewWriterSize(pw, 64<<10)
	idle := time.NewTimer(p.t.cfg.KeepaliveInterval)
	defer idle.Stop()
	var buf []byte
	for {
		var m raftpb.Message
		select {
		case <-p.done:
			return nil
		case <-closed:
			return fail(errors.New("peer closed the stream"))
		case <-idle.C:
			if err := bw.WriteByte(keepalive); err != nil {
				return fail(err)
			}
			sent.Add(1)
			if err := bw.Flush(); err != nil {
				return fail(err)
			}
			idle.Reset(p.t.cfg.KeepaliveInterval)
			continue
		case m = <-p.msgc:
		}
		// Write this message and every one already queued, then flush once.
		for {
			var n int
			if buf, n, err = writeFrame(bw, buf, &m); err != nil {
				p.t.m.sentFailures.WithLabelValues(strconv.FormatUint(p.id, 16)).Inc()
				return fail(err)
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
			return fail(err)
		}
		idle.Reset(p.t.cfg.KeepaliveInterval)
	}
}

// keepalive is an empty frame ([uvarint 0]): no message marshals to zero
// bytes, and readers skip it.
const keepalive = 0

// errSilent ends a request to a peer that stopped answering.
var errSilent = errors.New("peer silent")

// silentCause is err, or the watchdog's verdict if it ended the request
// of ctx.
func silentCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errSilent) {
		return cause
	}
	return err
}

// watchdog returns a timer that, unless reset within silentAfter, takes
// the peer for dead and cancels the request's ctx. It closes the body when
// ctx ends: Go's HTTP/1 transport gives a canceled request up only once
// its body has ended.
func (t *Transport) watchdog(ctx context.Context, cancel context.CancelCauseFunc, body *io.PipeWriter) *time.Timer {
	context.AfterFunc(ctx, func() { body.CloseWithError(context.Cause(ctx)) })
	d := t.silentAfter()
	return time.AfterFunc(d, func() { cancel(fmt.Errorf("%w for %s", errSilent, d)) })
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

// readFrame reads one length-prefixed message into m, reusing buf, and
// skips the keepalives before it.
func readFrame(r *bufio.Reader, buf []byte, m *raftpb.Message) ([]byte, error) {
	var n uint64
	for n == 0 {
		var err error
		if n, err = binary.ReadUvarint(r); err != nil {
			return buf, err
		}
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
