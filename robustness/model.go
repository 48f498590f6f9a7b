package robustness

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The definite errors of etcd that the model knows.
const (
	ErrLeaseNotFound = "etcdserver: requested lease not found"
	ErrLeaseExist    = "etcdserver: lease already exists"
)

// State is the model's state: etcd's key space at one revision, and the
// leases with their keys. States are immutable; Step returns a new one.
type State struct {
	Rev    int64
	KVs    map[string]KV
	Leases map[int64]map[string]bool
	// hash sums the hashes of the parts (see rehash), so that equal states
	// hash alike.
	hash uint64
}

// InitState is an empty etcd: revision 1, no key, no lease.
func InitState() State {
	s := State{Rev: 1, KVs: map[string]KV{}, Leases: map[int64]map[string]bool{}}
	s.rehash()
	return s
}

// Model is etcd's key-value store and lessor as a porcupine model over
// Operations' Request and Response.
var Model = porcupine.Model{
	Init: func() any { return InitState() },
	Step: func(state, input, output any) (bool, any) {
		return Step(state.(State), input.(Request), output.(Response))
	},
	Equal: func(a, b any) bool { return a.(State).Equal(b.(State)) },
	Hash:  func(s any) uint64 { return s.(State).hash },
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%v -> %v", input.(Request), output.(Response))
	},
	DescribeState: func(s any) string { return s.(State).String() },
}

// Step applies req to s and reports whether resp is what etcd could have
// answered; an unknown response accepts the request's effect, whatever it
// was.
func Step(s State, req Request, resp Response) (bool, State) {
	next, want := Apply(s, req)
	if resp.Unknown {
		return true, next
	}
	if !want.Matches(resp) {
		return false, s
	}
	return true, next
}

// Matches reports whether got is the response r.
func (r Response) Matches(got Response) bool {
	if r.Err != "" || got.Err != "" {
		return r.Err == got.Err
	}
	if r.Rev != got.Rev || r.Succeeded != got.Succeeded || len(r.Results) != len(got.Results) {
		return false
	}
	for i := range r.Results {
		a, b := r.Results[i], got.Results[i]
		if a.Deleted != b.Deleted || !slices.Equal(a.KVs, b.KVs) {
			return false
		}
	}
	return true
}

// Apply runs req on s as etcd would, returning the next state and the
// response.
func Apply(s State, req Request) (State, Response) {
	switch req.Kind {
	case LeaseGrant:
		if _, ok := s.Leases[req.Lease]; ok || req.Lease == 0 {
			if req.Lease == 0 {
				return s, Response{Err: ErrLeaseNotFound}
			}
			return s, Response{Err: ErrLeaseExist}
		}
		n := s.clone()
		n.Leases[req.Lease] = map[string]bool{}
		n.rehash()
		return n, Response{Rev: n.Rev, Succeeded: true}
	case LeaseRevoke, LeaseExpire:
		keys, ok := s.Leases[req.Lease]
		if !ok {
			return s, Response{Err: ErrLeaseNotFound}
		}
		n := s.clone()
		delete(n.Leases, req.Lease)
		if len(keys) > 0 {
			n.Rev++
			for k := range keys {
				delete(n.KVs, k)
			}
		}
		n.rehash()
		return n, Response{Rev: n.Rev, Succeeded: true}
	}
	return applyTxn(s, req.Txn)
}

