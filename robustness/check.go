package robustness

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// FinalState is what one member held once the faults had healed and the
// traffic had stopped.
type FinalState struct {
	Member string
	Rev    int64
	KVs    []KV // every key under KeyPrefix at Rev
	// Hash is the member's HashKV at HashRev, over the revisions after
	// HashCompactRev: hashes compare only when both revisions agree, as
	// etcd's corruption check compares them (a member that has not yet
	// applied a compaction hashes more revisions).
	Hash           uint32
	HashRev        int64
	HashCompactRev int64
}

// Report is the outcome of every check of one history.
type Report struct {
	Operations int // client operations recorded
	Watches    int // watches opened
	Events     int // distinct revisions the watches delivered
	// Lost counts acknowledged writes that the watches or the final state
	// show were lost.
	Lost      int
	Anomalies []Anomaly
	// Unverified says what could not be decided (a check that timed out).
	Unverified   []string
	Linearizable LinearizableResult
}

// Check runs every checker on h, the members' final states and the
// committed raft log (nil if it could not be read).
func Check(h History, finals []FinalState, log *RaftLog, timeout time.Duration) Report {
	r := Report{Operations: len(h.Operations), Watches: len(h.Watches)}
	events, disagree := BuildEventLog(h)
	r.Events = len(events.Events)
	r.Anomalies = append(r.Anomalies, disagree...)
	r.Anomalies = append(r.Anomalies, CheckWatches(h, events)...)
	r.Anomalies = append(r.Anomalies, CheckSerializable(h, events)...)
	lost := CheckLostWrites(h, events)
	r.Lost += len(lost)
	r.Anomalies = append(r.Anomalies, lost...)
	final := CheckFinal(finals, events)
	for _, a := range final {
		if a.Check == "lost-write" {
			r.Lost++
		}
	}
	r.Anomalies = append(r.Anomalies, final...)
	if log != nil {
		unlogged := CheckRaftLog(h, log)
		r.Lost += len(unlogged)
		r.Anomalies = append(r.Anomalies, unlogged...)
	}
	r.Linearizable = CheckLinearizable(h, log, timeout)
	if r.Linearizable.Unknown {
		r.Unverified = append(r.Unverified, fmt.Sprintf("linearizability of %d operations: no answer within %v", r.Linearizable.Ops, timeout))
	}
	r.Anomalies = append(r.Anomalies, r.Linearizable.Anomalies...)
	return r
}

// CheckSerializable checks the serializable ranges: on one member, a read
// never sees an older revision than a read that returned before it was
// called; and each returns the keys as they were at its revision.
func CheckSerializable(h History, l *EventLog) []Anomaly {
	var out []Anomaly
	byMember := map[uint64][]Operation{}
	for _, op := range h.Operations {
		if op.Serializable && !op.Resp.Unknown && op.Resp.Err == "" {
			byMember[op.Member] = append(byMember[op.Member], op)
		}
	}
	for member, ops := range byMember {
		byReturn := slices.Clone(ops)
		sort.Slice(byReturn, func(i, j int) bool { return byReturn[i].Return < byReturn[j].Return })
		// ops are in call order; newest is the read of the highest
		// revision among those returned before the current call.
		var newest *Operation
		j := 0
		for i := range ops {
			op := &ops[i]
			for j < len(byReturn) && byReturn[j].Return < op.Call {
				if newest == nil || byReturn[j].Resp.Rev > newest.Resp.Rev {
					newest = &byReturn[j]
				}
				j++
			}
			if newest != nil && op.Resp.Rev < newest.Resp.Rev {
				out = append(out, Anomaly{Check: "serializable", Message: fmt.Sprintf(
					"member %x went back from revision %d to %d:\n    %v\n    %v", member, newest.Resp.Rev, op.Resp.Rev, *newest, *op)})
			}
			o := op.Req.Txn.Then[0]
			if l.Complete(op.Resp.Rev) {
				if want := l.RangeAt(o.Key, o.End, op.Resp.Rev); !slices.Equal(want, op.Resp.Results[0].KVs) {
					out = append(out, Anomaly{Check: "serializable", Message: fmt.Sprintf(
						"%v: the watches show %v at revision %d", *op, want, op.Resp.Rev)})
				}
			}
		}
	}
	return out
}

// CheckLostWrites checks that every acknowledged put and delete is in the
// watches' log at its revision, where the log covers it.
func CheckLostWrites(h History, l *EventLog) []Anomaly {
	var out []Anomaly
	for _, op := range h.Operations {
		if op.Resp.Unknown || op.Resp.Err != "" || op.Req.Kind != Txn || readOnly(op.Req) {
			continue
		}
		rev := op.Resp.Rev
		if !l.covers(rev, rev) {
			continue
		}
		ops := op.Req.Txn.Then
		if !op.Resp.Succeeded {
			ops = op.Req.Txn.Else
		}
		for i, o := range ops {
			var found bool
			switch {
			case o.Kind == Put:
				found = slices.ContainsFunc(l.Events[rev], func(e Event) bool {
					return !e.Delete && e.KV.Key == o.Key && e.KV.Value == o.Value
				})
			case o.Kind == Delete && i < len(op.Resp.Results) && op.Resp.Results[i].Deleted > 0 && o.End == "":
				found = slices.ContainsFunc(l.Events[rev], func(e Event) bool { return e.Delete && e.KV.Key == o.Key })
			default:
				continue
			}
			if !found {
				out = append(out, Anomaly{Check: "lost-write", Message: fmt.Sprintf(
					"%v acknowledged at revision %d, but the watches have %v there", op, rev, l.Events[rev])})
			}
		}
	}
	return out
}

// CheckFinal checks that the members agree on their final hash and that
// each member's final keys are the log's at its revision.
func CheckFinal(finals []FinalState, l *EventLog) []Anomaly {
	var out []Anomaly
	for _, f := range finals {
		if !l.Complete(f.Rev) {
			continue
		}
		want := l.RangeAt("", "\x00", f.Rev) // the watches cover the members' keys
		if !slices.Equal(want, f.KVs) {
			out = append(out, Anomaly{Check: "lost-write", Message: fmt.Sprintf(
				"member %s holds %v at revision %d; the watches show %v", f.Member, f.KVs, f.Rev, want)})
		}
	}
	for _, f := range finals[min(1, len(finals)):] {
		if f.HashRev == finals[0].HashRev && f.HashCompactRev == finals[0].HashCompactRev && f.Hash != finals[0].Hash {
			out = append(out, Anomaly{Check: "hash", Message: fmt.Sprintf(
				"HashKV at revision %d, compaction %d: member %s has %08x, member %s %08x", f.HashRev, f.HashCompactRev, finals[0].Member, finals[0].Hash, f.Member, f.Hash)})
		}
	}
	return out
}

// CheckRaftLog checks that every acknowledged write the history can name
// was committed.
func CheckRaftLog(h History, log *RaftLog) []Anomaly {
	var out []Anomaly
	for _, op := range h.Operations {
		if op.Resp.Unknown || op.Resp.Err != "" {
			continue
		}
		if tok := identity(op.Req); tok != "" && len(log.Tokens[tok]) == 0 {
			out = append(out, Anomaly{Check: "lost-write", Message: fmt.Sprintf(
				"%v was acknowledged, but no member's WAL committed it", op)})
		}
	}
	return out
}
