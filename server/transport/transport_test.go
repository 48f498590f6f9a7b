package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
	"github.com/lifeboat-dev/lifeboat/internal/netproxy"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
)

// recorder is the receiving end of a transport in tests: it keeps what the
// transport hands to raft.
type recorder struct {
	mu          sync.Mutex
	got         []raftpb.Message
	unreachable map[uint64]int
	snapStatus  []raft.SnapshotStatus
	db          []byte
	removed     bool
}

func newRecorder(db []byte) *recorder {
	return &recorder{unreachable: make(map[uint64]int), db: db}
}

func (r *recorder) Process(_ context.Context, m raftpb.Message) error {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
	return nil
}

func (r *recorder) ReportUnreachable(id uint64) {
	r.mu.Lock()
	r.unreachable[id]++
	r.mu.Unlock()
}

func (r *recorder) ReportSnapshot(_ uint64, s raft.SnapshotStatus) {
	r.mu.Lock()
	r.snapStatus = append(r.snapStatus, s)
	r.mu.Unlock()
}

func (r *recorder) SnapshotDB(raftpb.Message) (io.ReadCloser, int64, error) {
	return io.NopCloser(bytes.NewReader(r.db)), int64(len(r.db)), nil
}

func (r *recorder) IsIDRemoved(id uint64) bool { return id == removedID }

func (r *recorder) RemovedFromCluster() {
	r.mu.Lock()
	r.removed = true
	r.mu.Unlock()
}

// removedID is a member ID the recorders treat as removed.
const removedID = 666

func (r *recorder) snapshotStatuses() []raft.SnapshotStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raft.SnapshotStatus(nil), r.snapStatus...)
}

func (r *recorder) messages() []raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raftpb.Message(nil), r.got...)
}

// member is a transport served on a free port, with what its server saw.
type member struct {
	*Transport
	url string

	streams atomic.Int64 // stream requests served
	ended   atomic.Int64 // stream requests whose handler returned

	mu    sync.Mutex
	reqs  map[string]int // per "proto path" (as "HTTP/1.1 /lifeboat/raft/stream")
	http2 int            // requests over HTTP/2
}

func (m *member) requests() (map[string]int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.reqs), m.http2
}

// options configure a test member.
type options struct {
	// tls serves https with its server certificate, and dials peers
	// trusting its CA; nil serves http.
	tls *interoptest.TLS
	// keepalive is Config.KeepaliveInterval (the default if 0).
	keepalive time.Duration
}

// serve starts a transport for id on a free port. Its server also speaks
// HTTP/2 (h2c, and h2 over TLS), so that a client that offers it would be
// seen using it.
func serve(t *testing.T, id, clusterID uint64, rec *recorder) *member {
	t.Helper()
	return serveWith(t, id, clusterID, rec, options{})
}

