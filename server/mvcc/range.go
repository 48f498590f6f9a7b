package mvcc

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// readView is what reads need: the key bucket and the revision they see.
type readView interface {
	GetKey(revKey []byte) []byte
	rev() int64
}

// readTxn is a read view outside the apply loop.
type readTxn struct {
	*backend.ReadTx
	cur int64
}

func (r readTxn) rev() int64 { return r.cur }

// read opens a read view at the current revision. The revision is loaded
// first: writes publish their pairs before they advance it.
func (s *Store) read() (readTxn, error) {
	cur := s.currentRev.Load()
	rtx, err := s.be.ReadTx()
	if err != nil {
		return readTxn{}, fmt.Errorf("mvcc: %w", err)
	}
	return readTxn{ReadTx: rtx, cur: cur}, nil
}

// Range answers a RangeRequest as etcd does. The header carries the
// revision; the server fills in the cluster, member and term.
func (s *Store) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	rv, err := s.read()
	if err != nil {
		return nil, err
	}
	defer rv.End()
	s.m.ranges.Inc()
	return s.rangeReq(ctx, rv, r)
}

// rangeEnd turns a request's range_end into keyindex's: nil for one key,
// empty for every key from the start ("\x00" on the wire).
func rangeEnd(end []byte) []byte {
	switch {
	case len(end) == 0:
		return nil
	case len(end) == 1 && end[0] == 0:
		return []byte{}
	}
	return end
}

// checkRev resolves the revision of a read: 0 (or less) is the view's.
func (s *Store) checkRev(v readView, rev int64) (int64, error) {
	cur := v.rev()
	switch {
	case rev > cur:
		return 0, fmt.Errorf("%w: %d > current %d", ErrFutureRev, rev, cur)
	case rev <= 0:
		rev = cur
	}
	return rev, s.checkCompacted(rev)
}

// checkCompacted fails if a compaction has passed rev. Reads check again at
// the end: a compaction that started during the read may have changed
// what the index or the key bucket returned.
func (s *Store) checkCompacted(rev int64) error {
	if c := s.compactRev.Load(); rev < c {
		return fmt.Errorf("%w: %d < compaction %d", ErrCompacted, rev, c)
	}
	return nil
}

func (s *Store) rangeReq(ctx context.Context, v readView, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	rev, err := s.checkRev(v, r.Revision)
	if err != nil {
		return nil, err
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: v.rev()}}
	end := rangeEnd(r.RangeEnd)
	if r.CountOnly {
		resp.Count = int64(s.idx.CountRevisions(r.Key, end, rev))
		return resp, s.checkCompacted(rev)
	}
	// Sorting and filtering need every key; otherwise one more than the
	// limit tells whether there are more.
	limit := r.Limit
	if r.SortOrder != pb.RangeRequest_NONE || r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		limit = 0
	}
	if limit > 0 {
		limit++
	}
	keys, revs, total := s.idx.Range(r.Key, end, rev, int(limit))
	kvs, err := s.fetch(ctx, v, keys, revs, rev)
	if err != nil {
		return nil, err
	}
	kvs = slices.DeleteFunc(kvs, func(kv *mvccpb.KeyValue) bool {
		return (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision)
	})
	sortKVs(kvs, r.SortOrder, r.SortTarget)
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs, resp.Count = kvs, int64(total)
	return resp, s.checkCompacted(rev)
}

// fetch reads the values of revs from the key bucket.
func (s *Store) fetch(ctx context.Context, v readView, keys [][]byte, revs []keyindex.Revision, atRev int64) ([]*mvccpb.KeyValue, error) {
	if len(revs) == 0 {
		return nil, nil
	}
	slab := make([]mvccpb.KeyValue, len(revs))
	out := make([]*mvccpb.KeyValue, len(revs))
	revKey := make([]byte, 0, schema.RevisionSize)
	for i, r := range revs {
		if i%256 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("mvcc: range: %w", err)
			}
		}
		revKey = schema.AppendRevision(revKey[:0], r, false)
		val := v.GetKey(revKey)
		if val == nil {
			if err := s.checkCompacted(atRev); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: key %q revision %s", ErrCorrupt, keys[i], r)
		}
		if err := slab[i].Unmarshal(val); err != nil {
			return nil, fmt.Errorf("%w: key %q revision %s: %v", ErrCorrupt, keys[i], r, err)
		}
		out[i] = &slab[i]
	}
	return out, nil
}

// sortKVs sorts as etcd does: by key ascending needs nothing (the index is
// in key order), another target with no order means ascending.
func sortKVs(kvs []*mvccpb.KeyValue, order pb.RangeRequest_SortOrder, target pb.RangeRequest_SortTarget) {
	switch {
	case target != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE:
		order = pb.RangeRequest_ASCEND
	case target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND:
		order = pb.RangeRequest_NONE
	}
	if order == pb.RangeRequest_NONE {
		return
	}
	var less func(a, b *mvccpb.KeyValue) int
	switch target {
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		less = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	}
	if order == pb.RangeRequest_DESCEND {
		asc := less
		less = func(a, b *mvccpb.KeyValue) int { return asc(b, a) }
	}
	slices.SortStableFunc(kvs, less)
}
