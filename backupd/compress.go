package backupd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/lifeboat-dev/lifeboat/backupd/store"
)

// spoolFeed is the spool as the stream writes it, for the compressor that
// reads it behind the stream: the stream publishes each write once it is
// in the file, and ends the feed when it ends (with its error if it broke).
type spoolFeed struct {
	mu      sync.Mutex
	more    *sync.Cond
	written int64
	ended   bool
	err     error
}

func newSpoolFeed() *spoolFeed {
	f := &spoolFeed{}
	f.more = sync.NewCond(&f.mu)
	return f
}

// publish says that n more bytes are in the file.
func (f *spoolFeed) publish(n int) {
	f.mu.Lock()
	f.written += int64(n)
	f.mu.Unlock()
	f.more.Broadcast()
}

// errStreamBroke ends the feed of a stream that broke: the stream reports
// why.
var errStreamBroke = errors.New("backupd: the stream broke")

// end says that no more bytes come: the stream is complete if err is nil.
func (f *spoolFeed) end(err error) {
	f.mu.Lock()
	f.ended, f.err = true, err
	f.mu.Unlock()
	f.more.Broadcast()
}

// next waits until the file holds more than off bytes or the feed has
// ended, and returns how many it holds; at the end, io.EOF or the
// stream's error.
func (f *spoolFeed) next(off int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.written <= off && !f.ended {
		f.more.Wait()
	}
	switch {
	case f.written > off:
		return f.written, nil
	case f.err != nil:
		return f.written, f.err
	}
	return f.written, io.EOF
}

// feedWriter writes to the spool file and publishes each write.
type feedWriter struct {
	f    *os.File
	feed *spoolFeed
}

func (w feedWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.feed.publish(n)
	return n, err
}

// spoolReader reads the spool behind the stream, as far as it is written.
type spoolReader struct {
	f    *os.File
	feed *spoolFeed
	off  int64
}

func (r *spoolReader) Read(p []byte) (int, error) {
	avail, err := r.feed.next(r.off)
	if avail <= r.off {
		return 0, err
	}
	want := min(int64(len(p)), avail-r.off)
	n, err := r.f.ReadAt(p[:want], r.off)
	r.off += int64(n)
	if err != nil {
		return n, fail(CauseSpool, fmt.Errorf("spool %s: %d bytes written, read at %d: %w", r.f.Name(), avail, r.off, err))
	}
	return n, nil
}

// compression is a compressor running behind the stream: it reads the
// spool as the stream writes it, hashes what it reads (streamSums: the
// SHA-256 that the trailer must equal, the CRC-32C that the read-back of
// the spool must match) and uploads it through the codec to the staging
// object. So the stream never waits for the codec, and once it has ended
// the spool's verification runs beside the codec's end instead of after
// it; the sums are those of the very bytes uploaded.
type compression struct {
	done chan struct{}
	sums *streamSums
	up   store.Uploaded
	err  error // a *Failure
}

// compressSpool starts compressing the spool at path, of total bytes
// (trailer included), as feed tells it is written. stop is called if the
// compressor fails, so that the stream stops too.
func compressSpool(ctx context.Context, cfg *Config, staging, path string, feed *spoolFeed, total int64, stop func()) *compression {
	c := &compression{done: make(chan struct{}), sums: newStreamSums(total)}
	go func() {
		defer close(c.done)
		c.up, c.err = c.run(ctx, cfg, staging, path, feed)
		if c.err != nil {
			stop()
		}
	}()
	return c
}

func (c *compression) run(ctx context.Context, cfg *Config, staging, path string, feed *spoolFeed) (store.Uploaded, error) {
	f, err := os.Open(path)
	if err != nil {
		return store.Uploaded{}, fail(CauseSpool, fmt.Errorf("spool: %w", err))
	}
	defer f.Close()
	up, err := newUpload(ctx, cfg, staging)
	if err != nil {
		return store.Uploaded{}, fail(CauseStore, err)
	}
	src := &spoolReader{f: f, feed: feed}
	buf := make([]byte, spoolReadSize)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			c.sums.write(buf[:n])
			if _, err := up.Write(buf[:n]); err != nil {
				up.abort()
				return store.Uploaded{}, fail(CauseStore, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			up.abort()
			return store.Uploaded{}, rerr
		}
	}
	uploaded, err := up.finish()
	return uploaded, fail(CauseStore, err)
}

// wait waits for the compressor to finish and returns the upload's sums and
// those of what it read from the spool.
func (c *compression) wait() (store.Uploaded, *streamSums, error) {
	<-c.done
	return c.up, c.sums, c.err
}
