package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestProgress(t *testing.T) {
	tests := []struct {
		name  string
		tty   bool
		total int64
		drawn bool
	}{
		{"terminal, large WAL", true, largeWAL, true},
		{"terminal, small WAL", true, largeWAL - 1, false},
		{"not a terminal", false, 10 * largeWAL, false},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		e := &env{stderr: &stderr, tty: tt.tty}
		report, end := e.progress("verify", tt.total)
		if (report != nil) != tt.drawn {
			t.Errorf("%s: reporter %t, want %t", tt.name, report != nil, tt.drawn)
		}
		if report != nil {
			report(tt.total/2, tt.total)
			report(tt.total, tt.total)
		}
		end()
		if got := stderr.String(); tt.drawn != strings.Contains(got, "verify: ") || tt.drawn != strings.Contains(got, "(100%)") {
			t.Errorf("%s: stderr %q", tt.name, got)
		}
	}
}

func TestInterruptible(t *testing.T) {
	v, err := interruptible(context.Background(), func() (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Errorf("finished call: %d, %v", v, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	block := make(chan struct{})
	defer close(block)
	v, err = interruptible(ctx, func() (int, error) { <-block; return 7, nil })
	if v != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %d, %v", v, err)
	}
}