func applyTxn(s State, t TxnRequest) (State, Response) {
	ok := true
	for _, c := range t.If {
		if !s.compare(c) {
			ok = false
			break
		}
	}
	ops := t.Then
	if !ok {
		ops = t.Else
	}
	for _, op := range ops {
		if op.Kind == Put && op.Lease != 0 {
			if _, found := s.Leases[op.Lease]; !found {
				return s, Response{Err: ErrLeaseNotFound}
			}
		}
	}
	n := s
	cloned := false
	write := func() {
		if !cloned {
			n = s.clone()
			n.Rev = s.Rev + 1
			cloned = true
		}
	}
	resp := Response{Succeeded: ok, Results: make([]OpResult, len(ops))}
	for i, op := range ops {
		switch op.Kind {
		case Range:
			resp.Results[i].KVs = n.rangeKVs(op.Key, op.End)
		case Put:
			write()
			kv, exists := n.KVs[op.Key]
			if exists && kv.Lease != 0 {
				delete(n.Leases[kv.Lease], op.Key)
			}
			if !exists {
				kv = KV{Key: op.Key, Create: n.Rev}
			}
			kv.Value, kv.Mod, kv.Version, kv.Lease = op.Value, n.Rev, kv.Version+1, op.Lease
			n.KVs[op.Key] = kv
			if op.Lease != 0 {
				n.Leases[op.Lease][op.Key] = true
			}
		case Delete:
			victims := n.rangeKVs(op.Key, op.End)
			if len(victims) == 0 {
				continue
			}
			write()
			for _, kv := range victims {
				if kv.Lease != 0 {
					delete(n.Leases[kv.Lease], kv.Key)
				}
				delete(n.KVs, kv.Key)
			}
			resp.Results[i].Deleted = int64(len(victims))
		}
	}
	if cloned {
		n.rehash()
	}
	resp.Rev = n.Rev
	return n, resp
}

func (s State) compare(c Compare) bool {
	kv, ok := s.KVs[c.Key]
	if c.Target == CompareValue {
		if !ok {
			return false
		}
		return relate(strings.Compare(kv.Value, c.Value), c.Result)
	}
	var v int64
	switch c.Target {
	case CompareVersion:
		v = kv.Version
	case CompareMod:
		v = kv.Mod
	case CompareCreate:
		v = kv.Create
	}
	switch {
	case v < c.Number:
		return relate(-1, c.Result)
	case v > c.Number:
		return relate(1, c.Result)
	}
	return relate(0, c.Result)
}

func relate(cmp int, r CompareResult) bool {
	switch r {
	case Equal:
		return cmp == 0
	case NotEqual:
		return cmp != 0
	case Less:
		return cmp < 0
	}
	return cmp > 0
}

// rangeKVs returns the keys of [key, end) (end "": key alone; "\x00": every
// key from key), sorted, as etcd's Range.
func (s State) rangeKVs(key, end string) []KV {
	if end == "" {
		if kv, ok := s.KVs[key]; ok {
			return []KV{kv}
		}
		return nil
	}
	var kvs []KV
	for k, kv := range s.KVs {
		if k >= key && (end == "\x00" || k < end) {
			kvs = append(kvs, kv)
		}
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	return kvs
}

// rehash sets s.hash from the parts: the revision, each key-value and
// each lease with its keys, combined by a sum so that order is irrelevant.
func (s *State) rehash() {
	h := mix64(uint64(s.Rev))
	for _, kv := range s.KVs {
		h += mix64(strHash(kv.Key) ^ strHash(kv.Value)*31 ^ uint64(kv.Mod)<<20 ^ uint64(kv.Version)<<40 ^ uint64(kv.Create)*7 ^ uint64(kv.Lease))
	}
	for id, keys := range s.Leases {
		h += mix64(uint64(id) ^ 0x9e3779b97f4a7c15)
		for k := range keys {
			h += mix64(uint64(id) ^ strHash(k))
		}
	}
	s.hash = h
}

func strHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// mix64 is SplitMix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (s State) clone() State {
	n := State{Rev: s.Rev, KVs: maps.Clone(s.KVs), Leases: make(map[int64]map[string]bool, len(s.Leases))}
	for id, keys := range s.Leases {
		n.Leases[id] = maps.Clone(keys)
	}
	return n
}

// Equal reports whether two states are the same.
func (s State) Equal(o State) bool {
	if s.hash != o.hash || s.Rev != o.Rev || !maps.Equal(s.KVs, o.KVs) || len(s.Leases) != len(o.Leases) {
		return false
	}
	for id, keys := range s.Leases {
		ok, found := o.Leases[id]
		if !found || !maps.Equal(keys, ok) {
			return false
		}
	}
	return true
}

func (s State) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rev %d:", s.Rev)
	for _, k := range slices.Sorted(maps.Keys(s.KVs)) {
		fmt.Fprintf(&b, " %v", s.KVs[k])
	}
	for _, id := range slices.Sorted(maps.Keys(s.Leases)) {
		fmt.Fprintf(&b, " lease %x%v", id, slices.Sorted(maps.Keys(s.Leases[id])))
	}
	return b.String()
}
