package backupd

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultSchedule takes a backup every two hours, on the hour.
const DefaultSchedule = "0 */2 * * *"

// Schedule says when the slots are.
type Schedule interface {
	// Next is the first slot after t.
	Next(t time.Time) time.Time
	// String is the spec it was parsed from.
	String() string
}

// ParseSchedule reads a robfig/cron/v3 standard spec ("0 */2 * * *",
// "@hourly", "@every 2h"). Cron specs are read in UTC. "@every D" is
// aligned to multiples of D since the Unix epoch rather than to the start
// of the process, so that two daemons on one prefix agree on the slots.
func ParseSchedule(spec string) (Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("backupd: schedule %q: %w", spec, err)
	}
	if cd, ok := s.(cron.ConstantDelaySchedule); ok {
		return aligned{cd.Delay, spec}, nil
	}
	return utc{s, spec}, nil
}

type utc struct {
	cron cron.Schedule
	spec string
}

func (u utc) Next(t time.Time) time.Time { return u.cron.Next(t.UTC()) }
func (u utc) String() string             { return u.spec }

// aligned fires at every multiple of its duration.
type aligned struct {
	every time.Duration
	spec  string
}

func (a aligned) Next(t time.Time) time.Time { return t.Truncate(a.every).Add(a.every).UTC() }
func (a aligned) String() string             { return a.spec }

// Interval is the time between the two slots after t: what /healthz
// compares the age of the last success with.
func Interval(s Schedule, t time.Time) time.Duration {
	n := s.Next(t)
	return s.Next(n).Sub(n)
}
