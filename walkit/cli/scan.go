package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// visit is called by scan with each record, or with the damage that stands
// in its place. Returning an error stops the scan with it.
type visit func(rec walkit.Record, pos walkit.Position, damage *walkit.DamageError) error

// scan streams every record of the WAL in dir through fn, past damage
// (walkit's Reader resynchronises), with progress on a terminal. A first
// segment whose first record does not decode, or a WAL with no record at
// all, is not a WAL: a usage error.
func (e *env) scan(ctx context.Context, dir, what string, fn visit) error {
	r, err := walkit.NewReader(dir)
	if err != nil {
		return usage(err) // walkit's errors name the dir
	}
	defer r.Close()
	segs := r.Segments()
	start := make(map[string]int64, len(segs)) // bytes before each segment, for progress
	var total int64
	for _, s := range segs {
		start[s.Name] = total
		total += s.Size
	}
	progress := clikit.NewProgress(e.stderr, what, total)
	defer progress.Done()
	for n := 0; ; n++ {
		rec, pos, err := r.Next()
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			progress.Set(start[pos.Segment] + pos.Offset)
		}
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return usage(fmt.Errorf("walkit: %s: not a WAL: %s holds no records", dir, segs[0].Name))
			}
			return nil
		}
		var de *walkit.DamageError
		if errors.As(err, &de) {
			if n == 0 {
				return notWAL(dir, de.Pos.Segment, de.Pos.Offset, de.Kind, de.Err)
			}
			err = fn(walkit.Record{}, de.Pos, de)
		} else if err != nil {
			return usage(err) // a read error, naming the segment's file
		} else {
			err = fn(rec, pos, nil)
		}
		if err != nil {
			return err
		}
	}
}

// notWAL explains damage at the very first record of a WAL: the file is
// not a WAL segment at all (or its head is gone), which is unreadable input.
func notWAL(dir, segment string, offset int64, kind walkit.DamageKind, err error) error {
	return usage(fmt.Errorf("walkit: %s: not a WAL segment: its first record does not decode (%s at offset %d: %v)",
		filepath.Join(dir, segment), kind, offset, err))
}

// interruptible runs f, a walkit call that takes no context, and returns
// early with ctx's error when ctx ends first (SIGINT): the process is about
// to exit, and f only reads.
func interruptible[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
