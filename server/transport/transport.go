package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
)

// Paths served by Transport.Handler.
const (
	StreamPath   = "/lifeboat/raft/stream"
	SnapshotPath = "/lifeboat/raft/snapshot"
	ProbePath    = "/lifeboat/raft/probe"
)

// Headers that every peer request carries.
const (
	headerFrom      = "X-Lifeboat-From"
	headerClusterID = "X-Lifeboat-Cluster-Id"
	headerPeerURLs  = "X-Lifeboat-Peer-Urls" // the sender's, comma-separated
)

// DefaultQueueSize is the number of messages queued per peer before the
// transport drops messages and reports the peer unreachable.
const DefaultQueueSize = 4096

// maxFrameSize bounds one raft message on the wire (raft's MaxSizePerMsg is
// far below this; a larger length means a corrupt or hostile stream).
const maxFrameSize = 256 << 20

// Raft is what the transport needs from the local member.
type Raft interface {
	// Process steps a message received from a peer into raft.
	Process(ctx context.Context, m raftpb.Message) error
	// ReportUnreachable tells raft that a message to id was lost.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a snapshot to id ended.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
	// SnapshotDB opens the db to stream with an outgoing MsgSnap and gives
	// its exact size; the transport closes it when the send ends.
	SnapshotDB(m raftpb.Message) (io.ReadCloser, int64, error)
	// IsIDRemoved reports whether member id was removed from the cluster;
	// its streams are refused with 410 Gone.
	IsIDRemoved(id uint64) bool
	// RemovedFromCluster is called when a peer refuses this member as
	// removed.
	RemovedFromCluster()
}

// Config configures a Transport.
type Config struct {
	ID        uint64 // the local member
	ClusterID uint64
	// PeerURLs are the local member's advertised peer URLs. Every request
	// carries them, so that a peer that does not know this member yet
	// (its membership is behind, as a member that joined and restarted
	// before it had caught up) can answer it, as etcd's rafthttp does.
	PeerURLs []string
	// Layout is the member's data dir: db snapshots are received into its
	// snap dir (datadir.Layout.ReceivedDBPath).
	Layout datadir.Layout
	Raft   Raft
	Logger *slog.Logger
	// QueueSize is the per-peer message queue (DefaultQueueSize if 0).
	QueueSize int
	// DialTimeout bounds connecting to a peer (1s if 0).
	DialTimeout time.Duration
	// TLS gives the client configuration for dialing the peer at host over
	// https; nil dials only http peers. It is called for every connection,
	// so a certificate rotated on disk is used by the next one.
	TLS func(host string) *tls.Config
	// Registerer takes the peer network metrics (none if nil).
	Registerer prometheus.Registerer
	// ProbeInterval is how often each peer's round trip time is measured
	// (5s if 0).
	ProbeInterval time.Duration
	// KeepaliveInterval is how long a stream stays idle before each end
	// writes a keepalive on it (DefaultKeepaliveInterval if 0); a stream
	// silent for silentIntervals of them is taken for dead. Every member
	// of a cluster must use the same.
	KeepaliveInterval time.Duration
}

// DefaultKeepaliveInterval is Config.KeepaliveInterval's default: a dead
// peer is noticed after 4s, as the HTTP/2 pings of earlier versions did.
const DefaultKeepaliveInterval = time.Second

// silentIntervals is how many keepalive intervals without a byte from the
// other end end a stream (and a snapshot send that makes no progress).
const silentIntervals = 4

// Transport sends raft messages to peers and serves the peer endpoints.
type Transport struct {
	cfg    Config
	lg     *slog.Logger
	m      *metrics
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.RWMutex
	peers map[uint64]*peer

	// goMu orders the goroutines' start against Close: once closed is
	// set, none starts, so that Close's wait sees every one (a peer's
	// stream handler may still learn a peer, and raft send a snapshot,
	// while the member shuts down).
	goMu   sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// New returns a transport with no peers.
func New(cfg Config) (*Transport, error) {
	if cfg.ID == 0 {
		return nil, errors.New("transport: member ID is 0")
	}
	if cfg.Raft == nil {
		return nil, errors.New("transport: no Raft")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = time.Second
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 5 * time.Second
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	// Peers speak HTTP/1.1, as etcd's. TCP keepalives notice a dead peer
	// on a connection that waits with nothing in flight (a snapshot's
	// answer); the streams carry their own keepalives.
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 5 * time.Second, Interval: time.Second, Count: 3}}
	tr := &http.Transport{
		DialContext:    dialer.DialContext,
		DialTLSContext: dialTLS(dialer, cfg.TLS),
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{
		cfg:    cfg,
		m:      m,
		lg:     lg.With("component", "transport", "local-member-id", strconv.FormatUint(cfg.ID, 16)),
		client: &http.Client{Transport: tr},
		ctx:    ctx,
		cancel: cancel,
		peers:  make(map[uint64]*peer),
	}, nil
}

// dialTLS returns the transport's TLS dialer: a handshake with the
// configuration tlsFor gives for the peer's host, offering HTTP/1.1 only.
func dialTLS(d *net.Dialer, tlsFor func(host string) *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if tlsFor == nil {
			return nil, fmt.Errorf("transport: https peer %s but no peer TLS configured (--peer-cert-file, --peer-key-file or --peer-auto-tls)", addr)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("transport: peer address %s: %w", addr, err)
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := tlsFor(host).Clone()
		// Offering h2 would let the peer choose it.
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("transport: TLS handshake with peer %s: %w", addr, err)
		}
		return tc, nil
	}
}

