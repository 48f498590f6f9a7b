package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/objstoretest"
	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
)

func TestMain(m *testing.M) {
	if bucket := os.Getenv(childEnv); bucket != "" {
		os.Exit(lockChild(bucket))
	}
	code := m.Run()
	objstoretest.Cleanup()
	os.Exit(code)
}

// open opens a fresh bucket of the backend under a prefix.
func open(t *testing.T, b objstoretest.Backend, prefix string) *Store {
	t.Helper()
	b.Setenv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, b.URL, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs one suite against every store: file://, mem://
// and the real S3, GCS and Azure servers (see objstoretest).
func TestConformance(t *testing.T) {
	for _, name := range objstoretest.Names {
		t.Run(name, func(t *testing.T) {
			b, ok := objstoretest.Get(t, name)
			if !ok {
				t.Skip("server not installed")
			}
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) {
					if name == "mem" || name == "file" {
						// a fresh bucket for each case
						b, _ = objstoretest.Get(t, name)
					}
					c.fn(t, open(t, b, "cluster-backups/"+strings.ReplaceAll(t.Name(), "/", "-")))
				})
			}
		})
	}
}

var conformance = []struct {
	name string
	fn   func(t *testing.T, s *Store)
}{
	{"StreamedUploadAndCommit", testStreamedUploadAndCommit},
	{"ConditionalWrite", testConditionalWrite},
	{"ListCountsOnlyManifests", testListCountsOnlyManifests},
	{"LockIsExclusive", testLockIsExclusive},
	{"LockContended", testLockContended},
	{"LockExpires", testLockExpires},
	{"DeleteBackupManifestFirst", testDeleteBackup},
	{"MissingIsNotFound", testMissing},
	{"State", testState},
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// upload streams data to key as the pipeline does and returns its sums.
func upload(t *testing.T, s *Store, key string, data []byte) Uploaded {
	t.Helper()
	w, err := s.NewWriter(ctx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	// Small writes, as a compressor makes them.
	for off := 0; off < len(data); off += 100_000 {
		if _, err := w.Write(data[off:min(off+100_000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, sh := md5.Sum(data), sha256.Sum256(data)
	return Uploaded{Size: int64(len(data)), MD5: m[:], SHA256: sh[:]}
}

// commitBackup stages and commits a backup of cluster at t and rev.
func commitBackup(t *testing.T, s *Store, cluster uint64, at time.Time, rev int64, data []byte) *manifest.Manifest {
	t.Helper()
	obj := manifest.ObjectName("none", false)
	staging := manifest.StagingKey(s.Prefix(), cluster, at, obj)
	up := upload(t, s, staging, data)
	id := manifest.NewID(cluster, at, rev)
	m := &manifest.Manifest{
		Format: manifest.Format, ID: id.String(), ClusterID: fmt.Sprintf("%x", cluster), Revision: rev,
		DBSHA256: "00", Start: at, End: at,
		Object: manifest.Object{Key: id.Key(s.Prefix(), obj), Size: up.Size, SHA256: fmt.Sprintf("%x", up.SHA256), MD5: fmt.Sprintf("%x", up.MD5), Codec: "none"},
	}
	if err := s.Commit(ctx(t), staging, up, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// A streamed upload larger than one part (S3 multipart starts at 5 MiB)
// commits: the listing shows the backup, the staging object is gone and the
// object reads back byte for byte.
func testStreamedUploadAndCommit(t *testing.T, s *Store) {
	data := randBytes(9<<20 + 123)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := commitBackup(t, s, 0xc1, at, 42, data)
	l, err := s.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 1 || l.Backups[0].Manifest.ID != m.ID || len(l.Orphans) != 0 || len(l.Broken) != 0 {
		t.Fatalf("listing %+v", l)
	}
	r, err := s.NewReader(ctx(t), m.Object.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes back, they differ from the %d uploaded", len(got), len(data))
	}
	if _, err := s.CheckStored(ctx(t), m.Object.Key, Uploaded{Size: int64(len(data)) - 1}); !errors.Is(err, ErrChecksum) {
		t.Errorf("size mismatch: %v, want ErrChecksum", err)
	}
	t.Logf("store compared MD5: %v", m.Object.StoreMD5)
}

// The manifest and the lock are written with IfNotExist: a second write of
// the same key fails and leaves the first.
func testConditionalWrite(t *testing.T, s *Store) {
	key := manifest.PrefixKey(s.Prefix(), "cond")
	if err := s.WriteAll(ctx(t), key, []byte("one"), true); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteAll(ctx(t), key, []byte("two"), true); !errors.Is(err, ErrExists) {
		t.Fatalf("second conditional write: %v, want ErrExists", err)
	}
	b, err := s.ReadAll(ctx(t), key)
	if err != nil || string(b) != "one" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// Only a directory with a parsing manifest is a backup; objects without one
// and staging objects are orphans; a manifest that does not parse is broken,
// never counted; the lock and the state are neither.
func testListCountsOnlyManifests(t *testing.T, s *Store) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	good := commitBackup(t, s, 0xc1, at, 10, []byte("db"))
	p := s.Prefix()
	noManifest := manifest.NewID(0xc1, at.Add(time.Hour), 11).Key(p, "snapshot.db")
	staging := manifest.StagingKey(p, 0xc1, at.Add(2*time.Hour), "snapshot.db")
	broken := manifest.NewID(0xc1, at.Add(3*time.Hour), 12)
	for key, data := range map[string]string{
		noManifest: "x", staging: "y",
		broken.Key(p, manifest.ManifestName): "{not json",
		broken.Key(p, "snapshot.db"):         "z",
		manifest.PrefixKey(p, "README"):      "someone else's",
	} {
		if err := s.WriteAll(ctx(t), key, []byte(data), false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Lock(ctx(t), "me", "test", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutState(ctx(t), State{Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 1 || l.Backups[0].Manifest.ID != good.ID {
		t.Errorf("backups %+v, want only %s", l.Backups, good.ID)
	}
	orphans := map[string]string{}
	for _, o := range l.Orphans {
		orphans[o.Key] = o.Reason
	}
	if len(orphans) != 2 || orphans[noManifest] != "no manifest" || orphans[staging] == "" {
		t.Errorf("orphans %v", orphans)
	}
	if len(l.Broken) != 1 || l.Broken[0].Dir != broken.Dir(p) || len(l.Broken[0].Objects) != 2 {
		t.Errorf("broken %+v", l.Broken)
	}
	for _, ref := range []string{"latest", good.ID, manifest.NewID(0xc1, at, 10).Name()} {
		if b, err := l.Find(ref); err != nil || b.Manifest.ID != good.ID {
			t.Errorf("Find(%s) = %v, %v", ref, b.ID, err)
		}
	}
	if _, err := l.Find(broken.String()); !errors.Is(err, ErrNoBackup) {
		t.Errorf("Find(broken) = %v, want ErrNoBackup", err)
	}
}

// Of several daemons taking the lock at once, exactly one gets it; after
// Release another can take it.
func testLockIsExclusive(t *testing.T, s *Store) {
	const n = 6
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []*Lock
		others int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.Lock(ctx(t), fmt.Sprintf("daemon-%d", i), "backup", time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, l)
			case errors.Is(err, ErrLocked):
				others++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || others != n-1 {
		t.Fatalf("%d took the lock, %d were refused; want 1 and %d", len(won), others, n-1)
	}
	if err := won[0].Refresh(ctx(t), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := won[0].Release(ctx(t)); err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx(t), "late", "prune", time.Minute)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if err := l.Release(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

// Two holders that take and release the lock in a loop only ever hear
// ErrLocked from each other: a lock released between another's create and
// its read is no error (CI once saw "not found" fail a daemon's slot).
func testLockContended(t *testing.T, s *Store) {
	const rounds = 60
	var wg sync.WaitGroup
	taken := make([]int, 2)
	for h := range taken {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := s.Lock(ctx(t), fmt.Sprintf("holder-%d", h), "backup", time.Minute)
				if errors.Is(err, ErrLocked) {
					continue
				}
				if err != nil {
					t.Errorf("holder-%d: %v, want the lock or ErrLocked", h, err)
					return
				}
				taken[h]++
				if err := l.Release(ctx(t)); err != nil {
					t.Errorf("holder-%d: release: %v", h, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if taken[0]+taken[1] == 0 {
		t.Fatalf("in %d rounds each, neither holder took the lock", rounds)
	}
	t.Logf("taken %d and %d times", taken[0], taken[1])
}

// An expired lock is taken over, and its old holder learns it lost it.
func testLockExpires(t *testing.T, s *Store) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	old, err := s.Lock(ctx(t), "old", "backup", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx(t), "new", "backup", time.Minute); !errors.Is(err, ErrLocked) {
		t.Fatalf("unexpired: %v, want ErrLocked", err)
	}
	now = now.Add(2 * time.Minute)
	l, err := s.Lock(ctx(t), "new", "backup", time.Minute)
	if err != nil {
		t.Fatalf("expired lock not taken over: %v", err)
	}
	if l.Info().Holder != "new" {
		t.Errorf("holder %s", l.Info().Holder)
	}
	if err := old.Refresh(ctx(t), time.Minute); !errors.Is(err, ErrLockLost) {
		t.Errorf("old holder's refresh: %v, want ErrLockLost", err)
	}
	if err := old.Release(ctx(t)); !errors.Is(err, ErrLockLost) {
		t.Errorf("old holder's release: %v, want ErrLockLost", err)
	}
}

// Deleting a backup removes it from the listing and leaves no orphan.
func testDeleteBackup(t *testing.T, s *Store) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	commitBackup(t, s, 0xc1, at, 10, []byte("one"))
	keep := commitBackup(t, s, 0xc1, at.Add(time.Hour), 20, []byte("two"))
	l, err := s.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBackup(ctx(t), l.Backups[0]); err != nil {
		t.Fatal(err)
	}
	l, err = s.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 1 || l.Backups[0].Manifest.ID != keep.ID || len(l.Orphans) != 0 {
		t.Fatalf("after delete: %+v", l)
	}
}

func testMissing(t *testing.T, s *Store) {
	key := manifest.PrefixKey(s.Prefix(), "missing")
	if _, err := s.ReadAll(ctx(t), key); !errors.Is(err, ErrNotFound) {
		t.Errorf("read: %v", err)
	}
	if _, err := s.NewReader(ctx(t), key); !errors.Is(err, ErrNotFound) {
		t.Errorf("open: %v", err)
	}
	if err := s.Delete(ctx(t), key); err != nil {
		t.Errorf("delete of a missing key: %v", err)
	}
	if _, found, err := s.State(ctx(t)); found || err != nil {
		t.Errorf("state of an empty prefix: found %v, %v", found, err)
	}
}

func testState(t *testing.T, s *Store) {
	want := State{Slot: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Holder: "h", Result: ResultFailed, Cause: "store", Error: "boom",
		Start: time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC)}
	if err := s.PutState(ctx(t), want); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.State(ctx(t))
	if err != nil || !found || !got.Slot.Equal(want.Slot) || got.Result != want.Result || got.Cause != want.Cause {
		t.Fatalf("State = %+v %v %v, want %+v", got, found, err, want)
	}
}
