package mvcc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestReadsDuringWritesCommitsAndCompactions runs readers against the apply
// loop while batches commit and compactions run: every read either sees a
// complete revision or fails with ErrCompacted.
func TestReadsDuringWritesCommitsAndCompactions(t *testing.T) {
	ts := newTestStore(t, Config{CompactionBatchLimit: 10, CompactionSleepInterval: time.Millisecond})
	const writes = 1500
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cur := ts.Rev()
				rev := cur - int64(i%50)
				if r == 0 {
					rev = 0
				}
				resp, err := ts.Range(context.Background(), &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: rev})
				if errors.Is(err, ErrCompacted) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				// Ten keys, written round robin from revision 2 on (the
				// empty store is at 1): at revision r <= 11 there are r-1
				// of them, then always ten.
				at := rev
				if at <= 0 {
					at = resp.Header.Revision
				}
				if int64(len(resp.Kvs)) != min(at-firstRevision, 10) {
					errs <- fmt.Errorf("read at %d (header %d): %d keys", rev, resp.Header.Revision, len(resp.Kvs))
					return
				}
			}
		}()
	}
	for i := 1; i <= writes; i++ {
		ts.put(t, fmt.Sprint("k", i%10), fmt.Sprint(i))
		if i%100 == 0 {
			if err := ts.be.ForceCommit(); err != nil {
				t.Fatal(err)
			}
			// 20 revisions behind the current one, firstRevision+i.
			if _, err := ts.Compact(firstRevision + int64(i) - 20); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