// SetClusterID sets the cluster ID sent and checked on every request (a
// joining member learns it only after New).
func (t *Transport) SetClusterID(id uint64) {
	t.mu.Lock()
	t.cfg.ClusterID = id
	t.mu.Unlock()
}

func (t *Transport) clusterID() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.cfg.ClusterID
}

// AddPeer starts a stream to member id at the first reachable URL of urls.
// Adding a known peer updates its URLs.
func (t *Transport) AddPeer(id uint64, urls []string) {
	if id == t.cfg.ID {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		p.setURLs(urls)
		return
	}
	p := newPeer(t, id, urls)
	t.peers[id] = p
	// The peer's series exist from now on, at zero.
	to := strconv.FormatUint(id, 16)
	t.m.sentBytes.WithLabelValues(to)
	t.m.sentFailures.WithLabelValues(to)
	t.m.receivedBytes.WithLabelValues(to)
	if !t.goTracked(p.run) || !t.goTracked(p.probe) {
		return // closed: p.run and p.probe would have returned at once
	}
	t.lg.Info("added peer", "peer-id", strconv.FormatUint(id, 16), "peer-urls", urls)
}

// RemovePeer stops the stream to member id.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p, ok := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if ok {
		p.stop()
		t.lg.Info("removed peer", "peer-id", strconv.FormatUint(id, 16))
	}
}

// Send queues msgs for their peers. It never blocks: a message for a full
// queue or an unknown peer is dropped and the peer reported unreachable.
func (t *Transport) Send(msgs []raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i := range msgs {
		m := msgs[i]
		if m.To == 0 {
			continue
		}
		p, ok := t.peers[m.To]
		if !ok {
			t.lg.Debug("dropped message to unknown peer", "peer-id", strconv.FormatUint(m.To, 16), "type", m.Type.String())
			continue
		}
		if m.Type == raftpb.MsgSnap {
			p.sendSnapshot(m)
			continue
		}
		p.enqueue(m)
	}
}

// PeerActive reports whether the stream to member id is connected.
func (t *Transport) PeerActive(id uint64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, ok := t.peers[id]
	return ok && p.connected()
}

// ActiveSince is when the stream to member id connected, zero while it is
// down (etcd's Transporter.ActiveSince).
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, ok := t.peers[id]
	if !ok {
		return time.Time{}
	}
	if ns := p.activeSince.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// silentAfter is how long a stream may stay silent before it is taken for
// dead.
func (t *Transport) silentAfter() time.Duration {
	return silentIntervals * t.cfg.KeepaliveInterval
}

// Close stops every peer stream and waits for them.
func (t *Transport) Close() {
	t.cancel()
	t.goMu.Lock()
	t.closed = true
	t.goMu.Unlock()
	t.mu.Lock()
	peers := t.peers
	t.peers = make(map[uint64]*peer)
	t.mu.Unlock()
	for _, p := range peers {
		p.stop()
	}
	t.wg.Wait()
	t.client.CloseIdleConnections()
}

// goTracked runs fn in a goroutine that Close waits for; after Close it
// runs nothing and returns false.
func (t *Transport) goTracked(fn func()) bool {
	t.goMu.Lock()
	defer t.goMu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		fn()
	}()
	return true
}

// checkRequest validates the sender headers of a peer request.
func (t *Transport) checkRequest(r *http.Request) (uint64, error) {
	from, err := strconv.ParseUint(r.Header.Get(headerFrom), 16, 64)
	if err != nil || from == 0 {
		return 0, fmt.Errorf("transport: bad %s header %q", headerFrom, r.Header.Get(headerFrom))
	}
	cid, err := strconv.ParseUint(r.Header.Get(headerClusterID), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("transport: bad %s header %q", headerClusterID, r.Header.Get(headerClusterID))
	}
	if local := t.clusterID(); local != 0 && cid != local {
		return 0, fmt.Errorf("transport: cluster ID mismatch: peer %x sent %x, local is %x", from, cid, local)
	}
	return from, nil
}

func (t *Transport) setHeaders(h http.Header) {
	h.Set(headerFrom, strconv.FormatUint(t.cfg.ID, 16))
	h.Set(headerClusterID, strconv.FormatUint(t.clusterID(), 16))
	if len(t.cfg.PeerURLs) > 0 {
		h.Set(headerPeerURLs, strings.Join(t.cfg.PeerURLs, ","))
	}
}

// learnPeer adds the sender of a stream as a peer if it is not one yet and
// told its peer URLs: the local membership is behind (it lacks a member
// that joined since, or knows no member at all), and raft must be able to
// answer the sender, the leader among them, to catch up. Applying the
// membership later reconciles the peers.
func (t *Transport) learnPeer(from uint64, h http.Header) {
	urls := h.Get(headerPeerURLs)
	if urls == "" {
		return
	}
	t.mu.RLock()
	_, known := t.peers[from]
	t.mu.RUnlock()
	if known {
		return
	}
	t.lg.Info("peer not in the local membership yet; added from its stream", "peer-id", strconv.FormatUint(from, 16), "peer-urls", urls)
	t.AddPeer(from, strings.Split(urls, ","))
}
