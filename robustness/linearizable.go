package robustness

import (
	"fmt"
	"io"
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
// every operation except serializable ranges and failed reads. A write of
// unknown outcome returns at Infinity unless a read or a watch saw a value
// only it wrote, in which case it returns when that was seen. Each granted
// lease gets an expiry of unknown outcome from the moment its TTL can have
// run out.
func Operations(h History) []porcupine.Operation {
	seen := firstSeen(h)
	var end time.Duration
	for _, op := range h.Operations {
		end = max(end, op.Call)
		if op.Return != Infinity {
			end = max(end, op.Return)
		}
	}
	var ops []porcupine.Operation
	for _, op := range h.Operations {
		if op.Serializable || (op.Resp.Unknown && readOnly(op.Req)) {
			continue
		}
		ret := op.Return
		if op.Resp.Unknown {
			ret = Infinity
			for _, v := range putValues(op.Req) {
				if t, ok := seen[v]; ok && t < ret {
					ret = max(t, op.Call)
				}
			}
		}
		ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: op.Req, Output: op.Resp, Call: int64(op.Call), Return: int64(ret), Metadata: op.ID})
		if op.Req.Kind == LeaseGrant && op.Resp.Err == "" {
			expiry := op.Call + time.Duration(op.Req.TTL)*time.Second
			if expiry < end {
				ops = append(ops, porcupine.Operation{ClientId: op.Client,
					Input:  Request{Kind: LeaseExpire, Lease: op.Req.Lease},
					Output: Response{Unknown: true}, Call: int64(expiry), Return: int64(Infinity), Metadata: -1})
			}
		}
	}
	return ops
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
// giving up after timeout.
func CheckLinearizable(h History, timeout time.Duration) LinearizableResult {
	ops := Operations(h)
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
