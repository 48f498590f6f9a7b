package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/lifeboat-dev/lifeboat/server/backend"
)

// benchStore is a store with etcd's batching (100 ms, 10k writes) and no
// fsync, so that the numbers are the CPU of the store.
func benchStore(b *testing.B) *Store {
	b.Helper()
	be, err := backend.Open(backend.Config{Path: filepath.Join(b.TempDir(), "db"), NoSync: true, MmapSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(be, Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Close()
		be.Close()
	})
	return s
}

const benchKeys = 10000

func benchKey(i int) []byte { return fmt.Appendf(nil, "/registry/pods/default/pod-%06d", i%benchKeys) }

// BenchmarkPut256B is the apply loop putting 256-byte values over 10k keys.
func BenchmarkPut256B(b *testing.B) {
	s := benchStore(b)
	val := bytes.Repeat([]byte("v"), 256)
	reqs := make([]*pb.PutRequest, benchKeys)
	for i := range reqs {
		reqs[i] = &pb.PutRequest{Key: benchKey(i), Value: val}
	}
	b.SetBytes(int64(len(reqs[0].Key) + len(val)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Put(reqs[i%benchKeys]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRange reads one key, and 100 keys of a prefix, of 10k.
func BenchmarkRange(b *testing.B) {
	s := benchStore(b)
	val := bytes.Repeat([]byte("v"), 256)
	for i := range benchKeys {
		if _, err := s.Put(&pb.PutRequest{Key: benchKey(i), Value: val}); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		req  *pb.RangeRequest
	}{
		{"OneKey", &pb.RangeRequest{Key: benchKey(4242)}},
		{"Prefix100", &pb.RangeRequest{Key: benchKey(4200), RangeEnd: benchKey(4300)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Range(context.Background(), bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTxnCompareAndSwap is the optimistic update of Kubernetes: compare
// the mod revision of a key, put it if unchanged, read it otherwise.
func BenchmarkTxnCompareAndSwap(b *testing.B) {
	s := benchStore(b)
	val := bytes.Repeat([]byte("v"), 256)
	mods := make([]int64, benchKeys)
	for i := range benchKeys {
		resp, err := s.Put(&pb.PutRequest{Key: benchKey(i), Value: val})
		if err != nil {
			b.Fatal(err)
		}
		mods[i] = resp.Header.Revision
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := i % benchKeys
		key := benchKey(k)
		resp, err := s.Txn(context.Background(), &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: key, Target: pb.Compare_MOD, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_ModRevision{ModRevision: mods[k]}}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: key, Value: val}}}},
			Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: key}}}},
		})
		if err != nil || !resp.Succeeded {
			b.Fatalf("txn: %v, succeeded %v", err, resp.GetSucceeded())
		}
		mods[k] = resp.Header.Revision
	}
}
