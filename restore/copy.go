package restore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-dev/lifeboat/internal/fsync"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// Progress receives the bytes done out of a total; it must be cheap. The CLI
// draws it on a terminal.
type Progress = snapkit.Progress

// copyChunk is the size of each read and write of a db copy; copyBuffers
// of them are in flight between the reader, the writer and the hasher.
const (
	copyChunk   = 1 << 20
	copyBuffers = 4
)

// copyDB copies the db part of src (without any trailer) to a new file at
// dst, which it creates, and returns the SHA-256 of the bytes copied when
// sum is true; scan, if not nil, is given the bytes copied too. The copy is not synced: the caller syncs it once it is done
// changing it. It holds a shared flock on the source while it reads, as
// bbolt's read-only open does, so a member that holds the db (a running
// etcd takes an exclusive flock) makes it fail with snapkit.ErrLocked.
func copyDB(ctx context.Context, src snapkit.Source, dst string, sum bool, scan *snapkit.FreePageScan, progress Progress) ([]byte, error) {
	in, err := os.Open(src.DBPath)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	if err := unix.Flock(int(in.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", snapkit.ErrLocked, src.DBPath)
		}
		return nil, fmt.Errorf("restore: lock %s: %w", src.DBPath, err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var h hash.Hash
	if sum {
		h = sha256.New()
	}
	if sum || scan != nil {
		err = copyThrough(ctx, out, in, src.DBSize, h, scan, progress)
	} else {
		err = copyPlain(ctx, out, in, src.DBSize, progress)
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("restore: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("restore: copy %s to %s: %w", src.DBPath, dst, err)
	}
	if h == nil {
		return nil, nil
	}
	return h.Sum(nil), nil
}

// copyPlain copies n bytes with copy_file_range where the kernel has it
// (no bytes through user space; a reflink on file systems that share
// extents), in chunks so that progress and cancellation are seen.
func copyPlain(ctx context.Context, out, in *os.File, n int64, progress Progress) error {
	const chunk = 64 << 20
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := io.Copy(out, io.LimitReader(in, min(chunk, n-done)))
		done += m
		if err != nil {
			return err
		}
		if m == 0 {
			return fmt.Errorf("read at offset %d: %w", done, io.ErrUnexpectedEOF)
		}
		if progress != nil {
			progress(done, n)
		}
	}
	return nil
}

// copyThrough reads n bytes in large chunks and hands each to a writer and
// to a hasher (h and scan, either may be nil) running beside the reader, so
// that reading, writing and hashing overlap; the bytes are read once.
func copyThrough(ctx context.Context, out, in *os.File, n int64, h hash.Hash, scan *snapkit.FreePageScan, progress Progress) error {
	const buffers = copyBuffers
	type chunk struct {
		b   []byte
		off int64
	}
	free := make(chan []byte, buffers)
	for range buffers {
		free <- make([]byte, copyChunk)
	}
	toWrite, toHash := make(chan chunk, buffers), make(chan chunk, buffers)
	werr, herr := make(chan error, 1), make(chan struct{})
	go func() { // writer
		var err error
		for c := range toWrite {
			if err == nil {
				_, err = out.WriteAt(c.b, c.off)
			}
			if err == nil {
				// Start writing it out now, so that the one fdatasync at
				// the end has little left to do.
				fsync.StartWriteback(out, c.off, int64(len(c.b)))
			}
			toHash <- c
		}
		close(toHash)
		werr <- err
	}()
	go func() { // hasher
		for c := range toHash {
			if h != nil {
				h.Write(c.b)
			}
			if scan != nil {
				scan.Scan(c.off, c.b)
			}
			free <- c.b[:cap(c.b)]
		}
		close(herr)
	}()
	var rerr error
	for off := int64(0); off < n; {
		if rerr = ctx.Err(); rerr != nil {
			break
		}
		b := (<-free)[:min(copyChunk, n-off)]
		m, err := io.ReadFull(in, b)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			rerr = fmt.Errorf("read at offset %d: %w", off+int64(m), err)
			break
		}
		toWrite <- chunk{b, off}
		off += int64(m)
		if progress != nil {
			progress(off, n)
		}
	}
	close(toWrite)
	err := <-werr
	<-herr
	return errors.Join(rerr, err)
}
