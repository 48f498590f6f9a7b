package robustness

import (
	"strings"
	"testing"
	"time"
)

// The watch histories below write key a at revisions 2 and 3 and delete
// it at 4.
var (
	a2   = kv("a", "1", 2, 2, 1)
	a3   = kv("a", "2", 3, 2, 2)
	ev2  = Event{KV: a2}
	ev3  = Event{KV: a3, Prev: &a2}
	ev4  = Event{Delete: true, KV: KV{Key: "a", Mod: 4}, Prev: &a3}
	good = []WatchResponse{{Time: ms(10), Events: []Event{ev2}}, {Time: ms(20), Events: []Event{ev3, ev4}}, {Time: ms(30), Rev: 4}}
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func watch(start int64, resps ...WatchResponse) *Watch {
	return &Watch{Key: KeyPrefix, End: keyPrefixEnd, Start: start, PrevKV: true, Responses: resps}
}

func events(evs ...Event) WatchResponse { return WatchResponse{Time: ms(15), Events: evs} }
func progress(rev int64) WatchResponse  { return WatchResponse{Time: ms(40), Rev: rev} }

func TestCheckWatches(t *testing.T) {
	a3bad := kv("a", "2", 3, 2, 2)
	a3bad.Value = "other"
	staleA := kv("a", "0", 2, 2, 1)
	tests := []struct {
		name        string
		watches     []*Watch
		compactions []Compaction
		want        string // a substring of the first anomaly; "" none
	}{
		{"every event once in order", []*Watch{watch(1, good...)}, nil, ""},
		{"a watch resumed from 3 gets 3 and 4", []*Watch{watch(1, good...), watch(3, events(ev3, ev4), progress(4))}, nil, ""},
		{"a gap", []*Watch{watch(1, events(ev2), events(ev4), progress(4))}, nil, "no event at revision 3"},
		{"a gap at the end, before the progress", []*Watch{watch(1, events(ev2), progress(3))}, nil, "no event at revision 3"},
		{"a resumed watch misses its start", []*Watch{watch(1, good...), watch(3, events(ev4), progress(4))}, nil, "no event at revision 3"},
		{"out of order", []*Watch{watch(1, events(ev3), events(ev2))}, nil, "after revision 3"},
		{"a duplicate", []*Watch{watch(1, events(ev2), events(ev2, ev3))}, nil, "duplicate"},
		{"an event before the start", []*Watch{watch(3, events(ev2, ev3))}, nil, "before the start"},
		{"watches disagree", []*Watch{watch(1, good...), watch(3, events(Event{KV: a3bad, Prev: &a2}, ev4))}, nil, "disagree"},
		{"a wrong prev_kv", []*Watch{watch(1, events(ev2), events(Event{KV: a3, Prev: &staleA}))}, nil, "prev_kv"},
		{"a missing prev_kv on a delete", []*Watch{watch(1, events(ev2, ev3), events(Event{Delete: true, KV: KV{Key: "a", Mod: 4}}))}, nil, "no prev_kv"},
		{"a version that does not follow", []*Watch{watch(1, events(ev2), events(Event{KV: kv("a", "2", 3, 2, 3), Prev: &a2}))}, nil, "does not follow"},
		{"compacted below a compaction", []*Watch{watch(1, good...), watch(2, WatchResponse{Time: ms(50), Compacted: 3, Canceled: true})},
			[]Compaction{{Rev: 3, Call: ms(45), Return: ms(46)}}, ""},
		{"compacted at its own start", []*Watch{watch(1, good...), watch(3, WatchResponse{Time: ms(50), Compacted: 3, Canceled: true})},
			[]Compaction{{Rev: 3, Call: ms(45), Return: ms(46)}}, "at or above"},
		{"compacted with no compaction asked", []*Watch{watch(1, good...), watch(2, WatchResponse{Time: ms(50), Compacted: 3, Canceled: true})},
			nil, "before any compaction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := History{Watches: tt.watches, Compactions: tt.compactions}
			for i, w := range h.Watches {
				w.ID = i
			}
			l, anomalies := BuildEventLog(h)
			anomalies = append(anomalies, CheckWatches(h, l)...)
			expect(t, anomalies, tt.want)
		})
	}
}

