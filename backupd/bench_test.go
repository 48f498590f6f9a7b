package backupd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/clustertest"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
)

// benchSpool is a snapshot file of about LIFEBOAT_BENCH_BACKUP_MB
// megabytes (default 16) taken from a lifeboat member, made once.
var benchSpool struct {
	once sync.Once
	path string
	size int64
	err  error
}

func spoolForBench(b *testing.B) (string, int64) {
	benchSpool.once.Do(func() {
		mb := 16
		if v := os.Getenv("LIFEBOAT_BENCH_BACKUP_MB"); v != "" {
			mb, benchSpool.err = strconv.Atoi(v)
		}
		if benchSpool.err == nil {
			benchSpool.path, benchSpool.size, benchSpool.err = makeBenchSpool(mb)
		}
	})
	if benchSpool.err != nil {
		b.Fatal(benchSpool.err)
	}
	return benchSpool.path, benchSpool.size
}

// makeBenchSpool fills a one-member lifeboat cluster with values that look
// like Kubernetes objects (JSON with unique names and a random part, so
// they compress about as well) and saves its snapshot.
func makeBenchSpool(mb int) (string, int64, error) {
	dir, err := os.MkdirTemp("", "backupd-bench-")
	if err != nil {
		return "", 0, err
	}
	c, err := clustertest.StartLifeboat(dir, 1)
	if err != nil {
		return "", 0, err
	}
	defer c.Stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return "", 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const valueSize = 4 << 10
	n := mb << 20 / valueSize
	var (
		wg   sync.WaitGroup
		errs = make(chan error, 8)
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := make([]byte, valueSize/8)
			for i := w; i < n; i += 8 {
				_, _ = rand.Read(rnd)
				v := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"pod-%d","namespace":"ns-%d","uid":"%s","labels":{"app":"web","tier":"frontend"}},"spec":{"containers":[{"name":"web","image":"registry.example/web:1.%d","resources":{"requests":{"cpu":"100m","memory":"128Mi"}}}]},"status":{"phase":"Running"}}`,
					i, i%50, hex.EncodeToString(rnd), i%7)
				v += strings.Repeat(`{"type":"Ready","status":"True"}`, (valueSize-len(v))/32)
				if _, err := cli.Put(ctx, fmt.Sprintf("/registry/pods/ns-%d/pod-%d", i%50, i), v); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return "", 0, err
	}
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	path := filepath.Join(dir, "bench.snapshot")
	f, err := os.Create(path)
	if err != nil {
		return "", 0, err
	}
	n64, err := io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return path, n64, err
}

// peakRSS reads the process's peak resident set (VmHWM) in bytes, and
// resetPeakRSS resets it (Linux).
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// BenchmarkBackupFromSpool is the pipeline after the stream, for a spooled
// snapshot (LIFEBOAT_BENCH_BACKUP_MB, default 16): verify with snapkit,
// compress, upload to file:// and commit, in MB/s of db, with the peak RSS
// and the stored size, for zstd, gzip and none.
func BenchmarkBackupFromSpool(b *testing.B) {
	spool, size := spoolForBench(b)
	for _, c := range []string{codec.Zstd, codec.Gzip, codec.None} {
		b.Run(c, func(b *testing.B) {
			s := openStore(&testing.T{}, "file://"+b.TempDir(), "bench")
			cfg := &Config{Store: s, Codec: codec.Options{Codec: c}}
			ctx := context.Background()
			b.SetBytes(size)
			resetPeakRSS()
			var stored int64
			b.ResetTimer()
			for i := range b.N {
				facts, err := inspectSpool(ctx, spool, nil)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Unix(int64(i), 0)
				obj := manifest.ObjectName(c, false)
				staging := manifest.StagingKey(s.Prefix(), 1, start, obj)
				up, err := newUpload(ctx, cfg, staging)
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.Open(spool)
				if err != nil {
					b.Fatal(err)
				}
				_, err = io.Copy(up, f)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				sums, err := up.finish()
				if err != nil {
					b.Fatal(err)
				}
				id := manifest.NewID(1, start, facts.Revision)
				m := &manifest.Manifest{Format: manifest.Format, ID: id.String(), Revision: facts.Revision, DBSHA256: facts.DBSHA256,
					Object: manifest.Object{Key: id.Key(s.Prefix(), obj), Size: sums.Size, SHA256: hex.EncodeToString(sums.SHA256), Codec: c}}
				if err := s.Commit(ctx, staging, sums, m); err != nil {
					b.Fatal(err)
				}
				stored = sums.Size
			}
			b.StopTimer()
			b.ReportMetric(peakRSS()/(1<<20), "peak-RSS-MB")
			b.ReportMetric(float64(stored)/float64(size), "stored/db")
		})
	}
}
