package cli

import (
	"context"
	"errors"
	"testing"
)

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
