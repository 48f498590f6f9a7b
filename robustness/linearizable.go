package robustness

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Anomaly is one violation a checker found.
type Anomaly struct {
	Check   string // "linearizable", "watch", "serializable", "lost-write", ...
	Message string
}

func (a Anomaly) String() string { return a.Check + ": " + a.Message }

// LinearizableResult is the outcome of CheckLinearizable.
type LinearizableResult struct {
	Ops       int // operations checked
	Anomalies []Anomaly
	// Unknown: the check ran out of time before it decided.
	Unknown bool
	info    porcupine.LinearizationInfo
}

// Visualize writes porcupine's HTML view of the checked history.
func (r LinearizableResult) Visualize(w io.Writer) error {
	return porcupine.Visualize(Model, r.info, w)
}

// Operations returns the linearizable part of h as porcupine operations:
// every operation except serializable ranges and failed reads.
//
// A write of unknown outcome returns at Infinity, or when a read or a
// watch first saw a value only it wrote. With the raft log (nil if it
// could not be read), a write of unknown outcome that the cluster never
// committed is left out, since it had no effect; one it committed returns
// before the first acknowledged request that came after it in the log.
// Each granted lease gets an expiry of unknown outcome from the moment its
// TTL can have run out, unless the log shows it was never revoked or an
// acknowledged revoke ended it.
func Operations(h History, log *RaftLog) []porcupine.Operation {
	seen := firstSeen(h)
	var end time.Duration
	revoked := map[int64]bool{} // by an acknowledged revoke
	ackedDeletes := map[string]int{}
	for _, op := range h.Operations {
		end = max(end, op.Call)
		if op.Return != Infinity {
			end = max(end, op.Return)
		}
		if op.Resp.Unknown || op.Resp.Err != "" {
			continue
		}
		if op.Req.Kind == LeaseRevoke {
			revoked[op.Req.Lease] = true
		}
		if k, ok := singleDelete(op.Req); ok {
			ackedDeletes[k]++
		}
	}
	bound := log.bounds(h)
	// effect returns the log indexes where an operation of unknown outcome
	// may have taken effect; known false if the log cannot tell.
	effect := func(req Request) (idx []uint64, known bool) {
		if log == nil {
			return nil, false
		}
		if tok := identity(req); tok != "" {
			return log.Tokens[tok], true
		}
		if req.Kind == LeaseRevoke || req.Kind == LeaseExpire {
			if revoked[req.Lease] {
				return nil, true
			}
			return log.Tokens[revokeToken(req.Lease)], true
		}
		if k, ok := singleDelete(req); ok {
			if idx := log.Tokens[deleteToken(k)]; len(idx) > ackedDeletes[k] {
				return idx, true
			}
			return nil, true
		}
		return nil, false
	}
	// unknown places an operation of unknown outcome called at call: ok
	// false if it cannot have taken effect.
	unknown := func(req Request, call time.Duration) (ret time.Duration, ok bool) {
		ret = Infinity
		for _, v := range putValues(req) {
			if t, seen := seen[v]; seen && t < ret {
				ret = max(t, call)
			}
		}
		if idx, known := effect(req); known {
			if len(idx) == 0 {
				return 0, false
			}
			ret = min(ret, max(bound(slices.Max(idx)), call))
		}
		return ret, true
	}
	var ops []porcupine.Operation
	for _, op := range h.Operations {
		if op.Serializable || (op.Resp.Unknown && readOnly(op.Req)) {
			continue
		}
		ret := op.Return
		if op.Resp.Unknown {
			var ok bool
			if ret, ok = unknown(op.Req, op.Call); !ok {
				continue
			}
		}
		ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: op.Req, Output: op.Resp, Call: int64(op.Call), Return: int64(ret), Metadata: op.ID})
		if op.Req.Kind == LeaseGrant && op.Resp.Err == "" {
			expire := Request{Kind: LeaseExpire, Lease: op.Req.Lease}
			call := op.Call + time.Duration(op.Req.TTL)*time.Second
			if ret, ok := unknown(expire, call); ok && call < end && ret >= call {
				ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: expire,
					Output: Response{Unknown: true}, Call: int64(call), Return: int64(ret), Metadata: -1})
			}
		}
	}
	return ops
}

