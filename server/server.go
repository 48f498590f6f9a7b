package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"

	"github.com/lifeboat-dev/lifeboat/server/transport"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// ErrStopped is returned by requests to a stopping member.
var ErrStopped = errors.New("server: stopped")

// Server is one running member.
type Server struct {
	cfg *Config
	lg  *slog.Logger
	id  uint64
	reg *prometheus.Registry
	m   *metrics

	cluster *cluster
	alarms  *alarmStore
	sec     security
	gw      gateway

	node        raft.Node
	raftStorage *raft.MemoryStorage
	wal         *walkit.WAL
	snapshotter *snap.Snapshotter
	tr          *transport.Transport
	// savedHardState is the last hard state written (raft loop only).
	savedHardState raftpb.HardState

	// st holds the backend, the mvcc store and the lessor; a snapshot
	// received from the leader replaces all three.
	st atomic.Pointer[stores]

	// Raft state for readers.
	lead      atomic.Uint64
	term      atomic.Uint64
	committed atomic.Uint64
	applied   atomic.Uint64
	// leaderChanged is closed and replaced when the leader changes.
	leaderMu      sync.RWMutex
	leaderChanged chan struct{}

	reqIDs    *idGenerator
	waits     *waitRegistry
	applyWait *indexWaiter

	// Linearizable reads.
	readMu       sync.Mutex
	readNotifier *notifier
	readwaitc    chan struct{}
	readStatec   chan raft.ReadState

	applyc chan *toApply
	// msgSnapc carries raft's MsgSnaps to the apply loop (sendSnapshot).
	msgSnapc chan raftpb.Message

	grpc      *grpc.Server
	httpSrvs  []*http.Server
	listeners []func() error

	// started is closed once New is done starting the member, whether it
	// succeeded or not: a fatal error (fail) waits for it before it stops
	// the member, so that it never stops one that New is still starting.
	started  chan struct{}
	stopping chan struct{} // closed when the shutdown begins
	done     chan struct{} // closed when everything has stopped
	stopOnce sync.Once     // one shutdown, whoever asks: Stop, fail or New
	stopErr  error
	failOnce sync.Once
	wg       sync.WaitGroup
}

// New boots a member from cfg (new cluster, join, or restart from its data
// dir), starts raft, the peer transport and the client and peer listeners.
// It returns once the listeners serve; the member may still be electing.
func New(cfg *Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:           cfg,
		lg:            cfg.Logger,
		reg:           prometheus.NewRegistry(),
		raftStorage:   raft.NewMemoryStorage(),
		snapshotter:   snap.New(cfg.Logger, cfg.Layout().SnapDir()),
		waits:         newWaitRegistry(),
		readNotifier:  newNotifier(),
		readwaitc:     make(chan struct{}, 1),
		readStatec:    make(chan raft.ReadState, 1),
		applyc:        make(chan *toApply, 64),
		msgSnapc:      make(chan raftpb.Message, maxInFlightMsgSnap),
		leaderChanged: make(chan struct{}),
		started:       make(chan struct{}),
		stopping:      make(chan struct{}),
		done:          make(chan struct{}),
	}
	var err error
	if s.m, err = newMetrics(s.reg, cfg.Metrics == "extensive"); err != nil {
		return nil, err
	}
	if err := prepareDirs(cfg); err != nil {
		return nil, err
	}
	if err := s.setupSecurity(); err != nil {
		return nil, err
	}
	bs, err := s.boot()
	if err != nil {
		s.closeStores()
		return nil, err
	}
	s.id = bs.id
	s.wal = bs.wal
	if cfg.UnsafeNoFsync {
		s.wal.SetUnsafeNoFsync()
	}
	s.lg = s.lg.With("local-member-id", schema.FormatID(s.id))
	s.reqIDs = newIDGenerator(s.id, time.Now())
	err = s.start(bs)
	if err != nil {
		// A loop that start ran may have failed already: its stop waits
		// for started, and then finds this one done.
		_ = s.stop(context.Background(), nil, nil)
	}
	close(s.started)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// boot picks the boot path and opens the stores.
