// Package backoff retries an operation with exponential backoff and
// jitter, a bounded number of times, until an error is permanent or the
// context ends.
package backoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy bounds the retries. The zero Policy tries once.
type Policy struct {
	Attempts int           // total tries; < 1 means 1
	Initial  time.Duration // the first wait
	Max      time.Duration // the longest wait
}

// Default is what backupd uses for store and endpoint calls.
var Default = Policy{Attempts: 5, Initial: 200 * time.Millisecond, Max: 10 * time.Second}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying; Do returns it (unwrapped) at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Do calls fn until it succeeds, returns a Permanent error, the attempts
// run out or ctx ends. onRetry, if not nil, hears of each failure that will
// be retried. It returns fn's last error.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context) error, onRetry func(attempt int, err error, wait time.Duration)) error {
	wait := p.Initial
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return perm.err
		}
		if attempt >= p.Attempts || ctx.Err() != nil {
			return err
		}
		d := wait/2 + rand.N(wait/2+1) // jitter in [wait/2, wait]
		if onRetry != nil {
			onRetry(attempt, err, d)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, p.Max)
	}
}