func serveWith(t *testing.T, id, clusterID uint64, rec *recorder, o options) *member {
	t.Helper()
	layout := datadir.New(t.TempDir(), "")
	if err := os.MkdirAll(layout.SnapDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	var dialTLS func(string) *tls.Config
	if o.tls != nil {
		scheme = "https"
		cert, err := tls.LoadX509KeyPair(o.tls.CertFile, o.tls.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
		pem, err := os.ReadFile(o.tls.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		// It offers h2, as lifeboat's peer TLS configuration once did:
		// the transport must not.
		dialTLS = func(host string) *tls.Config {
			return &tls.Config{RootCAs: pool, ServerName: host, NextProtos: []string{"h2"}}
		}
	}
	m := &member{url: scheme + "://" + ln.Addr().String(), reqs: make(map[string]int)}
	m.Transport, err = New(Config{ID: id, ClusterID: clusterID, PeerURLs: []string{m.url}, Layout: layout, Raft: rec,
		TLS: dialTLS, KeepaliveInterval: o.keepalive})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	h := m.Handler()
	srv := &http.Server{Protocols: new(http.Protocols), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.reqs[r.Proto+" "+r.URL.Path]++
		if r.ProtoMajor == 2 {
			m.http2++
		}
		m.mu.Unlock()
		if r.URL.Path == StreamPath {
			m.streams.Add(1)
			defer m.ended.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		m.Close()
		srv.Close()
	})
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStreamDeliversInOrder(t *testing.T) {
	recA, recB := newRecorder(nil), newRecorder(nil)
	a := serve(t, 1, 7, recA)
	b := serve(t, 2, 7, recB)
	a.AddPeer(2, []string{b.url})
	waitFor(t, "stream up", func() bool { return a.PeerActive(2) })
	if a.ActiveSince(2).IsZero() || !a.ActiveSince(3).IsZero() {
		t.Fatalf("active since: peer 2 %v, unknown peer 3 %v", a.ActiveSince(2), a.ActiveSince(3))
	}

	const n = 2000
	for i := range n {
		a.Send([]raftpb.Message{{Type: raftpb.MsgApp, From: 1, To: 2, Index: uint64(i), Entries: []raftpb.Entry{{Index: uint64(i), Data: []byte("payload")}}}})
		if i%500 == 499 {
			waitFor(t, "queue drained", func() bool { return len(recB.messages()) >= i-100 })
		}
	}
	waitFor(t, "all messages", func() bool { return len(recB.messages()) == n })
	for i, m := range recB.messages() {
		if m.Index != uint64(i) || string(m.Entries[0].Data) != "payload" {
			t.Fatalf("message %d: got index %d data %q", i, m.Index, m.Entries[0].Data)
		}
	}
}

// TestMemberBehindAnswersUnknownSender is a regression test for a bug
// the robustness suite's failpoint scenarios found: a member that joined
// the cluster and restarted before it received the membership (in a
// snapshot) knew no peer, so it could not answer the leader's heartbeats,
// the leader never learnt it was back, and it never caught up. As etcd's
// rafthttp, a member learns the peer URLs of a sender it does not know
// from its stream.
func TestMemberBehindAnswersUnknownSender(t *testing.T) {
	recLeader, recBehind := newRecorder(nil), newRecorder(nil)
	leader := serve(t, 1, 7, recLeader)
	behind := serve(t, 2, 7, recBehind) // knows no peer
	leader.AddPeer(2, []string{behind.url})
	waitFor(t, "stream up", func() bool { return leader.PeerActive(2) })
	leader.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	waitFor(t, "the heartbeat", func() bool { return len(recBehind.messages()) > 0 })
	waitFor(t, "the answer", func() bool {
		behind.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1}})
		return len(recLeader.messages()) > 0
	})
}

func TestUnreachableAndMismatch(t *testing.T) {
	tests := []struct {
		name    string
		peerURL func(t *testing.T) string
	}{
		{"nobody listening", func(t *testing.T) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			u := "http://" + ln.Addr().String()
			ln.Close()
			return u
		}},
		{"other cluster", func(t *testing.T) string {
			return serve(t, 2, 99, newRecorder(nil)).url
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(nil)
			a := serve(t, 1, 7, rec)
			a.AddPeer(2, []string{tc.peerURL(t)})
			waitFor(t, "unreachable report", func() bool {
				a.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
				rec.mu.Lock()
				defer rec.mu.Unlock()
				return rec.unreachable[2] > 0
			})
			if a.PeerActive(2) {
				t.Fatalf("peer counted active")
			}
		})
	}
}

func TestSnapshotCarriesDB(t *testing.T) {
	db := bytes.Repeat([]byte("lifeboat-db "), 100000)
	recA, recB := newRecorder(db), newRecorder(nil)
	a := serve(t, 1, 7, recA)
	b := serve(t, 2, 7, recB)
	a.AddPeer(2, []string{b.url})
	snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 42, Term: 3}, Data: []byte("{}")}
	a.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &snap}})
	waitFor(t, "snapshot status", func() bool {
		recA.mu.Lock()
		defer recA.mu.Unlock()
		return len(recA.snapStatus) == 1
	})
	if recA.snapStatus[0] != raft.SnapshotFinish {
		t.Fatalf("snapshot status %v", recA.snapStatus[0])
	}
	got := recB.messages()
	if len(got) != 1 || got[0].Type != raftpb.MsgSnap || got[0].Snapshot.Metadata.Index != 42 {
		t.Fatalf("received %+v", got)
	}
	b2, err := os.ReadFile(b.cfg.Layout.ReceivedDBPath(42))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b2, db) {
		t.Fatalf("received db differs: %d bytes, want %d", len(b2), len(db))
	}
}

func TestRemovedMemberIsTold(t *testing.T) {
	rec := newRecorder(nil)
	gone := serve(t, removedID, 7, rec)
	gone.AddPeer(2, []string{serve(t, 2, 7, newRecorder(nil)).url})
	waitFor(t, "removal report", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.removed
	})
}

