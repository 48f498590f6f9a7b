package backupd

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/backoff"
	"github.com/lifeboat-dev/lifeboat/backupd/internal/clustertest"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t *testing.T, url, prefix string) *store.Store {
	t.Helper()
	s, err := store.Open(testCtx(t), url, prefix, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.Retry = backoff.Policy{Attempts: 2, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	t.Cleanup(func() { s.Close() })
	return s
}

func testConfig(t *testing.T, endpoints []string, s *store.Store) *Config {
	return &Config{
		Client:   clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second},
		Store:    s,
		Codec:    codec.Options{Codec: codec.Zstd},
		SpoolDir: t.TempDir(),
		Retry:    backoff.Policy{Attempts: 3, Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:   testLogger(),
	}
}

// A backup of a 3-member lifeboat cluster streams from a follower, commits
// a manifest whose numbers are snapkit's, lists, verifies and fetches as a
// snapshot file that snapkit reads with the same hashkv.
func TestBackupVerifyFetchLifeboat(t *testing.T) {
	c := startLifeboat(t, 3)
	put(t, c.Endpoints, clientv3.Config{}, "k", 300)
	s := openStore(t, "file://"+t.TempDir(), "prod/etcd")
	cfg := testConfig(t, c.Endpoints, s)
	m, err := Backup(testCtx(t), cfg, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Role != RoleFollower || m.Revision < 301 || m.TotalKey != 300 || m.Object.Codec != "zstd" || m.Object.Size >= m.DBSize {
		t.Errorf("manifest: role %s rev %d keys %d codec %s stored %d of %d", m.Role, m.Revision, m.TotalKey, m.Object.Codec, m.Object.Size, m.DBSize)
	}
	// file://'s MD5 is fileblob's, computed in process over the upload's
	// writes: not compared, recorded, and that of the stored bytes.
	if stored := readObject(t, s, m.Object.Key); m.Object.StoreMD5 || m.Object.MD5 != fmt.Sprintf("%x", md5.Sum(stored)) {
		t.Errorf("file:// MD5: compared %v, manifest %s, stored bytes %x", m.Object.StoreMD5, m.Object.MD5, md5.Sum(stored))
	}
	l, err := s.List(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Backups) != 1 || len(l.Orphans) != 0 || l.Backups[0].Manifest.ID != m.ID {
		t.Fatalf("listing: %+v", l)
	}
	b, err := l.Find("latest")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(testCtx(t), s, b, ReadOptions{SpoolDir: t.TempDir()})
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	out := t.TempDir() + "/fetched.db"
	if _, err := Fetch(testCtx(t), s, b, ReadOptions{}, out); err != nil {
		t.Fatal(err)
	}
	hk, err := snapkit.HashKVFile(testCtx(t), out, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hk.Hash != m.HashKV || hk.HashRevision != m.Revision {
		t.Errorf("fetched hashkv %d at %d, manifest %d at %d", hk.Hash, hk.HashRevision, m.HashKV, m.Revision)
	}
	if _, err := Fetch(testCtx(t), s, b, ReadOptions{}, out); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("fetch over an existing file: %v", err)
	}
}

// A spool corrupted on purpose between the stream and its verification
// fails the backup with cause verify, and leaves no backup, only a staging
// orphan: a bit flipped in a meta page, in the last byte of the db (the
// unused end of a page, which no walk reads) or in the trailer. The
// trailer is checked on what the compressor read behind the stream, so
// when it read those bytes before the flip, only the read-back of the
// spool against what it read sees the last two.
func TestCorruptSpoolCountsNothing(t *testing.T) {
	c := startLifeboat(t, 1)
	put(t, c.Endpoints, clientv3.Config{}, "k", 50)
	for _, tc := range []struct {
		name string
		off  func(size int64) int64
	}{
		{"meta page", func(int64) int64 { return 5000 }},
		{"end of the db", func(size int64) int64 { return size - snapkit.TrailerSize - 1 }},
		{"trailer", func(size int64) int64 { return size - 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, "mem://", "p")
			cfg := testConfig(t, c.Endpoints, s)
			cfg.AfterSpool = func(path string) error {
				fi, err := os.Stat(path)
				if err != nil {
					return err
				}
				return flipByte(path, tc.off(fi.Size()))
			}
			_, err := Backup(testCtx(t), cfg, time.Time{})
			if CauseOf(err) != CauseVerify || !errors.Is(err, ErrSnapshot) {
				t.Fatalf("backup of a corrupt spool: cause %q, %v", CauseOf(err), err)
			}
			l, err := s.List(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Backups) != 0 || len(l.Orphans) != 1 {
				t.Fatalf("after a failed backup: %d backups, %d orphans", len(l.Backups), len(l.Orphans))
			}
		})
	}
}

// The stream's sums: the trailer must be the SHA-256 of what precedes it,
// whatever the chunks, and a stream without one fails.
func TestStreamSumsCheck(t *testing.T) {
	db := bytes.Repeat([]byte("lifeboat"), 512) // 4096 bytes, as a page
	sum := sha256.Sum256(db)
	good := append(slices.Clone(db), sum[:]...)
	bad := slices.Clone(good)
	bad[len(bad)-3] ^= 1
	for _, tc := range []struct {
		name   string
		stream []byte
		total  int64
		chunk  int
		ok     bool
	}{
		{"whole", good, int64(len(good)), len(good), true},
		{"chunks across the trailer", good, int64(len(good)), 1000, true},
		{"byte by byte", good, int64(len(good)), 1, true},
		{"bad trailer", bad, int64(len(bad)), 1000, false},
		{"no trailer", db, int64(len(db)), 1000, false},
		{"short", good[:len(good)-1], int64(len(good)), 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStreamSums(tc.total)
			for p := tc.stream; len(p) > 0; p = p[min(tc.chunk, len(p)):] {
				s.write(p[:min(tc.chunk, len(p))])
			}
			got, err := s.check()
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrSnapshot) {
				t.Fatalf("check: %q, %v", got, err)
			}
			if tc.ok && got != hex.EncodeToString(sum[:]) {
				t.Errorf("db SHA-256 %s, want %x", got, sum)
			}
		})
	}
}

func clientv3Config() clientv3.Config { return clientv3.Config{} }

func readObject(t *testing.T, s *store.Store, key string) []byte {
	t.Helper()
	b, err := s.ReadAll(testCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putRandom(endpoints []string, n, size int) error {
	return clustertest.PutRandom(clientv3.Config{Endpoints: endpoints}, "r", n, size)
}

// flipByte flips one bit of the byte at off in path.
func flipByte(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0x10
	_, err = f.WriteAt(b, off)
	return err
}