func (s *Server) boot() (*bootState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if walkit.Exist(s.cfg.Layout().WALDir()) {
		// bootRestart opens the stores once it knows the snapshot.
		return s.bootRestart()
	}
	if err := s.openStores(0); err != nil {
		return nil, err
	}
	if s.cfg.NewCluster {
		return s.bootNew()
	}
	return s.bootJoin(ctx)
}

// start wires membership, transport, raft and the listeners.
func (s *Server) start(bs *bootState) error {
	st := s.st.Load()
	cl, err := st.loadCluster(bs.clusterID)
	if err != nil {
		return err
	}
	s.cluster = cl
	if len(cl.Members()) == 0 && bs.restart && !raft.IsEmptySnap(bs.snapshot) {
		// A 3.5-style data dir keeps membership in the .snap only.
		if err := s.membershipFromSnapshot(bs.snapshot); err != nil {
			return err
		}
	}
	if s.alarms, err = loadAlarms(st.be); err != nil {
		return err
	}
	replay, err := s.replayCluster(bs.snapshot)
	if err != nil {
		return err
	}
	s.applied.Store(bs.snapshot.Metadata.Index)
	s.applyWait = newIndexWaiter(bs.snapshot.Metadata.Index)
	rc := &raft.Config{
		ID:                        s.id,
		ElectionTick:              s.cfg.electionTicks(),
		HeartbeatTick:             1,
		Storage:                   s.raftStorage,
		Applied:                   bs.snapshot.Metadata.Index,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           4096 / 8,
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   true,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{s.lg.With("component", "raft")},
	}
	if bs.restart {
		s.node = raft.RestartNode(rc)
	} else {
		s.node = raft.StartNode(rc, bs.peers)
	}
	if s.tr, err = transport.New(transport.Config{
		ID: s.id, ClusterID: bs.clusterID, PeerURLs: s.cfg.AdvertisePeerURLs, Layout: s.cfg.Layout(), Raft: (*raftHandler)(s), Logger: s.lg,
		TLS: s.peerDialTLS(), Registerer: s.reg,
	}); err != nil {
		return err
	}
	for _, m := range bs.members {
		s.tr.AddPeer(m.ID, m.PeerURLs)
	}
	for _, m := range cl.Members() {
		s.tr.AddPeer(m.ID, m.PeerURLs)
	}
	if err := s.listenPeers(); err != nil {
		return err
	}
	s.wg.Add(3)
	go s.runRaft(bs.snapshot)
	go s.runApply(bs.snapshot, replay)
	go s.linearizableReadLoop()
	s.startBackground()
	if err := s.listenClients(); err != nil {
		return err
	}
	s.lg.Info("member started", "name", s.cfg.Name, "cluster-id", schema.FormatID(bs.clusterID),
		"client-urls", s.cfg.AdvertiseClientURLs, "peer-urls", s.cfg.AdvertisePeerURLs)
	return nil
}

// ID is the member ID.
func (s *Server) ID() uint64 { return s.id }

// ClusterID is the cluster ID.
func (s *Server) ClusterID() uint64 { return s.cluster.ID() }

// Leader is the leader's member ID, 0 if none is known.
func (s *Server) Leader() uint64 { return s.lead.Load() }

// Done is closed once the member has stopped (after Stop, or a fatal error).
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop transfers leadership if this member leads a multi-member cluster,
// then stops serving and closes the stores. It is safe to call twice.
func (s *Server) Stop(ctx context.Context) error {
	return s.stop(ctx, func() { s.transferLeadershipOnStop(ctx) }, nil)
}

// fail stops the member after an error it cannot recover from, such as a
// WAL write that failed, once New is done with it.
func (s *Server) fail(err error) {
	s.failOnce.Do(func() {
		s.lg.Error("member stopping after a fatal error", "error", err)
		go func() {
			<-s.started
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.stop(ctx, nil, err)
		}()
	})
}

// errRemoved stops a member removed from the cluster.
var errRemoved = errors.New("server: the member has been permanently removed from the cluster")