// bounds returns, for a log index, the earliest return of an acknowledged
// request the history names that the log holds after that index: a
// request committed at the index took effect before then. Infinity if
// there is none, or no log.
func (l *RaftLog) bounds(h History) func(uint64) time.Duration {
	if l == nil {
		return func(uint64) time.Duration { return Infinity }
	}
	type acked struct {
		idx uint64
		ret time.Duration
	}
	var as []acked
	for _, op := range h.Operations {
		if op.Resp.Unknown || op.Resp.Err != "" {
			continue
		}
		if idx := l.Tokens[identity(op.Req)]; len(idx) > 0 {
			as = append(as, acked{idx[0], op.Return})
		}
	}
	slices.SortFunc(as, func(a, b acked) int { return cmp.Compare(a.idx, b.idx) })
	// suffix[i] is the earliest return among as[i:].
	suffix := make([]time.Duration, len(as)+1)
	suffix[len(as)] = Infinity
	for i := len(as) - 1; i >= 0; i-- {
		suffix[i] = min(as[i].ret, suffix[i+1])
	}
	return func(idx uint64) time.Duration {
		i := sort.Search(len(as), func(i int) bool { return as[i].idx > idx })
		return suffix[i]
	}
}

// readOnly reports whether req cannot change the state.
func readOnly(req Request) bool {
	if req.Kind != Txn {
		return false
	}
	for _, ops := range [][]TxnOp{req.Txn.Then, req.Txn.Else} {
		for _, o := range ops {
			if o.Kind != Range {
				return false
			}
		}
	}
	return true
}

// putValues returns the values req may put.
func putValues(req Request) []string {
	var vs []string
	for _, ops := range [][]TxnOp{req.Txn.Then, req.Txn.Else} {
		for _, o := range ops {
			if o.Kind == Put {
				vs = append(vs, o.Value)
			}
		}
	}
	return vs
}

// firstSeen maps each value read by a successful operation or delivered by
// a watch to the earliest time it was known to be written.
func firstSeen(h History) map[string]time.Duration {
	seen := map[string]time.Duration{}
	note := func(v string, t time.Duration) {
		if old, ok := seen[v]; !ok || t < old {
			seen[v] = t
		}
	}
	for _, op := range h.Operations {
		if op.Resp.Unknown || op.Resp.Err != "" {
			continue
		}
		for _, r := range op.Resp.Results {
			for _, kv := range r.KVs {
				note(kv.Value, op.Return)
			}
		}
	}
	for _, w := range h.Watches {
		for _, r := range w.Responses {
			for _, e := range r.Events {
				if !e.Delete {
					note(e.KV.Value, r.Time)
				}
				if e.Prev != nil {
					note(e.Prev.Value, r.Time)
				}
			}
		}
	}
	return seen
}

// CheckLinearizable checks the linearizable part of h against Model,
// giving up after timeout; log, if not nil, places the operations of
// unknown outcome (see Operations).
func CheckLinearizable(h History, log *RaftLog, timeout time.Duration) LinearizableResult {
	ops := Operations(h, log)
	res, info := porcupine.CheckOperationsVerbose(Model, ops, timeout)
	r := LinearizableResult{Ops: len(ops), info: info}
	switch res {
	case porcupine.Unknown:
		r.Unknown = true
	case porcupine.Illegal:
		r.Anomalies = append(r.Anomalies, Anomaly{Check: "linearizable", Message: explain(h, ops, info)})
	}
	return r
}

// explain describes where the longest linearization found got stuck: the
// last operations it placed, the state they left, and the operations that
// could not come next.
func explain(h History, ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var best []int
	for _, part := range info.PartialLinearizations() {
		for _, lin := range part {
			if len(lin) > len(best) {
				best = lin
			}
		}
	}
	state := InitState()
	placed := make(map[int]bool, len(best))
	for _, i := range best {
		_, state = Step(state, ops[i].Input.(Request), ops[i].Output.(Response))
		placed[i] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no linearization of %d operations; the longest found places %d.\n", len(ops), len(best))
	b.WriteString("  last placed:\n")
	for _, i := range best[max(0, len(best)-6):] {
		fmt.Fprintf(&b, "    %s\n", describe(h, ops[i]))
	}
	fmt.Fprintf(&b, "  state then: %v\n", state)
	// The unplaced operations that had been called by the time the first
	// of them returned could have come next; none of them fits.
	var next []int
	for i := range ops {
		if !placed[i] {
			next = append(next, i)
		}
	}
	sort.Slice(next, func(a, b int) bool { return ops[next[a]].Return < ops[next[b]].Return })
	if len(next) > 0 {
		deadline := ops[next[0]].Return
		b.WriteString("  none of these fits next:\n")
		n := 0
		for _, i := range next {
			if ops[i].Call <= deadline && n < 8 {
				fmt.Fprintf(&b, "    %s\n", describe(h, ops[i]))
				n++
			}
		}
	}
	return b.String()
}

func describe(h History, op porcupine.Operation) string {
	if id, ok := op.Metadata.(int); ok && id >= 0 {
		for _, o := range h.Operations {
			if o.ID == id {
				return o.String()
			}
		}
	}
	return fmt.Sprintf("[%v, inf] %v (synthetic)", time.Duration(op.Call), op.Input)
}
