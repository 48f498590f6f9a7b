package server

import (
	"fmt"
	"sort"
	"sync"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// alarmStore keeps the raised alarms in memory; the apply loop writes them
// to the alarm bucket as well.
type alarmStore struct {
	mu     sync.RWMutex
	alarms map[pb.AlarmType]map[uint64]bool
}

func loadAlarms(be *backend.Backend) (*alarmStore, error) {
	a := &alarmStore{alarms: make(map[pb.AlarmType]map[uint64]bool)}
	if err := a.reload(be); err != nil {
		return nil, err
	}
	return a, nil
}

// reload replaces the alarms with the backend's.
func (a *alarmStore) reload(be *backend.Backend) error {
	var ms []*pb.AlarmMember
	if err := be.View(func(tx *bolt.Tx) error {
		var err error
		ms, err = schema.Alarms(tx)
		return err
	}); err != nil {
		return fmt.Errorf("server: load alarms: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.alarms = make(map[pb.AlarmType]map[uint64]bool)
	for _, m := range ms {
		a.setLocked(m.Alarm, m.MemberID, true)
	}
	return nil
}

func (a *alarmStore) setLocked(t pb.AlarmType, member uint64, on bool) bool {
	ms := a.alarms[t]
	if on {
		if ms == nil {
			ms = make(map[uint64]bool)
			a.alarms[t] = ms
		}
		if ms[member] {
			return false
		}
		ms[member] = true
		return true
	}
	if !ms[member] {
		return false
	}
	delete(ms, member)
	if len(ms) == 0 {
		delete(a.alarms, t)
	}
	return true
}

// activate raises alarm t for member in memory and in tx; it reports
// whether it was new.
func (a *alarmStore) activate(tx *bolt.Tx, t pb.AlarmType, member uint64) (bool, error) {
	a.mu.Lock()
	changed := a.setLocked(t, member, true)
	a.mu.Unlock()
	if !changed {
		return false, nil
	}
	return true, schema.PutAlarm(tx, &pb.AlarmMember{MemberID: member, Alarm: t})
}

// deactivate clears alarm t of member; it reports whether it was raised.
func (a *alarmStore) deactivate(tx *bolt.Tx, t pb.AlarmType, member uint64) (bool, error) {
	a.mu.Lock()
	changed := a.setLocked(t, member, false)
	a.mu.Unlock()
	if !changed {
		return false, nil
	}
	return true, schema.DeleteAlarm(tx, &pb.AlarmMember{MemberID: member, Alarm: t})
}

// active reports whether any member raised alarm t.
func (a *alarmStore) active(t pb.AlarmType) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.alarms[t]) > 0
}

// list returns the alarms, optionally only of type t (NONE means all).
func (a *alarmStore) list() []*pb.AlarmMember {
	return a.get(pb.AlarmType_NONE)
}

func (a *alarmStore) get(t pb.AlarmType) []*pb.AlarmMember {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []*pb.AlarmMember
	for at, ms := range a.alarms {
		if t != pb.AlarmType_NONE && at != t {
			continue
		}
		for m := range ms {
			out = append(out, &pb.AlarmMember{MemberID: m, Alarm: at})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Alarm != out[j].Alarm {
			return out[i].Alarm < out[j].Alarm
		}
		return out[i].MemberID < out[j].MemberID
	})
	return out
}
