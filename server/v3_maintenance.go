package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/coreos/go-semver/semver"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// snapshotChunk is the blob size of a Snapshot response, as etcd's.
const snapshotChunk = 32 * 1024

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *Server
}

func (m *maintenanceServer) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	s := m.s
	st := s.st.Load()
	if st == nil {
		return nil, rpctypes.ErrGRPCStopped
	}
	self, _ := s.cluster.Member(s.id)
	resp := &pb.StatusResponse{
		Header:           s.header(nil),
		Version:          Version,
		DbSize:           st.be.Size(),
		DbSizeInUse:      st.be.SizeInUse(),
		Leader:           s.lead.Load(),
		RaftIndex:        s.committed.Load(),
		RaftTerm:         s.term.Load(),
		RaftAppliedIndex: s.applied.Load(),
		IsLearner:        self.IsLearner,
		StorageVersion:   StorageVersion,
		DbSizeQuota:      s.cfg.QuotaBackendBytes,
		// No downgrade is ever in progress (lifeboat does not downgrade);
		// etcd sends the empty message, which etcdctl prints as {}.
		DowngradeInfo: &pb.DowngradeInfo{},
	}
	for _, a := range s.alarms.list() {
		resp.Errors = append(resp.Errors, a.String())
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, rpctypes.ErrNoLeader.Error())
	}
	return resp, nil
}

// Snapshot streams the db in 32 KiB blobs with the bytes still to come,
// then one message holding the SHA-256 of the db, as etcd does.
func (m *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, srv pb.Maintenance_SnapshotServer) error {
	s := m.s
	be := s.st.Load().be
	if err := be.ForceCommit(); err != nil {
		return toGRPCError(err)
	}
	err := be.View(func(tx *bolt.Tx) error {
		total := tx.Size()
		pr, pw := io.Pipe()
		go func() { _, err := tx.WriteTo(pw); pw.CloseWithError(err) }()
		defer pr.Close()
		h := sha256.New()
		buf := make([]byte, snapshotChunk)
		var sent int64
		for {
			n, err := io.ReadFull(pr, buf)
			if n > 0 {
				h.Write(buf[:n])
				sent += int64(n)
				resp := &pb.SnapshotResponse{RemainingBytes: uint64(total - sent), Blob: buf[:n], Version: StorageVersion}
				if sent == int64(n) {
					resp.Header = s.header(nil)
				}
				if serr := srv.Send(resp); serr != nil {
					return serr
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				return err
			}
		}
		return srv.Send(&pb.SnapshotResponse{RemainingBytes: 0, Blob: h.Sum(nil), Version: StorageVersion})
	})
	if err != nil {
		return toGRPCError(err)
	}
	return nil
}

func (m *maintenanceServer) Hash(context.Context, *pb.HashRequest) (*pb.HashResponse, error) {
	be := m.s.st.Load().be
	if err := be.ForceCommit(); err != nil {
		return nil, toGRPCError(err)
	}
	var h uint32
	if err := be.View(func(tx *bolt.Tx) error {
		var err error
		h, err = snapkit.Hash(tx)
		return err
	}); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.HashResponse{Header: m.s.header(nil), Hash: h}, nil
}

func (m *maintenanceServer) HashKV(_ context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	res, err := m.s.st.Load().kv.HashKV(r.Revision)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.HashKVResponse{
		Header:          m.s.header(&pb.ResponseHeader{Revision: res.Revision}),
		Hash:            res.Hash,
		CompactRevision: res.CompactRevision,
		HashRevision:    res.HashRevision,
	}, nil
}

func (m *maintenanceServer) Defragment(context.Context, *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	m.s.lg.Info("defragmenting backend")
	if err := m.s.st.Load().be.Defrag(); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.DefragmentResponse{}, nil // etcd's has no header
}

func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp, err := m.s.propose(ctx, &pb.InternalRaftRequest{Alarm: r})
	if err != nil {
		return nil, toGRPCError(err)
	}
	out := resp.(*pb.AlarmResponse)
	out.Header = m.s.header(out.Header)
	return out, nil
}

func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	s := m.s
	if s.lead.Load() != s.id {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	if t, ok := s.cluster.Member(r.TargetID); !ok || t.IsLearner {
		return nil, rpctypes.ErrGRPCBadLeaderTransferee
	}
	if r.TargetID != s.id {
		if err := s.moveLeader(ctx, r.TargetID); err != nil {
			return nil, toGRPCError(err)
		}
	}
	return &pb.MoveLeaderResponse{}, nil // etcd's has no header
}

// Downgrade answers as etcd's for a cluster with no downgrade in progress,
// which a lifeboat cluster always is: VALIDATE checks the target (etcd
// allows one minor version below the cluster's: 3.5); CANCEL finds no job,
// which etcd logs and answers with the cluster version. A valid ENABLE is
// refused: lifeboat cannot downgrade its cluster. As etcd's, the answer has
// no header.
func (m *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	cv := semver.New(ClusterVersion)
	resp := &pb.DowngradeResponse{Version: fmt.Sprintf("%d.%d", cv.Major, cv.Minor)}
	switch r.Action {
	case pb.DowngradeRequest_VALIDATE, pb.DowngradeRequest_ENABLE:
		target, err := downgradeTarget(r.Version)
		if err != nil {
			return nil, err
		}
		if err := m.s.linearizableReadNotify(ctx); err != nil {
			return nil, toGRPCError(err)
		}
		if target.Major != cv.Major || target.Minor != cv.Minor-1 {
			return nil, rpctypes.ErrGRPCInvalidDowngradeTargetVersion
		}
		if r.Action == pb.DowngradeRequest_ENABLE {
			return nil, status.Errorf(codes.Unimplemented, "lifeboat: cannot downgrade a cluster to %d.%d", target.Major, target.Minor)
		}
		return resp, nil
	case pb.DowngradeRequest_CANCEL:
		m.s.lg.Warn("failed to cancel downgrade", "error", rpctypes.ErrNoInflightDowngrade)
		return resp, nil
	default:
		return nil, status.Error(codes.Unknown, "etcdserver: unknown method")
	}
}

// downgradeTarget parses a downgrade's target version as etcd: semver, or
// major.minor.
func downgradeTarget(v string) (*semver.Version, error) {
	ver, err := semver.NewVersion(v)
	if err != nil {
		if ver, err = semver.NewVersion(v + ".0"); err != nil {
			return nil, rpctypes.ErrGRPCWrongDowngradeVersionFormat
		}
	}
	return ver, nil
}
