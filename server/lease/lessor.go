package lease

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// MaxTTL is the largest TTL in seconds that Grant accepts, as etcd's.
const MaxTTL = 9000000000

// Defaults, as etcd's.
const (
	DefaultCheckpointInterval   = 5 * time.Minute
	DefaultExpiredRetryInterval = 3 * time.Second
	DefaultTickInterval         = 500 * time.Millisecond
	// checkpointTimeout bounds one checkpoint proposal, whatever the
	// interval: a stuck proposal must not hold up expiry for long, and a
	// short interval must not cut a proposal short under load.
	checkpointTimeout = 5 * time.Second
	// maxCheckpointBatch is the most checkpoints proposed in one request.
	maxCheckpointBatch = 1000
	// expiredQueue is the capacity of ExpiredLeases.
	expiredQueue = 16
)

// ErrNotPrimary is returned by Renew and TimeToLive on a member that is not
// the leader; the server forwards the request to the leader.
var ErrNotPrimary = errors.New("lease: not a primary lessor")

// RangeDeleter is one write transaction of the mvcc store, used by Revoke.
// It holds the backend's batch lock from its creation until End, so that
// Revoke deletes the lease in the same backend transaction as the keys.
type RangeDeleter interface {
	// DeleteRange deletes key (end nil) or [key, end), and returns the
	// number of keys deleted and the revision of the transaction.
	DeleteRange(key, end []byte) (n, rev int64, err error)
	// End commits the transaction to the store and releases the batch.
	End() error
}

// Checkpointer proposes lease checkpoints through raft. The leader calls it.
type Checkpointer func(ctx context.Context, req *pb.LeaseCheckpointRequest) error

