package server

import (
	"context"
	"encoding/binary"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
)

// notifier wakes every read that joined one ReadIndex round.
type notifier struct {
	c   chan struct{}
	err error
}

func newNotifier() *notifier { return &notifier{c: make(chan struct{})} }

func (n *notifier) notify(err error) {
	n.err = err
	close(n.c)
}

// readIndexRetry is how long a ReadIndex round waits before it asks again
// (raft drops a ReadIndex it cannot serve, e.g. during an election).
const readIndexRetry = 500 * time.Millisecond

// bugLocalReads is set only by bug_localread.go, a deliberate bug behind
// the build tag lifeboat_bug_localread (see robustness/).
var bugLocalReads bool

// linearizableReadNotify returns once this member has applied everything
// committed when it was called. Concurrent callers share one ReadIndex round.
func (s *Server) linearizableReadNotify(ctx context.Context) error {
	if bugLocalReads {
		return nil
	}
	s.readMu.Lock()
	nc := s.readNotifier
	s.readMu.Unlock()
	select {
	case s.readwaitc <- struct{}{}:
	default:
	}
	select {
	case <-nc.c:
		return nc.err
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-s.stopping:
		return rpctypes.ErrGRPCStopped
	}
}

// linearizableReadLoop serves rounds of ReadIndex for linearizableReadNotify.
func (s *Server) linearizableReadLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.readwaitc:
		case <-s.stopping:
			return
		}
		s.readMu.Lock()
		nr := s.readNotifier
		s.readNotifier = newNotifier()
		s.readMu.Unlock()

		index, err := s.readIndex()
		if err != nil {
			nr.notify(err)
			continue
		}
		select {
		case <-s.applyWait.wait(index):
			nr.notify(nil)
		case <-s.stopping:
			nr.notify(rpctypes.ErrGRPCStopped)
			return
		}
	}
}

// readIndex asks raft for the commit index that a read must wait for.
func (s *Server) readIndex() (uint64, error) {
	id := s.reqIDs.next()
	rctx := binary.BigEndian.AppendUint64(nil, id)
	leaderChanged := s.leaderChangedNotify()
	timeout := time.NewTimer(s.requestTimeout())
	defer timeout.Stop()
	retry := time.NewTicker(readIndexRetry)
	defer retry.Stop()
	send := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
		defer cancel()
		if err := s.node.ReadIndex(ctx, rctx); err != nil {
			return rpctypes.ErrGRPCStopped
		}
		return nil
	}
	if err := send(); err != nil {
		return 0, err
	}
	for {
		select {
		case rs := <-s.readStatec:
			if len(rs.RequestCtx) == 8 && binary.BigEndian.Uint64(rs.RequestCtx) == id {
				return rs.Index, nil
			}
			// A stale answer of an earlier round: keep waiting.
		case <-retry.C:
			if err := send(); err != nil {
				return 0, err
			}
		case <-leaderChanged:
			return 0, rpctypes.ErrGRPCLeaderChanged
		case <-timeout.C:
			return 0, rpctypes.ErrGRPCTimeout
		case <-s.stopping:
			return 0, rpctypes.ErrGRPCStopped
		}
	}
}

// deliverReadState hands the newest read state to the read loop, replacing
// an unread older one.
func (s *Server) deliverReadState(rs raft.ReadState) {
	for {
		select {
		case s.readStatec <- rs:
			return
		default:
		}
		select {
		case <-s.readStatec:
		default:
		}
	}
}

// requestTimeout is etcd's: 5 s plus two election timeouts.
func (s *Server) requestTimeout() time.Duration {
	return 5*time.Second + 2*time.Duration(s.cfg.ElectionMs)*time.Millisecond
}

// ctxErr maps a context error to etcd's gRPC error.
func ctxErr(ctx context.Context) error {
	if ctx.Err() == context.Canceled {
		return rpctypes.ErrGRPCCanceled
	}
	return rpctypes.ErrGRPCTimeout
}
