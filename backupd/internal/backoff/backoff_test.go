package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	fail := errors.New("boom")
	tests := []struct {
		name      string
		attempts  int
		failFirst int  // calls that fail before one succeeds
		perm      bool // failures are permanent
		wantCalls int
		wantErr   bool
	}{
		{"succeeds at once", 3, 0, false, 1, false},
		{"succeeds on the third", 3, 2, false, 3, false},
		{"runs out", 3, 10, false, 3, true},
		{"permanent stops", 3, 10, true, 1, true},
		{"zero policy tries once", 0, 10, false, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Attempts: tt.attempts, Initial: time.Millisecond, Max: 2 * time.Millisecond}
			calls, retries := 0, 0
			err := p.Do(context.Background(), func(context.Context) error {
				calls++
				if calls <= tt.failFirst {
					if tt.perm {
						return Permanent(fail)
					}
					return fail
				}
				return nil
			}, func(int, error, time.Duration) { retries++ })
			if calls != tt.wantCalls || (err != nil) != tt.wantErr {
				t.Fatalf("calls %d err %v, want %d calls, error %v", calls, err, tt.wantCalls, tt.wantErr)
			}
			if err != nil && !errors.Is(err, fail) {
				t.Errorf("error %v does not wrap the failure", err)
			}
			if retries != calls-1 {
				t.Errorf("onRetry called %d times for %d calls", retries, calls)
			}
		})
	}
}

func TestDoStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Policy{Attempts: 100, Initial: time.Hour, Max: time.Hour}.Do(ctx, func(context.Context) error {
		calls++
		return errors.New("down")
	}, func(int, error, time.Duration) { cancel() })
	if err == nil || calls != 1 {
		t.Fatalf("calls %d err %v", calls, err)
	}
}
