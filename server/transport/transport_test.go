package transport

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

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

func (r *recorder) messages() []raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raftpb.Message(nil), r.got...)
}

// serve starts a transport for id on a free port and returns its URL.
func serve(t *testing.T, id, clusterID uint64, rec *recorder) (*Transport, string) {
	t.Helper()
	layout := datadir.New(t.TempDir(), "")
	if err := os.MkdirAll(layout.SnapDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	tr, err := New(Config{ID: id, ClusterID: clusterID, PeerURLs: []string{u}, Layout: layout, Raft: rec})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: tr.Handler(), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		tr.Close()
		srv.Close()
	})
	return tr, u
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
	a, _ := serve(t, 1, 7, recA)
	_, urlB := serve(t, 2, 7, recB)
	a.AddPeer(2, []string{urlB})
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
	leader, _ := serve(t, 1, 7, recLeader)
	behind, urlBehind := serve(t, 2, 7, recBehind) // knows no peer
	leader.AddPeer(2, []string{urlBehind})
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
			_, u := serve(t, 2, 99, newRecorder(nil))
			return u
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(nil)
			a, _ := serve(t, 1, 7, rec)
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
	a, _ := serve(t, 1, 7, recA)
	b, urlB := serve(t, 2, 7, recB)
	a.AddPeer(2, []string{urlB})
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
	gone, _ := serve(t, removedID, 7, rec)
	_, url := serve(t, 2, 7, newRecorder(nil))
	gone.AddPeer(2, []string{url})
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
		tr, _ := serve(t, 1, 7, rec)
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
		// Every snapshot send is answered once, as failed: the ones Close
		// cut short (port 1 refuses) and the ones refused after it.
		tr.wg.Wait()
		rec.mu.Lock()
		statuses := append([]raft.SnapshotStatus(nil), rec.snapStatus...)
		rec.mu.Unlock()
		if len(statuses) != peers {
			t.Fatalf("round %d: %d snapshot reports for %d sends", round, len(statuses), peers)
		}
		for _, st := range statuses {
			if st != raft.SnapshotFailure {
				t.Fatalf("round %d: a snapshot to a closed transport's peer reported %v", round, st)
			}
		}
	}
}