func expect(t *testing.T, anomalies []Anomaly, want string) {
	t.Helper()
	if want == "" {
		if len(anomalies) > 0 {
			t.Fatalf("unexpected anomalies: %v", anomalies)
		}
		return
	}
	if len(anomalies) == 0 {
		t.Fatalf("no anomaly, want one about %q", want)
	}
	if !strings.Contains(anomalies[0].Message, want) {
		t.Fatalf("first anomaly %q, want one about %q (all: %v)", anomalies[0], want, anomalies)
	}
}

func TestCheckAgainstWatches(t *testing.T) {
	log := []*Watch{watch(1, good...)}
	serial := func(member uint64, call, ret int, req Request, resp Response) Operation {
		return Operation{Req: req, Resp: resp, Call: ms(call), Return: ms(ret), Member: member, Serializable: true}
	}
	tests := []struct {
		name   string
		ops    []Operation
		finals []FinalState
		want   string
	}{
		{"acknowledged writes in the log", []Operation{
			{Req: put("a", "1"), Resp: wrote(2)},
			{Req: put("a", "2"), Resp: wrote(3)},
			{Req: del("a"), Resp: deleted(4, 1)},
		}, nil, ""},
		{"an acknowledged put missing at its revision", []Operation{{Req: put("a", "9"), Resp: wrote(3)}}, nil, "acknowledged at revision 3"},
		{"an acknowledged delete missing at its revision", []Operation{{Req: del("a"), Resp: deleted(3, 1)}}, nil, "acknowledged at revision 3"},
		{"serializable reads in step with the log", []Operation{
			serial(1, 0, 10, get("a"), read(2, a2)),
			serial(1, 20, 30, get("a"), read(4)),
		}, nil, ""},
		{"a serializable read goes back on one member", []Operation{
			serial(1, 0, 10, get("a"), read(3, a3)),
			serial(1, 20, 30, get("a"), read(2, a2)),
		}, nil, "went back"},
		{"serializable reads of two members may differ", []Operation{
			serial(1, 0, 10, get("a"), read(3, a3)),
			serial(2, 20, 30, get("a"), read(2, a2)),
		}, nil, ""},
		{"a serializable read that is not the state at its revision", []Operation{
			serial(1, 0, 10, get("a"), read(3, a2)),
		}, nil, "the watches show"},
		{"final states in the log, hashes agree", nil, []FinalState{
			{Member: "m1", Rev: 3, KVs: []KV{a3}, Hash: 7, HashRev: 3},
			{Member: "m2", Rev: 4, Hash: 7, HashRev: 3},
		}, ""},
		{"a final state that lost a write", nil, []FinalState{{Member: "m1", Rev: 3, KVs: []KV{a2}}}, "holds"},
		{"hashes differ", nil, []FinalState{{Member: "m1", Rev: 4, Hash: 7, HashRev: 4}, {Member: "m2", Rev: 4, Hash: 8, HashRev: 4}}, "HashKV"},
		{"hashes over different compactions do not compare", nil, []FinalState{{Member: "m1", Rev: 4, Hash: 7, HashRev: 4, HashCompactRev: 3},
			{Member: "m2", Rev: 4, Hash: 8, HashRev: 4, HashCompactRev: 2}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := History{Operations: tt.ops, Watches: log}
			l, _ := BuildEventLog(h)
			var anomalies []Anomaly
			anomalies = append(anomalies, CheckLostWrites(h, l)...)
			anomalies = append(anomalies, CheckSerializable(h, l)...)
			anomalies = append(anomalies, CheckFinal(tt.finals, l)...)
			expect(t, anomalies, tt.want)
		})
	}
}
