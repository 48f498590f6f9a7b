package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// KeyPrefix is the prefix of every key the traffic writes; watches cover
// it, so every revision of the history has an event under it.
const KeyPrefix = "key/"

// keyPrefixEnd ends the range of KeyPrefix.
const keyPrefixEnd = "key0"

// TrafficConfig shapes the load.
type TrafficConfig struct {
	// Keys is the size of the key space.
	Keys int
	// Rate bounds the operations per second of each client.
	Rate float64
	// LongTTL is the TTL of the leases the clients revoke themselves;
	// ShortTTL that of the leases left to expire.
	LongTTL, ShortTTL int64
}

// DefaultTraffic is the load of a scenario.
var DefaultTraffic = TrafficConfig{Keys: 10, Rate: 40, LongTTL: 600, ShortTTL: 2}

// weighted is one kind of operation and how often it is picked.
type weighted struct {
	weight int
	run    func(w *worker, ctx context.Context)
}

// mix is the traffic: puts with unique values, linearizable and
// serializable gets of one key or all, deletes, txns with compares, and
// leases granted, attached, revoked and left to expire.
var mix = []weighted{
	{25, func(w *worker, ctx context.Context) { w.c.Do(ctx, put(w.key(), w.value()), false) }},
	{14, func(w *worker, ctx context.Context) { w.read(ctx, get(w.key()), false) }},
	{5, func(w *worker, ctx context.Context) { w.read(ctx, getAll(), false) }},
	{6, func(w *worker, ctx context.Context) { w.read(ctx, get(w.key()), true) }},
	{3, func(w *worker, ctx context.Context) { w.read(ctx, getAll(), true) }},
	{8, func(w *worker, ctx context.Context) { w.c.Do(ctx, del(w.key()), false) }},
	{10, func(w *worker, ctx context.Context) { w.cas(ctx) }},
	{4, func(w *worker, ctx context.Context) { w.multi(ctx) }},
	{3, func(w *worker, ctx context.Context) { w.grant(ctx, w.cfg.LongTTL) }},
	{6, func(w *worker, ctx context.Context) { w.attach(ctx) }},
	{3, func(w *worker, ctx context.Context) { w.revoke(ctx) }},
	{1, func(w *worker, ctx context.Context) {
		if id, ok := w.grant(ctx, w.cfg.ShortTTL); ok {
			w.c.Do(ctx, putLease(w.key(), w.value(), id), false)
		}
	}},
}

func getAll() Request {
	return Request{Txn: TxnRequest{Then: []TxnOp{{Kind: Range, Key: KeyPrefix, End: keyPrefixEnd}}}}
}

func put(key, value string) Request {
	return Request{Txn: TxnRequest{Then: []TxnOp{{Kind: Put, Key: key, Value: value}}}}
}

func putLease(key, value string, lease int64) Request {
	return Request{Txn: TxnRequest{Then: []TxnOp{{Kind: Put, Key: key, Value: value, Lease: lease}}}}
}

func get(key string) Request {
	return Request{Txn: TxnRequest{Then: []TxnOp{{Kind: Range, Key: key}}}}
}

func del(key string) Request {
	return Request{Txn: TxnRequest{Then: []TxnOp{{Kind: Delete, Key: key}}}}
}

// worker is one client's loop.
type worker struct {
	c      *Client
	cfg    TrafficConfig
	rnd    *rand.Rand
	seq    int
	mods   map[string]int64 // the mod revision this client last saw per key
	leases []int64          // long leases granted and not yet revoked
}

func (w *worker) key() string { return fmt.Sprintf("%s%d", KeyPrefix, w.rnd.IntN(w.cfg.Keys)) }

// value is unique in the history: the client and its sequence number.
func (w *worker) value() string {
	w.seq++
	return fmt.Sprintf("c%d-%d", w.c.ID, w.seq)
}

func (w *worker) read(ctx context.Context, req Request, serializable bool) {
	resp, err := w.c.Do(ctx, req, serializable)
	if err != nil || resp.Err != "" {
		return
	}
	for _, kv := range resp.Results[0].KVs {
		w.mods[kv.Key] = kv.Mod
	}
}

// cas puts a key if it is unchanged since this client last saw it (or
// absent, if it saw none), else reads it.
func (w *worker) cas(ctx context.Context) {
	k := w.key()
	req := Request{Txn: TxnRequest{
		If:   []Compare{{Key: k, Target: CompareMod, Result: Equal, Number: w.mods[k]}},
		Then: []TxnOp{{Kind: Put, Key: k, Value: w.value()}},
		Else: []TxnOp{{Kind: Range, Key: k}},
	}}
	resp, err := w.c.Do(ctx, req, false)
	if err != nil || resp.Err != "" {
		return
	}
	if resp.Succeeded {
		w.mods[k] = resp.Rev
	} else if kvs := resp.Results[0].KVs; len(kvs) > 0 {
		w.mods[k] = kvs[0].Mod
	} else {
		w.mods[k] = 0
	}
}

// multi writes two keys and deletes a third if a key exists, else writes it.
func (w *worker) multi(ctx context.Context) {
	a, b, c := w.key(), w.key(), w.key()
	if a == b || b == c || a == c {
		return
	}
	w.c.Do(ctx, Request{Txn: TxnRequest{
		If:   []Compare{{Key: a, Target: CompareVersion, Result: Greater, Number: 0}},
		Then: []TxnOp{{Kind: Put, Key: b, Value: w.value()}, {Kind: Delete, Key: c}, {Kind: Range, Key: a}},
		Else: []TxnOp{{Kind: Put, Key: a, Value: w.value()}},
	}}, false)
}

// grant grants a lease with an ID of this client's.
func (w *worker) grant(ctx context.Context, ttl int64) (int64, bool) {
	w.seq++
	id := int64(w.c.ID+1)<<40 | int64(w.seq)
	resp, err := w.c.Do(ctx, Request{Kind: LeaseGrant, Lease: id, TTL: ttl}, false)
	if err != nil || resp.Err != "" {
		return 0, false
	}
	if ttl == w.cfg.LongTTL {
		w.leases = append(w.leases, id)
	}
	return id, true
}

func (w *worker) attach(ctx context.Context) {
	if len(w.leases) == 0 {
		return
	}
	w.c.Do(ctx, putLease(w.key(), w.value(), w.leases[w.rnd.IntN(len(w.leases))]), false)
}

func (w *worker) revoke(ctx context.Context) {
	if len(w.leases) == 0 {
		return
	}
	i := w.rnd.IntN(len(w.leases))
	id := w.leases[i]
	w.leases = append(w.leases[:i], w.leases[i+1:]...)
	w.c.Do(ctx, Request{Kind: LeaseRevoke, Lease: id}, false)
}

// RunTraffic runs one worker per client until ctx ends.
func RunTraffic(ctx context.Context, clients []*Client, cfg TrafficConfig, seed uint64) {
	total := 0
	for _, m := range mix {
		total += m.weight
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		w := &worker{c: c, cfg: cfg, rnd: rand.New(rand.NewPCG(seed, uint64(c.ID))), mods: map[string]int64{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			interval := time.Duration(float64(time.Second) / cfg.Rate)
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				n := w.rnd.IntN(total)
				for _, m := range mix {
					if n < m.weight {
						m.run(w, ctx)
						break
					}
					n -= m.weight
				}
			}
		}()
	}
	wg.Wait()
}