// Peers learned and snapshots sent while the transport closes start no
// goroutine that Close misses: CI's race run once saw a stream handler
// add a peer during Close's wait ("WaitGroup is reused before previous
// Wait has returned"), which panicked the member's shutdown.
func TestCloseWhilePeersAreAdded(t *testing.T) {
	for round := range 20 {
		rec := newRecorder([]byte("db"))
		tr := serve(t, 1, 7, rec).Transport
		const peers = 50
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := uint64(2); id < 2+peers; id++ {
				tr.AddPeer(id, []string{"http://127.0.0.1:1"})
				tr.Send([]raftpb.Message{{Type: raftpb.MsgSnap, To: id, Snapshot: &raftpb.Snapshot{}}})
			}
		}()
		tr.Close()
		wg.Wait()
		// A send reaches a peer unless Close dropped the peer first; each
		// that reached one is answered once, as failed (port 1 refuses).
		tr.wg.Wait()
		if st := rec.snapshotStatuses(); len(st) > peers || slices.ContainsFunc(st, func(s raft.SnapshotStatus) bool { return s != raft.SnapshotFailure }) {
			t.Fatalf("round %d: snapshot reports %v for %d sends, want at most one failure each", round, st, peers)
		}
		// After Close a peer learned starts nothing, and a snapshot to it
		// is refused at once, as failed.
		before := len(rec.snapshotStatuses())
		tr.AddPeer(1000, []string{"http://127.0.0.1:1"})
		tr.Send([]raftpb.Message{{Type: raftpb.MsgSnap, To: 1000, Snapshot: &raftpb.Snapshot{}}})
		if st := rec.snapshotStatuses(); len(st) != before+1 || st[before] != raft.SnapshotFailure {
			t.Fatalf("round %d: a snapshot after Close: reports %v, want one more failure", round, st[before:])
		}
		tr.wg.Wait()
	}
}

func (r *recorder) unreachableCount(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[id]
}

func (r *recorder) snapshotStatus() []raft.SnapshotStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raft.SnapshotStatus(nil), r.snapStatus...)
}

// TestPeersSpeakHTTP1 runs two members over http and https, whose servers
// also speak HTTP/2: every request (streams both ways, a snapshot, the
// probes) comes over HTTP/1.1, as etcd's peers speak. etcd's e2e
// TestAuthority takes the first HTTP/2 request a member logs for a
// client's.
func TestPeersSpeakHTTP1(t *testing.T) {
	tests := []struct {
		name string
		tls  *interoptest.TLS
	}{
		{"cleartext", nil},
		{"TLS", interoptest.NewTLS(t)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := bytes.Repeat([]byte("db "), 100000)
			recA, recB := newRecorder(db), newRecorder(nil)
			a := serveWith(t, 1, 7, recA, options{tls: tc.tls})
			b := serveWith(t, 2, 7, recB, options{tls: tc.tls})
			a.AddPeer(2, []string{b.url})
			b.AddPeer(1, []string{a.url})
			// A stream is active once its response came, while its body
			// is still being written: nothing was sent on it yet.
			waitFor(t, "streams up", func() bool { return a.PeerActive(2) && b.PeerActive(1) })
			a.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
			b.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1}})
			waitFor(t, "a message each way", func() bool { return len(recA.messages()) == 1 && len(recB.messages()) == 1 })
			snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 1}}
			a.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &snap}})
			waitFor(t, "snapshot sent", func() bool { return len(recA.snapshotStatus()) == 1 })
			if st := recA.snapshotStatus()[0]; st != raft.SnapshotFinish {
				t.Fatalf("snapshot status %v", st)
			}
			for _, m := range []*member{a, b} {
				reqs, http2 := m.requests()
				if http2 != 0 {
					t.Errorf("%s: %d requests over HTTP/2: %v", m.url, http2, reqs)
				}
				for _, path := range []string{StreamPath, ProbePath} {
					if reqs["HTTP/1.1 "+path] == 0 {
						t.Errorf("%s: no HTTP/1.1 request to %s: %v", m.url, path, reqs)
					}
				}
			}
			if reqs, _ := b.requests(); reqs["HTTP/1.1 "+SnapshotPath] != 1 {
				t.Errorf("%s: snapshot not over HTTP/1.1: %v", b.url, reqs)
			}
		})
	}
}

// TestIdleStreamSurvives leaves a stream without messages for many times
// the silence that ends one (followers send each other nothing): the
// keepalives of both ends keep it up.
func TestIdleStreamSurvives(t *testing.T) {
	const keepalive = 50 * time.Millisecond
	recB := newRecorder(nil)
	a := serveWith(t, 1, 7, newRecorder(nil), options{keepalive: keepalive})
	b := serveWith(t, 2, 7, recB, options{keepalive: keepalive})
	a.AddPeer(2, []string{b.url})
	waitFor(t, "stream up", func() bool { return a.PeerActive(2) })
	since := a.ActiveSince(2)
	// Each keepalive is one byte: 4*silentIntervals of them span four
	// times the silence after which either end gives the stream up.
	received := b.m.receivedBytes.WithLabelValues("1")
	waitFor(t, "keepalives", func() bool { return testutil.ToFloat64(received) >= 4*silentIntervals })
	if n, ended := b.streams.Load(), b.ended.Load(); n != 1 || ended != 0 {
		t.Fatalf("%d streams served, %d ended; want the first one still up", n, ended)
	}
	if got := a.ActiveSince(2); !got.Equal(since) {
		t.Fatalf("stream reconnected: active since %v, was %v", got, since)
	}
	a.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	waitFor(t, "a message", func() bool { return len(recB.messages()) == 1 })
}

