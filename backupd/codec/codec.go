// Package codec turns a snapshot stream into the stored object and back:
// compression (zstd, gzip or none) and then, optionally, age encryption to
// one or more recipients. Both directions stream with bounded memory.
package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Codecs by name.
const (
	Zstd = "zstd"
	Gzip = "gzip"
	None = "none"
)

// DefaultLevel is the zstd level used when none is given: 1, the encoder's
// SpeedFastest, not zstd's own default 3 (SpeedDefault). On snapshots of
// etcd it stores about as small (0.181 of the benchmark snapshot, level 3
// 0.184) for one half to two thirds of the CPU time (BENCHMARKS.md,
// backupd), and a backup must keep up with the stream on the member's
// machine.
const DefaultLevel = 1

// ErrIdentity means the object is encrypted and no identity given opens it.
var ErrIdentity = errors.New("codec: no identity decrypts this backup")

// Options choose how an object is encoded.
type Options struct {
	Codec string // zstd, gzip or none
	// Level is zstd's level (1-22, mapped onto the encoder's four speeds)
	// or gzip's (1-9); 0 is the codec's default.
	Level int
	// Recipients encrypt the object when not empty.
	Recipients []age.Recipient
	// RecipientNames are the recipients as written (age1...), for the manifest.
	RecipientNames []string
}

// Check reports a bad codec or level.
func (o Options) Check() error {
	switch o.Codec {
	case Zstd:
		if o.Level < 0 || o.Level > 22 {
			return fmt.Errorf("codec: zstd level %d: want 1-22", o.Level)
		}
	case Gzip:
		if o.Level < 0 || o.Level > 9 {
			return fmt.Errorf("codec: gzip level %d: want 1-9", o.Level)
		}
	case None:
	default:
		return fmt.Errorf("codec: unknown compression %q: want zstd, gzip or none", o.Codec)
	}
	return nil
}

// NewWriter returns a writer that compresses, then encrypts, into w.
// Close flushes both layers; it does not close w.
func NewWriter(w io.Writer, o Options) (io.WriteCloser, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	var closers []io.Closer
	dst := w
	if len(o.Recipients) > 0 {
		ew, err := age.Encrypt(w, o.Recipients...)
		if err != nil {
			return nil, fmt.Errorf("codec: age: %w", err)
		}
		closers = append(closers, ew)
		dst = ew
	}
	var top io.WriteCloser
	switch o.Codec {
	case Zstd:
		level := o.Level
		if level == 0 {
			level = DefaultLevel
		}
		zw, err := zstd.NewWriter(dst, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithEncoderConcurrency(2))
		if err != nil {
			return nil, fmt.Errorf("codec: zstd: %w", err)
		}
		top = zw
	case Gzip:
		level := o.Level
		if level == 0 {
			level = gzip.DefaultCompression
		}
		gw, err := gzip.NewWriterLevel(dst, level)
		if err != nil {
			return nil, fmt.Errorf("codec: gzip: %w", err)
		}
		top = gw
	default:
		top = nopWriteCloser{dst}
	}
	return &stack{WriteCloser: top, inner: closers}, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// stack closes the compressor, then the encryptor.
type stack struct {
	io.WriteCloser
	inner []io.Closer
}

func (s *stack) Close() error {
	err := s.WriteCloser.Close()
	for _, c := range s.inner {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// NewReader decrypts (if encrypted) and decompresses r. identities are
// needed only for an encrypted object.
func NewReader(r io.Reader, codec string, encrypted bool, identities []age.Identity) (io.ReadCloser, error) {
	src := r
	if encrypted {
		if len(identities) == 0 {
			return nil, fmt.Errorf("%w: it is encrypted; give --identity", ErrIdentity)
		}
		dr, err := age.Decrypt(r, identities...)
		if err != nil {
			var nm *age.NoIdentityMatchError
			if errors.As(err, &nm) {
				return nil, fmt.Errorf("%w: %v", ErrIdentity, err)
			}
			return nil, fmt.Errorf("codec: age: %w", err)
		}
		src = dr
	}
	switch codec {
	case Zstd:
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("codec: zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	case Gzip:
		gr, err := gzip.NewReader(src)
		if err != nil {
			return nil, fmt.Errorf("codec: gzip: %w", err)
		}
		return gr, nil
	case None:
		return io.NopCloser(src), nil
	}
	return nil, fmt.Errorf("codec: unknown compression %q", codec)
}

// ParseRecipients reads age recipients given on the command line and in
// files (one a line, # comments).
func ParseRecipients(given []string, files []string) ([]age.Recipient, []string, error) {
	text := strings.Join(given, "\n")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("codec: recipients file: %w", err)
		}
		text += "\n" + string(b)
	}
	var names []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			names = append(names, l)
		}
	}
	if len(names) == 0 {
		return nil, nil, nil
	}
	rs, err := age.ParseRecipients(strings.NewReader(strings.Join(names, "\n")))
	if err != nil {
		return nil, nil, fmt.Errorf("codec: recipients: %w", err)
	}
	return rs, names, nil
}

// ParseIdentityFiles reads age identity files (AGE-SECRET-KEY-1... lines).
func ParseIdentityFiles(files []string) ([]age.Identity, error) {
	var ids []age.Identity
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("codec: identity: %w", err)
		}
		more, err := age.ParseIdentities(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("codec: identity %s: %w", f, err)
		}
		ids = append(ids, more...)
	}
	return ids, nil
}
