package backupd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// ErrSnapshot means a snapshot file failed one of snapkit's checks.
var ErrSnapshot = errors.New("backupd: snapshot failed verification")

// facts is what snapkit tells of a verified snapshot file.
type facts struct {
	Revision, CompactRevision int64
	RaftIndex, RaftTerm       uint64
	HashKV                    uint32
	HashKVRevision            int64
	TotalKey                  int
	DBSize                    int64
	DBSHA256                  string
	StorageVersion            string
}

// streamSums hashes a snapshot as it is compressed: SHA-256 of its db
// part, which the trailer at its end must equal, and CRC-32C of all of it,
// which the spool must match when it is read back.
type streamSums struct {
	total   int64 // the stream's size, trailer included
	n       int64
	sha     hash.Hash
	crc     uint32
	trailer [snapkit.TrailerSize]byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newStreamSums(total int64) *streamSums { return &streamSums{total: total, sha: sha256.New()} }

func (s *streamSums) write(p []byte) {
	s.crc = crc32.Update(s.crc, castagnoli, p)
	db := s.total - snapkit.TrailerSize
	if s.n < db {
		s.sha.Write(p[:min(int64(len(p)), db-s.n)])
	}
	if end := s.n + int64(len(p)); end > db && s.n < s.total {
		from := max(s.n, db)
		copy(s.trailer[from-db:], p[from-s.n:min(end, s.total)-s.n])
	}
	s.n += int64(len(p))
}

// check compares the streamed db's SHA-256 with the streamed trailer and
// returns it (hex). Any mismatch is an error wrapping ErrSnapshot.
func (s *streamSums) check() (string, error) {
	if s.n != s.total || !snapkit.HasTrailer(s.total) {
		return "", fmt.Errorf("%w: %d bytes streamed of %d: no SHA-256 trailer", ErrSnapshot, s.n, s.total)
	}
	got := s.sha.Sum(nil)
	if !bytes.Equal(got, s.trailer[:]) {
		return "", fmt.Errorf("%w: SHA-256 mismatch as streamed: trailer %x, computed %x", ErrSnapshot, s.trailer, got)
	}
	return hex.EncodeToString(got), nil
}

// readSpool reads the spool whole and returns its size and CRC-32C. It
// reads the file in spoolReadSize reads into one buffer that stays in the
// CPU's cache: on the benchmark's 820 MB this costs 0.21 cpu-s where
// mapping it 4 MiB at a time cost 0.34 (page faults and unmapping;
// BENCHMARKS.md, backupd).
func readSpool(ctx context.Context, path string) (n int64, crc uint32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	buf := make([]byte, spoolReadSize)
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		m, err := f.Read(buf)
		crc = crc32.Update(crc, castagnoli, buf[:m])
		n += int64(m)
		if err == io.EOF {
			return n, crc, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("spool %s: %w", path, err)
		}
	}
}

// checkSpool compares the spool's size and CRC-32C, read back, with the
// sums of what was compressed: the walk's facts are then those of the
// bytes the trailer covered and the upload was made of.
func (s *streamSums) checkSpool(path string, n int64, crc uint32) error {
	if n != s.total || crc != s.crc {
		return fmt.Errorf("%w: spool %s differs from what was compressed: %d bytes, CRC-32C %08x; compressed %d bytes, %08x",
			ErrSnapshot, path, n, crc, s.total, s.crc)
	}
	return nil
}

// spoolReadSize is the size of the compressor's and readSpool's reads.
const spoolReadSize = 1 << 20

// inspectSpool runs snapkit on a snapshot file: the bbolt structure and
// the schema, and HashKV at the current revision, all with snapkit's
// bounded walks (Inspect with HashKV). The SHA-256 trailer is checked by
// snapkit beside the walks when compressed is nil; else compressed waits
// for the sums of what a compressor read of the spool (streamSums): their
// SHA-256 is checked against their trailer, and the spool, read back
// beside the walks, against their size and CRC-32C. An error of compressed
// is returned as is; any finding is an error wrapping ErrSnapshot.
func inspectSpool(ctx context.Context, path string, lg *slog.Logger, compressed func() (*streamSums, error)) (facts, error) {
	if compressed == nil {
		return walkSpool(ctx, path, lg, false)
	}
	type readBack struct {
		n   int64
		crc uint32
		err error
	}
	spoolCh := make(chan readBack, 1)
	go func() {
		var rb readBack
		rb.n, rb.crc, rb.err = readSpool(ctx, path)
		spoolCh <- rb
	}()
	f, err := walkSpool(ctx, path, lg, true)
	rb := <-spoolCh
	sums, serr := compressed()
	if serr != nil {
		return facts{}, serr
	}
	// The trailer first, then a spool that differs from what was
	// compressed: either explains any finding of the walk.
	dbSHA, serr := sums.check()
	if serr == nil {
		serr = rb.err
	}
	if serr == nil {
		serr = sums.checkSpool(path, rb.n, rb.crc)
	}
	if serr != nil {
		return facts{}, serr
	}
	f.DBSHA256 = dbSHA
	return f, err
}

// walkSpool is snapkit's Inspect with HashKV, and its trailer check unless
// skipTrailer; the walk spills what it records of the key bucket, past
// its budget, beside the spool.
func walkSpool(ctx context.Context, path string, lg *slog.Logger, skipTrailer bool) (facts, error) {
	rep, err := snapkit.Inspect(ctx, path, snapkit.Options{Logger: lg, HashKV: true, SkipTrailer: skipTrailer, SkipHash: true,
		TempDir: filepath.Dir(path)})
	if err != nil {
		return facts{}, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	if !skipTrailer && !rep.Trailer.Present {
		return facts{}, fmt.Errorf("%w: %d bytes: no SHA-256 trailer", ErrSnapshot, rep.FileSize)
	}
	if !rep.OK() {
		more := ""
		if n := len(rep.Findings) + rep.Suppressed - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more)", n)
		}
		return facts{}, fmt.Errorf("%w: %s%s", ErrSnapshot, rep.Findings[0], more)
	}
	hk := rep.HashKV
	if hk == nil {
		return facts{}, fmt.Errorf("%w: hashkv: not computed", ErrSnapshot)
	}
	rev := hk.Revision
	if rev == 0 {
		rev = 1 // an empty store is at revision 1, as etcd reports it
	}
	return facts{
		Revision: rev, CompactRevision: hk.CompactRevision,
		RaftIndex: rep.Meta.ConsistentIndex, RaftTerm: rep.Meta.Term,
		HashKV: hk.Hash, HashKVRevision: hk.HashRevision, TotalKey: rep.TotalKey,
		DBSize: rep.Source.DBSize, DBSHA256: rep.Trailer.Got, StorageVersion: rep.Meta.StorageVersion,
	}, nil
}
