package mvcc

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/server/backend"
)

// testStore is a store on a fresh backend in a temporary directory.
type testStore struct {
	*Store
	path string
}

func openBackend(t testing.TB, path string) *backend.Backend {
	t.Helper()
	be, err := backend.Open(backend.Config{Path: path, NoSync: true, MmapSize: 1 << 24, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func newTestStore(t testing.TB, cfg Config) *testStore {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	return reopen(t, path, cfg)
}

// reopen opens a store on the backend file at path; both are closed at
// the end of the test.
func reopen(t testing.TB, path string, cfg Config) *testStore {
	t.Helper()
	be := openBackend(t, path)
	s, err := New(be, cfg)
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	ts := &testStore{Store: s, path: path}
	t.Cleanup(ts.close)
	return ts
}

func (ts *testStore) close() {
	ts.Close()
	ts.be.Close()
}

func (ts *testStore) put(t testing.TB, key, value string) int64 {
	t.Helper()
	resp, err := ts.Put(&pb.PutRequest{Key: []byte(key), Value: []byte(value)})
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return resp.Header.Revision
}

func (ts *testStore) del(t testing.TB, key, end string) int64 {
	t.Helper()
	resp, err := ts.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end)})
	if err != nil {
		t.Fatalf("delete %q: %v", key, err)
	}
	return resp.Deleted
}

func (ts *testStore) get(t testing.TB, r *pb.RangeRequest) *pb.RangeResponse {
	t.Helper()
	resp, err := ts.Range(context.Background(), r)
	if err != nil {
		t.Fatalf("range %q-%q at %d: %v", r.Key, r.RangeEnd, r.Revision, err)
	}
	return resp
}

// kvs renders key=value@create/mod/version for comparison.
func kvs(list []*mvccpb.KeyValue) []string {
	out := make([]string, len(list))
	for i, kv := range list {
		out[i] = kvString(kv)
	}
	return out
}

func kvString(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("%s=%s@%d/%d/%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
	if kv.Lease != 0 {
		s += fmt.Sprintf(" lease %d", kv.Lease)
	}
	return s
}
