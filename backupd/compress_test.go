package backupd

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The compressor's reader follows the spool as the stream writes it: it
// gets every byte in order whatever the writes, waits for the stream when
// it has read all that is written, and ends with io.EOF, or with errStreamBroke when the
// stream broke, after what was written.
func TestSpoolReaderFollowsTheStream(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000)
	for _, tc := range []struct {
		name    string
		writes  int   // size of the stream's writes
		read    int   // size of the reader's buffer
		broke   bool  // the stream ends with an error
		written int64 // bytes written before the end
	}{
		{"small writes, large reads", 100, 64 << 10, false, int64(len(data))},
		{"large writes, small reads", 30000, 1000, false, int64(len(data))},
		{"byte by byte", 1, 7, false, 3000},
		{"broken stream", 4096, 1 << 20, true, 40000},
		{"empty", 1, 100, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool")
			w, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			r, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			feed := newSpoolFeed()
			got := make(chan []byte, 1)
			gotErr := make(chan error, 1)
			go func() {
				var out []byte
				sr := &spoolReader{f: r, feed: feed}
				buf := make([]byte, tc.read)
				for {
					n, err := sr.Read(buf)
					out = append(out, buf[:n]...)
					if err != nil {
						got <- out
						gotErr <- err
						return
					}
				}
			}()
			fw := feedWriter{f: w, feed: feed}
			for p := data[:tc.written]; len(p) > 0; p = p[min(tc.writes, len(p)):] {
				if _, err := fw.Write(p[:min(tc.writes, len(p))]); err != nil {
					t.Fatal(err)
				}
			}
			want := io.EOF
			if tc.broke {
				want = errStreamBroke
				feed.end(errStreamBroke)
			} else {
				feed.end(nil)
			}
			if out, err := <-got, <-gotErr; !errors.Is(err, want) || !bytes.Equal(out, data[:tc.written]) {
				t.Fatalf("read %d bytes (want %d, same: %v), ended with %v, want %v",
					len(out), tc.written, bytes.Equal(out, data[:tc.written]), err, want)
			}
		})
	}
}
