package snapkit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// Trailer is the outcome of checking a snapshot file's SHA-256 trailer.
type Trailer struct {
	Present bool   `json:"present"`
	Valid   bool   `json:"valid"`
	Want    string `json:"want,omitempty"` // hex, as stored in the file
	Got     string `json:"got,omitempty"`  // hex, computed over the db bytes
}

// Progress receives the bytes done out of a total; it must be cheap.
type Progress func(done, total int64)

const hashBufSize = 1 << 20

// VerifyTrailer streams the db part of src through SHA-256 with a 1 MiB
// buffer and compares it with the trailer. A source without a trailer gives
// Present=false and no error.
func VerifyTrailer(ctx context.Context, src Source, progress Progress) (Trailer, error) {
	if !src.HasTrailer {
		return Trailer{}, nil
	}
	f, err := os.Open(src.DBPath)
	if err != nil {
		return Trailer{}, fmt.Errorf("snapkit: %w", err)
	}
	defer f.Close()
	want, err := readTrailer(f, src)
	if err != nil {
		return Trailer{}, err
	}
	got, err := sha256Prefix(ctx, f, src.DBSize, progress)
	if err != nil {
		return Trailer{}, fmt.Errorf("snapkit: %s: %w", src.DBPath, err)
	}
	return Trailer{
		Present: true,
		Valid:   bytes.Equal(want, got),
		Want:    hex.EncodeToString(want),
		Got:     hex.EncodeToString(got),
	}, nil
}

// SumDB streams the db part of src (never the trailer) through SHA-256
// with a 1 MiB buffer and returns the sum.
func SumDB(ctx context.Context, src Source, progress Progress) ([]byte, error) {
	f, err := os.Open(src.DBPath)
	if err != nil {
		return nil, fmt.Errorf("snapkit: %w", err)
	}
	defer f.Close()
	sum, err := sha256Prefix(ctx, f, src.DBSize, progress)
	if err != nil {
		return nil, fmt.Errorf("snapkit: %s: %w", src.DBPath, err)
	}
	return sum, nil
}

// ReadTrailer returns the SHA-256 stored at the end of a snapshot file, as
// it is written, without checking it; a source without one gives nil.
func ReadTrailer(src Source) ([]byte, error) {
	if !src.HasTrailer {
		return nil, nil
	}
	f, err := os.Open(src.DBPath)
	if err != nil {
		return nil, fmt.Errorf("snapkit: %w", err)
	}
	defer f.Close()
	return readTrailer(f, src)
}

func readTrailer(r io.ReaderAt, src Source) ([]byte, error) {
	want := make([]byte, TrailerSize)
	if _, err := r.ReadAt(want, src.DBSize); err != nil {
		return nil, fmt.Errorf("snapkit: %s: read trailer at offset %d: %w", src.DBPath, src.DBSize, err)
	}
	return want, nil
}

// sha256Prefix hashes the first n bytes of r.
func sha256Prefix(ctx context.Context, r io.ReaderAt, n int64, progress Progress) ([]byte, error) {
	h := sha256.New()
	buf := make([]byte, hashBufSize)
	for off := int64(0); off < n; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		chunk := buf[:min(int64(len(buf)), n-off)]
		m, err := r.ReadAt(chunk, off)
		if m < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read at offset %d: %w", off+int64(m), err)
		}
		h.Write(chunk)
		off += int64(m)
		if progress != nil {
			progress(off, n)
		}
	}
	return h.Sum(nil), nil
}
