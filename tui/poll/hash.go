package poll

import (
	"context"
	"fmt"
	"strings"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// compareHashes asks every answering member for its HashKV at the lowest
// revision they report, which all of them have, and names the members
// whose hash is not the majority's. It keeps the last comparison until
// HashInterval has passed or the set of answering members has changed.
func (p *Poller) compareHashes(ctx context.Context, s *Sample) *HashCheck {
	if p.cfg.HashInterval < 0 {
		return nil
	}
	var up []*Member
	var key strings.Builder
	for i := range s.Members {
		if m := &s.Members[i]; m.Up() {
			up = append(up, m)
			fmt.Fprintf(&key, "%x,", m.ID)
		}
	}
	if p.hash != nil && p.hashOf == key.String() && s.At.Sub(p.hash.At) < p.cfg.HashInterval {
		return p.hash
	}
	h := &HashCheck{At: s.At}
	p.hash, p.hashOf = h, key.String()
	if len(up) < 2 {
		h.Problem = "fewer than two members answer"
		return h
	}
	h.Revision = up[0].Status.Header.GetRevision()
	for _, m := range up[1:] {
		h.Revision = min(h.Revision, m.Status.Header.GetRevision())
	}
	h.Hashes = make([]MemberHash, len(up))
	var wg sync.WaitGroup
	for i, m := range up {
		wg.Go(func() { h.Hashes[i] = p.hashKV(ctx, m, h.Revision) })
	}
	wg.Wait()
	judge(h)
	return h
}

func (p *Poller) hashKV(ctx context.Context, m *Member, rev int64) MemberHash {
	mh := MemberHash{ID: m.ID}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	cli, err := p.conn(m.Endpoint).client(p.clientConfig(m.Endpoint))
	if err != nil {
		mh.Err = err
		return mh
	}
	resp, err := pb.NewMaintenanceClient(cli.ActiveConnection()).HashKV(ctx, &pb.HashKVRequest{Revision: rev})
	if err != nil {
		mh.Err = clientv3.ContextError(ctx, rpctypes.Error(err))
		return mh
	}
	mh.Hash, mh.CompactRevision = resp.Hash, resp.CompactRevision
	return mh
}

// judge fills Differ or Problem from the answers.
func judge(h *HashCheck) {
	var ok []MemberHash
	for _, mh := range h.Hashes {
		if mh.Err == nil {
			ok = append(ok, mh)
		}
	}
	if len(ok) < 2 {
		h.Problem = "fewer than two members answer HashKV"
		return
	}
	for _, mh := range ok[1:] {
		// etcd's corruption check compares only at equal compact revisions:
		// a hash covers the revisions after the member's compaction.
		if mh.CompactRevision != ok[0].CompactRevision {
			h.Problem = "compaction in progress"
			return
		}
	}
	count := make(map[uint32]int)
	for _, mh := range ok {
		count[mh.Hash]++
	}
	var major uint32
	best := 0
	for hash, n := range count {
		if n > best || (n == best && hash < major) {
			major, best = hash, n
		}
	}
	noMajority := 2*best <= len(ok)
	for _, mh := range ok {
		if noMajority && len(count) > 1 || mh.Hash != major {
			h.Differ = append(h.Differ, mh.ID)
		}
	}
}
