package mvcc

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/server/lease"
	"github.com/lifeboat-dev/lifeboat/snapkit/keyindex"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// writeTxn is one write transaction: it holds writeMu and the backend
// batch from its start until end, and all its changes share one main
// revision.
type writeTxn struct {
	s        *Store
	bt       *backend.BatchTx
	beginRev int64
	events   []mvccpb.Event
}

// write starts a write transaction.
func (s *Store) write() *writeTxn {
	s.writeMu.Lock()
	bt := s.be.BatchTx()
	bt.Lock()
	return &writeTxn{s: s, bt: bt, beginRev: s.currentRev.Load()}
}

// GetKey reads the key bucket, this transaction's writes included.
func (tw *writeTxn) GetKey(revKey []byte) []byte { return tw.bt.GetKey(revKey) }

// rev is the revision reads in the transaction see.
func (tw *writeTxn) rev() int64 {
	if len(tw.events) > 0 {
		return tw.beginRev + 1
	}
	return tw.beginRev
}

// put writes key at the transaction's revision, as etcd's mvcc does: a new
// key is created at this revision with version 1, an existing one keeps its
// create revision and gets the next version.
func (tw *writeTxn) put(key, value []byte, leaseID int64) error {
	s := tw.s
	rev := tw.beginRev + 1
	created := rev
	var oldLease int64
	if _, c, ver, err := s.idx.Get(key, rev); err == nil {
		created = c.Main
		if s.le != nil {
			oldLease = s.le.LeaseOf(key)
		}
		return tw.putVersion(key, value, leaseID, created, ver+1, oldLease)
	}
	return tw.putVersion(key, value, leaseID, created, 1, oldLease)
}

func (tw *writeTxn) putVersion(key, value []byte, leaseID, created, version, oldLease int64) error {
	s := tw.s
	r := keyindex.Revision{Main: tw.beginRev + 1, Sub: int64(len(tw.events))}
	kv := &mvccpb.KeyValue{
		Key: key, Value: value, CreateRevision: created, ModRevision: r.Main,
		Version: version, Lease: leaseID,
	}
	// One allocation holds the bucket key and the value.
	buf := make([]byte, schema.RevisionSize+kv.Size())
	revKey := schema.AppendRevision(buf[:0], r, false)
	if _, err := kv.MarshalToSizedBuffer(buf[schema.RevisionSize:]); err != nil {
		return fmt.Errorf("mvcc: put %q: marshal: %w", key, err)
	}
	if err := tw.bt.PutKey(revKey, buf[schema.RevisionSize:]); err != nil {
		return fmt.Errorf("mvcc: put %q at %s: %w", key, r, err)
	}
	if err := s.idx.Put(key, r); err != nil {
		return fmt.Errorf("mvcc: put %q at %s: %w", key, r, err)
	}
	tw.events = append(tw.events, mvccpb.Event{Type: mvccpb.PUT, Kv: kv})
	s.m.puts.Inc()
	if version == 1 {
		s.liveKeys.Add(1)
	}
	if oldLease == leaseID || s.le == nil {
		return nil
	}
	if oldLease != 0 {
		if err := s.le.Detach(oldLease, key); err != nil {
			s.lg.Warn("detach key from its old lease", "key", string(key), "lease", fmt.Sprintf("%x", oldLease), "error", err)
		}
	}
	if leaseID != 0 {
		if err := s.le.Attach(leaseID, key); err != nil {
			return fmt.Errorf("mvcc: put %q: attach lease %x: %w", key, leaseID, err)
		}
	}
	return nil
}

// deleteRange deletes the keys live in [key, end) (end as in keyindex.Range)
// and returns how many.
func (tw *writeTxn) deleteRange(key, end []byte) (int64, error) {
	keys, _, _ := tw.s.idx.Range(key, end, tw.rev(), 0)
	for _, k := range keys {
		if err := tw.delete(k); err != nil {
			return 0, err
		}
	}
	return int64(len(keys)), nil
}

// delete writes the tombstone of key.
func (tw *writeTxn) delete(key []byte) error {
	s := tw.s
	r := keyindex.Revision{Main: tw.beginRev + 1, Sub: int64(len(tw.events))}
	tomb := &mvccpb.KeyValue{Key: key}
	buf := make([]byte, schema.TombstoneSize+tomb.Size())
	revKey := schema.AppendRevision(buf[:0], r, true)
	if _, err := tomb.MarshalToSizedBuffer(buf[schema.TombstoneSize:]); err != nil {
		return fmt.Errorf("mvcc: delete %q: marshal: %w", key, err)
	}
	if err := tw.bt.PutKey(revKey, buf[schema.TombstoneSize:]); err != nil {
		return fmt.Errorf("mvcc: delete %q at %s: %w", key, r, err)
	}
	if err := s.idx.Tombstone(key, r); err != nil {
		return fmt.Errorf("mvcc: delete %q at %s: %w", key, r, err)
	}
	tw.events = append(tw.events, mvccpb.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: key, ModRevision: r.Main}})
	s.m.deletes.Inc()
	s.liveKeys.Add(-1)
	if s.le == nil {
		return nil
	}
	if id := s.le.LeaseOf(key); id != 0 {
		if err := s.le.Detach(id, key); err != nil {
			s.lg.Warn("detach deleted key from its lease", "key", string(key), "lease", fmt.Sprintf("%x", id), "error", err)
		}
	}
	return nil
}

// end records the consistent index of the entry being applied, publishes
// the changes to readers, advances the revision and notifies the watchers.
func (tw *writeTxn) end() {
	s := tw.s
	if s.applying.active {
		tw.bt.SetConsistentIndex(s.applying.index, s.applying.term)
		s.setConsistentIndex(s.applying.index, s.applying.term)
	}
	tw.bt.Unlock()
	if len(tw.events) > 0 {
		s.watch.mu.Lock()
		s.currentRev.Store(tw.beginRev + 1)
		s.notify(tw.beginRev+1, tw.events)
		s.watch.mu.Unlock()
	}
	s.writeMu.Unlock()
}

// rangeDeleter is a write transaction for server/lease's Revoke.
type rangeDeleter struct{ tw *writeTxn }

// NewRangeDeleter starts a write transaction for lease.Lessor.Revoke; wire
// it with lessor.SetRangeDeleter(store.NewRangeDeleter).
func (s *Store) NewRangeDeleter() lease.RangeDeleter { return rangeDeleter{s.write()} }

func (d rangeDeleter) DeleteRange(key, end []byte) (int64, int64, error) {
	n, err := d.tw.deleteRange(key, end)
	return n, d.tw.rev(), err
}

func (d rangeDeleter) End() error {
	d.tw.end()
	return nil
}
