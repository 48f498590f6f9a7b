package server

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/lifeboat-dev/lifeboat/server/mvcc"
)

// progressInterval is how often watchers created with progress_notify get
// an empty response, as etcd's default.
var progressInterval = 10 * time.Minute

type watchServer struct {
	pb.UnimplementedWatchServer
	s *Server
}

// watchSession is one gRPC Watch stream over one mvcc WatchStream. The
// receive loop turns requests into watch operations; the send loop is the
// only writer of the gRPC stream, so a watcher's "created" response always
// goes out before its events.
// The WatchStream outlives a snapshot installed from the leader: the new
// store adopts it (mvcc.Store.AdoptWatchers), so its channel stays open and
// Rev, Watch, Cancel and progress requests reach the current store.
type watchSession struct {
	s    *Server
	gs   pb.Watch_WatchServer
	ws   *mvcc.WatchStream
	ctrl chan *pb.WatchResponse

	mu sync.Mutex
	// progress holds the watchers created with progress_notify.
	progress map[mvcc.WatchID]bool
	// progressAll is a pending RequestProgressAll not served yet.
	progressAll bool
}

func (w *watchServer) Watch(gs pb.Watch_WatchServer) error {
	// A stream opened on stores that a snapshot has just replaced opens
	// on the new ones (NewWatchStream follows the adoption).
	st := w.s.st.Load()
	if st == nil {
		return rpctypes.ErrGRPCStopped
	}
	sess := &watchSession{
		s:        w.s,
		gs:       gs,
		ws:       st.kv.NewWatchStream(),
		ctrl:     make(chan *pb.WatchResponse, 16),
		progress: make(map[mvcc.WatchID]bool),
	}
	defer sess.ws.Close()
	recvErr := make(chan error, 1)
	go func() {
		// As etcd: a client that closes its side (the HTTP gateway, once
		// it has sent the request body) still gets its events until the
		// stream ends.
		if err := sess.recvLoop(); !errors.Is(err, io.EOF) {
			recvErr <- err
		}
	}()
	return sess.sendLoop(recvErr)
}

// recvLoop serves the client's requests until the stream ends.
func (sess *watchSession) recvLoop() error {
	for {
		req, err := sess.gs.Recv()
		if err != nil {
			return err
		}
		switch {
		case req.GetCreateRequest() != nil:
			sess.create(req.GetCreateRequest())
		case req.GetCancelRequest() != nil:
			id := mvcc.WatchID(req.GetCancelRequest().WatchId)
			if err := sess.ws.Cancel(id); err == nil {
				sess.mu.Lock()
				delete(sess.progress, id)
				sess.mu.Unlock()
				sess.control(&pb.WatchResponse{Header: sess.s.header(&pb.ResponseHeader{Revision: sess.ws.Rev()}), WatchId: int64(id), Canceled: true})
			}
		case req.GetProgressRequest() != nil:
			if !sess.ws.RequestProgressAll() {
				sess.mu.Lock()
				sess.progressAll = true
				sess.mu.Unlock()
			}
		}
	}
}

func (sess *watchSession) create(c *pb.WatchCreateRequest) {
	key, end := c.Key, c.RangeEnd
	if len(key) == 0 {
		key = []byte{0}
	}
	var filters []mvcc.FilterFunc
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			filters = append(filters, func(e mvccpb.Event) bool { return e.Type == mvccpb.PUT })
		case pb.WatchCreateRequest_NODELETE:
			filters = append(filters, func(e mvccpb.Event) bool { return e.Type == mvccpb.DELETE })
		}
	}
	rev := sess.ws.Rev()
	if reason := sess.s.watchDenied(sess.gs.Context(), key, c.RangeEnd); reason != "" {
		// As etcd: a created and canceled response with the reason.
		sess.control(&pb.WatchResponse{Header: sess.s.header(&pb.ResponseHeader{Revision: rev}), WatchId: -1,
			Created: true, Canceled: true, CancelReason: reason})
		return
	}
	id, err := sess.ws.Watch(mvcc.WatchID(c.WatchId), key, end, c.StartRevision, c.PrevKv, filters...)
	resp := &pb.WatchResponse{
		Header:  sess.s.header(&pb.ResponseHeader{Revision: rev}),
		WatchId: int64(id),
		Created: true,
	}
	if err != nil {
		resp.WatchId = c.WatchId
		if resp.WatchId == 0 {
			resp.WatchId = int64(mvcc.ProgressWatchID)
		}
		resp.Canceled = true
		resp.CancelReason = err.Error()
	} else if c.ProgressNotify {
		sess.mu.Lock()
		sess.progress[id] = true
		sess.mu.Unlock()
	}
	sess.control(resp)
}

func (sess *watchSession) control(r *pb.WatchResponse) {
	select {
	case sess.ctrl <- r:
	case <-sess.gs.Context().Done():
	}
}

// sendLoop writes control responses and the store's events to the client.
// Events of a watcher whose "created" response has not gone out yet wait.
func (sess *watchSession) sendLoop(recvErr <-chan error) error {
	created := make(map[mvcc.WatchID]bool)
	pending := make(map[mvcc.WatchID][]*pb.WatchResponse)
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	for {
		select {
		case err := <-recvErr:
			return err
		case <-sess.s.stopping:
			return rpctypes.ErrGRPCStopped
		case <-sess.gs.Context().Done():
			// As etcd: a stream the client canceled ends with Canceled,
			// which grpc_server_handled_total counts.
			if err := sess.gs.Context().Err(); !errors.Is(err, context.Canceled) {
				return err
			}
			return rpctypes.ErrGRPCWatchCanceled
		case r := <-sess.ctrl:
			if err := sess.gs.Send(r); err != nil {
				return err
			}
			id := mvcc.WatchID(r.WatchId)
			if r.Created && !r.Canceled {
				created[id] = true
				for _, p := range pending[id] {
					if err := sess.gs.Send(p); err != nil {
						return err
					}
				}
				delete(pending, id)
			}
			if r.Canceled {
				delete(created, id)
				delete(pending, id)
			}
		case wr, ok := <-sess.ws.Chan():
			if !ok {
				return rpctypes.ErrGRPCStopped
			}
			r := sess.toPB(wr)
			if wr.WatchID != mvcc.ProgressWatchID && !created[wr.WatchID] {
				pending[wr.WatchID] = append(pending[wr.WatchID], r)
				continue
			}
			if r.CompactRevision != 0 {
				delete(created, wr.WatchID)
			}
			if err := sess.gs.Send(r); err != nil {
				return err
			}
		case <-ticker.C:
			sess.mu.Lock()
			for id := range sess.progress {
				sess.ws.RequestProgress(id)
			}
			if sess.progressAll && sess.ws.RequestProgressAll() {
				sess.progressAll = false
			}
			sess.mu.Unlock()
		}
	}
}

func (sess *watchSession) toPB(wr mvcc.WatchResponse) *pb.WatchResponse {
	r := &pb.WatchResponse{
		Header:          sess.s.header(&pb.ResponseHeader{Revision: wr.Revision}),
		WatchId:         int64(wr.WatchID),
		CompactRevision: wr.CompactRevision,
		Canceled:        wr.CompactRevision != 0,
	}
	if len(wr.Events) > 0 {
		evs := make([]*mvccpb.Event, len(wr.Events))
		for i := range wr.Events {
			evs[i] = &wr.Events[i]
		}
		r.Events = evs
	}
	return r
}
