package robustness

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Client runs Requests against a cluster with clientv3's retrying gRPC
// clients and records each call in a Recorder.
type Client struct {
	ID    int
	rec   *Recorder
	kv    pb.KVClient
	lease pb.LeaseClient
	// Timeout bounds each request.
	Timeout time.Duration
}

// NewClient records the calls of cli as client id.
func NewClient(id int, cli *clientv3.Client, rec *Recorder) *Client {
	return &Client{ID: id, rec: rec, kv: clientv3.RetryKVClient(cli), lease: clientv3.RetryLeaseClient(cli), Timeout: 3 * time.Second}
}

// definite lists the errors after which a request surely had no effect.
var definite = map[string]bool{
	ErrLeaseNotFound: true,
	rpctypes.ErrorDesc(rpctypes.ErrGRPCTooManyOps):      true,
	rpctypes.ErrorDesc(rpctypes.ErrGRPCDuplicateKey):    true,
	rpctypes.ErrorDesc(rpctypes.ErrGRPCRequestTooLarge): true,
	rpctypes.ErrorDesc(rpctypes.ErrGRPCEmptyKey):        true,
}

// Do runs req (serializable applies to a single range) and records it.
func (c *Client) Do(ctx context.Context, req Request, serializable bool) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	op := Operation{Client: c.ID, Req: req, Serializable: serializable, Call: c.rec.Now()}
	resp, member, err := c.do(ctx, req, serializable)
	op.Return = c.rec.Now()
	op.Member = member
	if err != nil {
		op.Error = err.Error()
		// clientv3 retries lease grants and revokes, so a lease that
		// exists or is missing may be this request's own doing: only a
		// txn's errors are definite.
		desc := rpctypes.ErrorDesc(err)
		if definite[desc] && req.Kind == Txn {
			resp = Response{Err: desc}
		} else {
			resp = Response{Unknown: true}
			op.Return = Infinity
		}
	}
	op.Resp = resp
	c.rec.Add(op)
	return resp, err
}

func (c *Client) do(ctx context.Context, req Request, serializable bool) (Response, uint64, error) {
	switch req.Kind {
	case LeaseGrant:
		r, err := c.lease.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: req.Lease, TTL: req.TTL})
		if err != nil {
			return Response{}, 0, err
		}
		return Response{Rev: r.Header.Revision, Succeeded: true}, r.Header.MemberId, nil
	case LeaseRevoke:
		r, err := c.lease.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: req.Lease})
		if err != nil {
			return Response{}, 0, err
		}
		return Response{Rev: r.Header.Revision, Succeeded: true}, r.Header.MemberId, nil
	}
	t := req.Txn
	if len(t.If) == 0 && len(t.Else) == 0 && len(t.Then) == 1 {
		op := t.Then[0]
		switch op.Kind {
		case Range:
			r, err := c.kv.Range(ctx, rangeRequest(op, serializable))
			if err != nil {
				return Response{}, 0, err
			}
			return Response{Rev: r.Header.Revision, Succeeded: true, Results: []OpResult{{KVs: kvs(r.Kvs)}}}, r.Header.MemberId, nil
		case Put:
			r, err := c.kv.Put(ctx, &pb.PutRequest{Key: []byte(op.Key), Value: []byte(op.Value), Lease: op.Lease})
			if err != nil {
				return Response{}, 0, err
			}
			return Response{Rev: r.Header.Revision, Succeeded: true, Results: []OpResult{{}}}, r.Header.MemberId, nil
		case Delete:
			r, err := c.kv.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte(op.Key), RangeEnd: rangeEnd(op.End)})
			if err != nil {
				return Response{}, 0, err
			}
			return Response{Rev: r.Header.Revision, Succeeded: true, Results: []OpResult{{Deleted: r.Deleted}}}, r.Header.MemberId, nil
		}
	}
	r, err := c.kv.Txn(ctx, txnRequest(t))
	if err != nil {
		return Response{}, 0, err
	}
	resp := Response{Rev: r.Header.Revision, Succeeded: r.Succeeded}
	for _, ro := range r.Responses {
		var res OpResult
		switch v := ro.Response.(type) {
		case *pb.ResponseOp_ResponseRange:
			res.KVs = kvs(v.ResponseRange.Kvs)
		case *pb.ResponseOp_ResponseDeleteRange:
			res.Deleted = v.ResponseDeleteRange.Deleted
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, r.Header.MemberId, nil
}

func rangeEnd(end string) []byte {
	if end == "" {
		return nil
	}
	return []byte(end)
}

func rangeRequest(op TxnOp, serializable bool) *pb.RangeRequest {
	return &pb.RangeRequest{Key: []byte(op.Key), RangeEnd: rangeEnd(op.End), Serializable: serializable}
}

func txnRequest(t TxnRequest) *pb.TxnRequest {
	r := &pb.TxnRequest{}
	for _, c := range t.If {
		cmp := &pb.Compare{Key: []byte(c.Key), Result: [...]pb.Compare_CompareResult{pb.Compare_EQUAL, pb.Compare_NOT_EQUAL, pb.Compare_LESS, pb.Compare_GREATER}[c.Result]}
		switch c.Target {
		case CompareValue:
			cmp.Target, cmp.TargetUnion = pb.Compare_VALUE, &pb.Compare_Value{Value: []byte(c.Value)}
		case CompareVersion:
			cmp.Target, cmp.TargetUnion = pb.Compare_VERSION, &pb.Compare_Version{Version: c.Number}
		case CompareMod:
			cmp.Target, cmp.TargetUnion = pb.Compare_MOD, &pb.Compare_ModRevision{ModRevision: c.Number}
		case CompareCreate:
			cmp.Target, cmp.TargetUnion = pb.Compare_CREATE, &pb.Compare_CreateRevision{CreateRevision: c.Number}
		}
		r.Compare = append(r.Compare, cmp)
	}
	r.Success = requestOps(t.Then)
	r.Failure = requestOps(t.Else)
	return r
}

func requestOps(ops []TxnOp) []*pb.RequestOp {
	var out []*pb.RequestOp
	for _, op := range ops {
		switch op.Kind {
		case Range:
			out = append(out, &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: rangeRequest(op, false)}})
		case Put:
			out = append(out, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(op.Key), Value: []byte(op.Value), Lease: op.Lease}}})
		case Delete:
			out = append(out, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(op.Key), RangeEnd: rangeEnd(op.End)}}})
		}
	}
	return out
}

func kvs(in []*mvccpb.KeyValue) []KV {
	if len(in) == 0 {
		return nil
	}
	out := make([]KV, len(in))
	for i, kv := range in {
		out[i] = fromPB(kv)
	}
	return out
}

func fromPB(kv *mvccpb.KeyValue) KV {
	return KV{Key: string(kv.Key), Value: string(kv.Value), Mod: kv.ModRevision, Create: kv.CreateRevision, Version: kv.Version, Lease: kv.Lease}
}
