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
	found, err = s.readJSON(ctx, s.stateKey(), &st)
	return st, found, err
}

// PutState records the newest attempt's state. Write it under the lock.
func (s *Store) PutState(ctx context.Context, st State) error {
	return s.writeJSON(ctx, s.stateKey(), st)
}

// DaemonInfo is what a daemon (backupd run) records on the prefix for the
// tools that watch it, `backupd list` and lbtop: its schedules, and the
// last drill. It is written whole at the daemon's start and after each
// drill, without the lock; of two daemons on one prefix the newest write
// wins (they should run one schedule).
type DaemonInfo struct {
	Holder  string    `json:"holder"`
	Started time.Time `json:"started"`
	// Updated is the time of this write.
	Updated  time.Time     `json:"updated"`
	Schedule ScheduleInfo  `json:"schedule"`
	Drill    *ScheduleInfo `json:"drillSchedule,omitempty"` // nil: no drills scheduled
	// LastDrill is the newest drill's outcome; nil if none ran yet.
	LastDrill *DrillResult `json:"lastDrill,omitempty"`
}

// ScheduleInfo is a schedule: its spec and the time between two slots.
type ScheduleInfo struct {
	Spec     string   `json:"spec"`
	Interval Duration `json:"interval"`
}

// DrillResult is the outcome of one drill.
type DrillResult struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	ID    string    `json:"id,omitempty"` // the backup drilled; empty if none was found
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"` // why it failed
}

// Duration is a time.Duration written in JSON as its String ("2h0m0s").
type Duration time.Duration

// MarshalText writes d as time.Duration's String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a time.ParseDuration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (s *Store) daemonKey() string { return manifest.PrefixKey(s.prefix, manifest.DaemonName) }

// DaemonInfo reads what the daemon recorded; found is false if no daemon
// ever ran on the prefix.
func (s *Store) DaemonInfo(ctx context.Context) (info DaemonInfo, found bool, err error) {
	found, err = s.readJSON(ctx, s.daemonKey(), &info)
	return info, found, err
}

// PutDaemonInfo writes info whole.
func (s *Store) PutDaemonInfo(ctx context.Context, info DaemonInfo) error {
	return s.writeJSON(ctx, s.daemonKey(), info)
}

// readJSON reads the small JSON object at key into v; false if there is none.
func (s *Store) readJSON(ctx context.Context, key string, v any) (bool, error) {
	b, err := s.ReadAll(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("store: %s: %w", key, err)
	}
	return true, nil
}

// writeJSON writes v as the whole object at key: every store replaces an
// object at once, so a reader sees the old object or the new one.
func (s *Store) writeJSON(ctx context.Context, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("store: %s: %w", key, err)
	}
	return s.WriteAll(ctx, key, b, false)
}
