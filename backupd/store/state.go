package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lifeboat-dev/lifeboat/backupd/manifest"
)

// State is the outcome of the newest backup attempt on the prefix,
// written by the lock holder: retention deletes nothing while it failed,
// and a daemon skips a slot another one already took.
type State struct {
	Slot   time.Time `json:"slot,omitzero"` // the scheduled time; zero for once
	Holder string    `json:"holder"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
	// Result is "running", "ok" or "failed".
	Result string `json:"result"`
	Cause  string `json:"cause,omitempty"`
	Error  string `json:"error,omitempty"`
	ID     string `json:"id,omitempty"` // the backup it made
}

// Results of an attempt.
const (
	ResultRunning = "running"
	ResultOK      = "ok"
	ResultFailed  = "failed"
)

func (s *Store) stateKey() string { return manifest.PrefixKey(s.prefix, manifest.StateName) }

// State reads the newest attempt's state; found is false if none was ever
// recorded.
func (s *Store) State(ctx context.Context) (st State, found bool, err error) {
	b, err := s.ReadAll(ctx, s.stateKey())
	if errors.Is(err, ErrNotFound) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, false, fmt.Errorf("store: %s: %w", s.stateKey(), err)
	}
	return st, true, nil
}

// PutState records the newest attempt's state. Write it under the lock.
func (s *Store) PutState(ctx context.Context, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("store: state: %w", err)
	}
	return s.WriteAll(ctx, s.stateKey(), b, false)
}