// removedStopDelay is how long a member that applied its own removal keeps
// running, as etcd's does, so that its answer to the MemberRemove (sent to
// it) goes out before it stops.
const removedStopDelay = time.Second

// failAfter is fail after d, unless the member stops first.
func (s *Server) failAfter(d time.Duration, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		s.fail(err)
	case <-s.stopping:
	}
}

// stop shuts the member down once, whoever asks first (Stop, fail, or New
// when the start fails): first runs before the shutdown, and cause joins
// its errors. Every caller waits for the shutdown and gets its outcome.
func (s *Server) stop(ctx context.Context, first func(), cause error) error {
	s.stopOnce.Do(func() {
		if first != nil {
			first()
		}
		s.stopErr = errors.Join(cause, s.shutdown(ctx))
	})
	<-s.done
	return s.stopErr
}

// shutdown stops every part in dependency order and closes done.
func (s *Server) shutdown(ctx context.Context) error {
	close(s.stopping)
	var errs []error
	if s.grpc != nil {
		stopped := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.grpc.Stop()
		case <-time.After(2 * time.Second):
			s.grpc.Stop()
		}
	}
	for _, h := range s.httpSrvs {
		_ = h.Close()
	}
	for _, closeLn := range s.listeners {
		_ = closeLn()
	}
	if s.tr != nil {
		s.tr.Close()
	}
	if s.node != nil {
		s.node.Stop()
	}
	s.wg.Wait()
	if s.wal != nil {
		if err := s.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("server: close WAL: %w", err))
		}
	}
	if err := s.closeStores(); err != nil {
		errs = append(errs, err)
	}
	close(s.done)
	s.lg.Info("member stopped")
	return errors.Join(errs...)
}

// transferLeadershipOnStop hands leadership to the most up-to-date voter.
func (s *Server) transferLeadershipOnStop(ctx context.Context) {
	if s.node == nil || s.lead.Load() != s.id || s.cluster.VotingMembers() < 2 {
		return
	}
	target := s.bestTransferee()
	if target == 0 {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.ElectionMs)*time.Millisecond*2)
	defer cancel()
	if err := s.moveLeader(tctx, target); err != nil {
		s.lg.Warn("leadership transfer on stop failed", "transferee", schema.FormatID(target), "error", err)
		return
	}
	s.lg.Info("transferred leadership on stop", "transferee", schema.FormatID(target))
}

// bestTransferee is the connected voter with the highest match index, 0
// if none: a peer the transport cannot reach (stopped, or stopping) could
// not take leadership.
func (s *Server) bestTransferee() uint64 {
	st := s.node.Status()
	var best, match uint64
	for id, pr := range st.Progress {
		if id == s.id || pr.IsLearner || !s.tr.PeerActive(id) {
			continue
		}
		if best == 0 || pr.Match > match {
			best, match = id, pr.Match
		}
	}
	return best
}

// moveLeader transfers leadership to target and waits for it.
func (s *Server) moveLeader(ctx context.Context, target uint64) error {
	s.node.TransferLeadership(ctx, s.id, target)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.lead.Load() != target {
		select {
		case <-ctx.Done():
			return fmt.Errorf("server: leadership transfer to %s: %w", schema.FormatID(target), ctx.Err())
		case <-s.stopping:
			return ErrStopped
		case <-t.C:
		}
	}
	return nil
}

// raftHandler is the server as the transport sees it.
type raftHandler Server

func (h *raftHandler) Process(ctx context.Context, m raftpb.Message) error {
	s := (*Server)(h)
	if s.cluster.IsRemoved(m.From) {
		return fmt.Errorf("server: message from removed member %s", schema.FormatID(m.From))
	}
	return s.node.Step(ctx, m)
}

func (h *raftHandler) IsIDRemoved(id uint64) bool { return (*Server)(h).cluster.IsRemoved(id) }

func (h *raftHandler) RemovedFromCluster() {
	(*Server)(h).fail(errRemoved)
}

func (h *raftHandler) ReportUnreachable(id uint64) { (*Server)(h).node.ReportUnreachable(id) }

func (h *raftHandler) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	(*Server)(h).node.ReportSnapshot(id, status)
}