// proxy puts a netproxy node in front of the member at url and returns the
// proxy's URL.
func proxy(t *testing.T, node, url string) (*netproxy.Network, string) {
	t.Helper()
	nw := netproxy.New(nil)
	t.Cleanup(func() {
		nw.Heal() // a proxy holding bytes does not close
		nw.Close()
	})
	px, err := nw.Proxy(node, "127.0.0.1:0", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return nw, "http://" + px.Addr()
}

// hung is a peer whose handlers never answer, until the test ends.
type hung struct {
	url     string
	streams atomic.Int64 // stream requests received
}

func hungPeer(t *testing.T) *hung {
	h := &hung{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if r.URL.Path == StreamPath {
			h.streams.Add(1)
		}
		<-release
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	h.url = srv.URL
	return h
}

// TestSilentPeerIsNoticed: a peer that stops answering ends the stream at
// both ends (the HTTP/2 pings of earlier versions did that), and the
// sender connects again once the peer answers.
func TestSilentPeerIsNoticed(t *testing.T) {
	const keepalive = 50 * time.Millisecond
	t.Run("network stops carrying bytes", func(t *testing.T) {
		recB := newRecorder(nil)
		a := serveWith(t, 1, 7, newRecorder(nil), options{keepalive: keepalive})
		b := serveWith(t, 2, 7, recB, options{keepalive: keepalive})
		nw, url := proxy(t, "b", b.url)
		a.AddPeer(2, []string{url})
		waitFor(t, "stream up", func() bool { return a.PeerActive(2) })
		since := a.ActiveSince(2)
		nw.Set(netproxy.Anyone, "b", netproxy.Fault{Blackhole: true})
		nw.Set("b", netproxy.Anyone, netproxy.Fault{Blackhole: true})
		waitFor(t, "both ends to give the stream up", func() bool { return !a.PeerActive(2) && b.ended.Load() == 1 })
		nw.Heal()
		waitFor(t, "a new stream", func() bool { return a.PeerActive(2) && a.ActiveSince(2).After(since) })
		a.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
		waitFor(t, "a message", func() bool { return len(recB.messages()) == 1 })
	})
	t.Run("peer never answers the request", func(t *testing.T) {
		rec := newRecorder(nil)
		a := serveWith(t, 1, 7, rec, options{keepalive: keepalive})
		calls := hungPeer(t)
		a.AddPeer(2, []string{calls.url})
		// Each attempt gives up and reports the peer unreachable, then
		// tries again.
		waitFor(t, "attempts given up", func() bool { return rec.unreachableCount(2) >= 3 && calls.streams.Load() >= 3 })
	})
	t.Run("closing while the peer never answers", func(t *testing.T) {
		// No watchdog fires during the test: Close itself must end the
		// request that waits for an answer.
		a := serveWith(t, 1, 7, newRecorder(nil), options{keepalive: time.Hour})
		calls := hungPeer(t)
		a.AddPeer(2, []string{calls.url})
		waitFor(t, "the stream request", func() bool { return calls.streams.Load() == 1 })
		closed := make(chan struct{})
		go func() {
			a.Close()
			close(closed)
		}()
		waitFor(t, "Close", func() bool {
			select {
			case <-closed:
				return true
			default:
				return false
			}
		})
	})
	t.Run("snapshot the peer stops taking", func(t *testing.T) {
		// Far more than the socket buffers on both sides of the proxy hold.
		db := bytes.Repeat([]byte("0123456789abcdef"), 4<<20)
		recA := newRecorder(db)
		a := serveWith(t, 1, 7, recA, options{keepalive: keepalive})
		b := serveWith(t, 2, 7, newRecorder(nil), options{keepalive: keepalive})
		nw, url := proxy(t, "b", b.url)
		a.AddPeer(2, []string{url})
		waitFor(t, "stream up", func() bool { return a.PeerActive(2) })
		nw.Set(netproxy.Anyone, "b", netproxy.Fault{Blackhole: true})
		snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 1}}
		a.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &snap}})
		waitFor(t, "snapshot given up", func() bool { return len(recA.snapshotStatus()) == 1 })
		if st := recA.snapshotStatus()[0]; st != raft.SnapshotFailure {
			t.Fatalf("snapshot status %v", st)
		}
	})
}