// Config configures New.
type Config struct {
	// MinTTL is the smallest TTL in seconds; Grant raises shorter ones. etcd
	// uses 3/2 of the election timeout, rounded up; the server computes it.
	MinTTL int64
	// CheckpointInterval is how often the leader checkpoints remaining
	// TTLs; 0 means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// ExpiredRetryInterval is how long an expired lease waits before it is
	// reported again when its revocation has not been applied; 0 means
	// DefaultExpiredRetryInterval.
	ExpiredRetryInterval time.Duration
	// TickInterval is how often expiry is checked; 0 means
	// DefaultTickInterval.
	TickInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Info describes a lease.
type Info struct {
	ID int64
	// TTL is the granted TTL in seconds.
	TTL int64
	// RemainingTTL is the last checkpointed remaining TTL (0: none).
	RemainingTTL int64
	// Remaining is the time left before expiry, on the leader.
	Remaining time.Duration
	// Keys are the attached keys in order, when asked for.
	Keys [][]byte
}

// lease is one lease of the lessor; guarded by Lessor.mu.
type lease struct {
	id           int64
	ttl          int64
	remainingTTL int64
	// expiry is zero when the lease does not expire (not primary).
	expiry time.Time
	// reported is when the lease was last sent on ExpiredLeases.
	reported time.Time
	keys     map[string]struct{}
	revoked  chan struct{}
}

// refresh sets the expiry on the primary: the remaining TTL, or the full
// TTL, after extend.
func (l *lease) refresh(now time.Time, extend time.Duration) {
	ttl := l.ttl
	if l.remainingTTL > 0 {
		ttl = l.remainingTTL
	}
	l.expiry = now.Add(extend + time.Duration(ttl)*time.Second)
	l.reported = time.Time{}
}

func (l *lease) info(now time.Time, keys bool) Info {
	in := Info{ID: l.id, TTL: l.ttl, RemainingTTL: l.remainingTTL}
	if !l.expiry.IsZero() {
		in.Remaining = max(l.expiry.Sub(now), 0)
	}
	if keys {
		in.Keys = make([][]byte, 0, len(l.keys))
		for k := range l.keys {
			in.Keys = append(in.Keys, []byte(k))
		}
		slices.SortFunc(in.Keys, bytes.Compare)
	}
	return in
}

// Lessor holds the leases of a member. Lock order: the backend batch, then mu.
type Lessor struct {
	cfg Config
	lg  *slog.Logger
	be  *backend.Backend
	m   *metrics

	mu      sync.RWMutex
	leases  map[int64]*lease
	items   map[string]int64 // attached key -> lease
	primary bool
	demoted chan struct{} // closed on Demote; replaced on Promote
	rd      func() RangeDeleter
	cp      Checkpointer
	nextCP  time.Time

	expired chan []int64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New recovers the leases of the lease bucket (attached keys come from the
// mvcc store's restore) and starts the expiry clock. The lessor starts as a
// follower; call Promote on the leader.
func New(be *backend.Backend, cfg Config) (*Lessor, error) {
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.ExpiredRetryInterval <= 0 {
		cfg.ExpiredRetryInterval = DefaultExpiredRetryInterval
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	le := &Lessor{
		cfg:     cfg,
		lg:      lg.With("component", "lessor"),
		be:      be,
		m:       m,
		leases:  make(map[int64]*lease),
		items:   make(map[string]int64),
		demoted: make(chan struct{}),
		expired: make(chan []int64, expiredQueue),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	var stored []schema.Lease
	if err := be.View(func(tx *bolt.Tx) error {
		var err error
		stored, err = schema.Leases(tx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("lease: recover from %s: %w", be.Path(), err)
	}
	for _, s := range stored {
		le.leases[s.ID] = &lease{
			id: s.ID, ttl: max(s.TTL, cfg.MinTTL), remainingTTL: s.RemainingTTL,
			keys: make(map[string]struct{}), revoked: make(chan struct{}),
		}
	}
	le.lg.Info("recovered leases", "count", len(stored))
	go le.run()
	return le, nil
}

// SetRangeDeleter sets the source of the transactions Revoke deletes keys in.
func (le *Lessor) SetRangeDeleter(rd func() RangeDeleter) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.rd = rd
}

// SetCheckpointer sets how the leader proposes checkpoints; nil disables them.
func (le *Lessor) SetCheckpointer(cp Checkpointer) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.cp = cp
}

// ExpiredLeases delivers the IDs of expired leases on the leader. The server
// proposes a LeaseRevokeRequest for each; a lease whose revocation is not
// applied within ExpiredRetryInterval is reported again.
func (le *Lessor) ExpiredLeases() <-chan []int64 { return le.expired }

// Grant applies a LeaseGrant: it creates the lease id with ttl seconds
// (raised to MinTTL) and stores it.
func (le *Lessor) Grant(id, ttl int64) (Info, error) {
	if id == 0 {
		return Info{}, rpctypes.ErrGRPCLeaseNotFound
	}
	if ttl > MaxTTL {
		return Info{}, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	bt := le.be.BatchTx()
	bt.Lock()
	defer bt.Unlock()
	le.mu.Lock()
	defer le.mu.Unlock()
	if _, ok := le.leases[id]; ok {
		return Info{}, rpctypes.ErrGRPCLeaseExist
	}
	l := &lease{id: id, ttl: max(ttl, le.cfg.MinTTL), keys: make(map[string]struct{}), revoked: make(chan struct{})}
	if err := putLease(bt, l); err != nil {
		return Info{}, err
	}
	now := time.Now()
	if le.primary {
		l.refresh(now, 0)
	}
	le.leases[id] = l
	le.m.granted.Inc()
	return l.info(now, false), nil
}

func putLease(bt *backend.BatchTx, l *lease) error {
	tx, err := bt.Tx()
	if err != nil {
		return fmt.Errorf("lease: store %x: %w", l.id, err)
	}
	if err := schema.PutLease(tx, schema.Lease{ID: l.id, TTL: l.ttl, RemainingTTL: l.remainingTTL}); err != nil {
		return fmt.Errorf("lease: store %x: %w", l.id, err)
	}
	return nil
}

// Revoke applies a LeaseRevoke: it deletes the attached keys and the lease
// in one store transaction.
func (le *Lessor) Revoke(id int64) error {
	le.mu.RLock()
	l, rd := le.leases[id], le.rd
	le.mu.RUnlock()
	if l == nil {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	var txn RangeDeleter
	if rd != nil {
		txn = rd()
	} else {
		le.be.BatchTx().Lock()
	}
	le.mu.RLock()
	// Deleting in key order keeps the members' key buckets identical.
	keys := l.info(time.Time{}, true).Keys
	le.mu.RUnlock()
	var errs []error
	if txn != nil {
		for _, k := range keys {
			if _, _, err := txn.DeleteRange(k, nil); err != nil {
				errs = append(errs, fmt.Errorf("lease: revoke %x: delete %q: %w", id, k, err))
				break
			}
		}
	}
	if len(errs) == 0 {
		if tx, err := le.be.BatchTx().Tx(); err != nil {
			errs = append(errs, err)
		} else if err := schema.DeleteLease(tx, id); err != nil {
			errs = append(errs, fmt.Errorf("lease: revoke %x: %w", id, err))
		}
	}
	if len(errs) == 0 {
		le.mu.Lock()
		delete(le.leases, id)
		for k := range l.keys {
			if le.items[k] == id {
				delete(le.items, k)
			}
		}
		le.mu.Unlock()
		close(l.revoked)
	}
	if txn != nil {
		errs = append(errs, txn.End())
	} else {
		le.be.BatchTx().Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	le.m.revoked.Inc()
	return nil
}

// Checkpoint applies a LeaseCheckpoint: it records the remaining TTL of id
// and stores it. A missing lease is ignored, as etcd does.
func (le *Lessor) Checkpoint(id, remainingTTL int64) error {
	bt := le.be.BatchTx()
	bt.Lock()
	defer bt.Unlock()
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return nil
	}
	l.remainingTTL = remainingTTL
	return putLease(bt, l)
}

// Renew resets the TTL of id on the leader and returns it. An expired lease
// waits for its revocation (rpctypes.ErrGRPCLeaseNotFound) or the end of
// the leadership (ErrNotPrimary).
func (le *Lessor) Renew(ctx context.Context, id int64) (int64, error) {
	le.mu.RLock()
	l, primary, demoted, cp := le.leases[id], le.primary, le.demoted, le.cp
	var expired bool
	var clearCP bool
	if l != nil {
		expired = !l.expiry.IsZero() && time.Now().After(l.expiry)
		clearCP = cp != nil && l.remainingTTL > 0
	}
	le.mu.RUnlock()
	switch {
	case !primary:
		return -1, ErrNotPrimary
	case l == nil:
		return -1, rpctypes.ErrGRPCLeaseNotFound
	case expired:
		select {
		case <-l.revoked:
			return -1, rpctypes.ErrGRPCLeaseNotFound
		case <-demoted:
			return -1, ErrNotPrimary
		case <-le.stop:
			return -1, ErrNotPrimary
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
	if clearCP {
		// The follower's checkpoint would outlive this renewal otherwise.
		req := &pb.LeaseCheckpointRequest{Checkpoints: []*pb.LeaseCheckpoint{{ID: id, Remaining_TTL: 0}}}
		if err := cp(ctx, req); err != nil {
			return -1, fmt.Errorf("lease: renew %x: checkpoint: %w", id, err)
		}
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	l = le.leases[id]
	if l == nil {
		return -1, rpctypes.ErrGRPCLeaseNotFound
	}
	l.remainingTTL = 0
	l.refresh(time.Now(), 0)
	le.m.renewed.Inc()
	return l.ttl, nil
}

// Lookup returns the lease id without its keys, and whether it exists.
func (le *Lessor) Lookup(id int64) (Info, bool) {
	le.mu.RLock()
	defer le.mu.RUnlock()
	l := le.leases[id]
	if l == nil {
		return Info{}, false
	}
	return l.info(time.Now(), false), true
}

// Keys returns the keys attached to lease id, on any member (the auth
// checks of a revoke at apply need them).
func (le *Lessor) Keys(id int64) ([][]byte, bool) {
	le.mu.RLock()
	defer le.mu.RUnlock()
	l := le.leases[id]
	if l == nil {
		return nil, false
	}
	return l.info(time.Now(), true).Keys, true
}

// Exists reports whether the lease id exists.
func (le *Lessor) Exists(id int64) bool {
	le.mu.RLock()
	defer le.mu.RUnlock()
	return le.leases[id] != nil
}

// TimeToLive returns the lease id, with its keys if keys is set. Only the
// leader knows the time left; elsewhere it returns ErrNotPrimary.
func (le *Lessor) TimeToLive(id int64, keys bool) (Info, error) {
	le.mu.RLock()
	defer le.mu.RUnlock()
	if !le.primary {
		return Info{}, ErrNotPrimary
	}
	l := le.leases[id]
	if l == nil {
		return Info{}, rpctypes.ErrGRPCLeaseNotFound
	}
	return l.info(time.Now(), keys), nil
}

// Leases returns every lease, without keys, by ID.
func (le *Lessor) Leases() []Info {
	le.mu.RLock()
	now := time.Now()
	out := make([]Info, 0, len(le.leases))
	for _, l := range le.leases {
		out = append(out, l.info(now, false))
	}
	le.mu.RUnlock()
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Attach attaches keys to the lease id.
func (le *Lessor) Attach(id int64, keys ...[]byte) error {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	for _, k := range keys {
		l.keys[string(k)] = struct{}{}
		le.items[string(k)] = id
	}
	return nil
}

// Detach detaches keys from the lease id.
func (le *Lessor) Detach(id int64, keys ...[]byte) error {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	for _, k := range keys {
		delete(l.keys, string(k))
		if le.items[string(k)] == id {
			delete(le.items, string(k))
		}
	}
	return nil
}

// LeaseOf returns the lease key is attached to, or 0.
func (le *Lessor) LeaseOf(key []byte) int64 {
	le.mu.RLock()
	defer le.mu.RUnlock()
	return le.items[string(key)]
}

// Promote makes this lessor the primary: every lease expires after its
// remaining (checkpointed) or full TTL, plus extend. The server passes the
// election timeout as extend, as etcd does.
func (le *Lessor) Promote(extend time.Duration) {
	le.mu.Lock()
	defer le.mu.Unlock()
	now := time.Now()
	le.primary = true
	le.demoted = make(chan struct{})
	le.nextCP = now.Add(le.cfg.CheckpointInterval)
	for _, l := range le.leases {
		l.refresh(now, extend)
	}
}

// Demote makes this lessor a follower: no lease expires.
func (le *Lessor) Demote() {
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.primary {
		close(le.demoted)
	}
	le.primary = false
	for _, l := range le.leases {
		l.expiry = time.Time{}
	}
}

// Stop stops the clock. ExpiredLeases is not closed.
func (le *Lessor) Stop() {
	le.once.Do(func() {
		close(le.stop)
		<-le.done
	})
}

func (le *Lessor) run() {
	defer close(le.done)
	t := time.NewTicker(le.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-le.stop:
			return
		case <-t.C:
			le.reportExpired()
			le.checkpoint()
		}
	}
}

// reportExpired sends the expired leases not reported recently.
func (le *Lessor) reportExpired() {
	le.mu.Lock()
	if !le.primary {
		le.mu.Unlock()
		return
	}
	now := time.Now()
	var ids []int64
	var ls []*lease
	for _, l := range le.leases {
		if l.expiry.IsZero() || now.Before(l.expiry) {
			continue
		}
		if !l.reported.IsZero() && now.Sub(l.reported) < le.cfg.ExpiredRetryInterval {
			continue
		}
		ids = append(ids, l.id)
		ls = append(ls, l)
	}
	if len(ids) == 0 {
		le.mu.Unlock()
		return
	}
	slices.Sort(ids)
	select {
	case le.expired <- ids:
		for _, l := range ls {
			l.reported = now
		}
	default:
		// The server is behind; the next tick tries again.
	}
	le.mu.Unlock()
}

// checkpoint proposes the remaining TTLs of the leases that would outlive a
// checkpoint interval, every interval, on the leader.
func (le *Lessor) checkpoint() {
	le.mu.Lock()
	now := time.Now()
	if !le.primary || le.cp == nil || now.Before(le.nextCP) {
		le.mu.Unlock()
		return
	}
	le.nextCP = now.Add(le.cfg.CheckpointInterval)
	cp := le.cp
	var cps []*pb.LeaseCheckpoint
	for _, l := range le.leases {
		if l.expiry.IsZero() || time.Duration(l.ttl)*time.Second <= le.cfg.CheckpointInterval {
			continue
		}
		left := int64(l.expiry.Sub(now).Round(time.Second) / time.Second)
		if left > 0 {
			cps = append(cps, &pb.LeaseCheckpoint{ID: l.id, Remaining_TTL: left})
		}
	}
	le.mu.Unlock()
	slices.SortFunc(cps, func(a, b *pb.LeaseCheckpoint) int { return cmp.Compare(a.ID, b.ID) })
	for len(cps) > 0 {
		n := min(len(cps), maxCheckpointBatch)
		ctx, cancel := context.WithTimeout(context.Background(), checkpointTimeout)
		err := cp(ctx, &pb.LeaseCheckpointRequest{Checkpoints: cps[:n]})
		cancel()
		if err != nil {
			le.lg.Warn("lease checkpoint failed", "leases", n, "error", err)
			return
		}
		cps = cps[n:]
	}
}
