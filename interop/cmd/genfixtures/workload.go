package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease IDs are chosen rather than left to etcd, whose IDs depend on the
// clock.
const (
	leaseKept    = 0x6c62000000000001
	leaseRevoked = 0x6c62000000000002
)

// workload is the scripted traffic of a fixture set. It mimics a small
// Kubernetes cluster: pods overwritten often, config maps, node leases and
// events.
type workload struct {
	cli *clientv3.Client
	rng *rand.Rand
}

func newWorkload(cli *clientv3.Client, seed uint64) *workload {
	return &workload{cli: cli, rng: rand.New(rand.NewPCG(seed, seed))}
}

// cluster runs the 3-member workload, one revision per step:
// 400 pod puts over 5 namespaces x 20 pods, 100 config maps, a prefix delete
// of namespace ns4's pods and the delete of one config map, two leased keys
// of which one lease is revoked, a succeeding txn of two puts, a compaction
// at the revision minus 100, and 150 event puts.
func (w *workload) cluster(ctx context.Context) error {
	for range 400 {
		key := fmt.Sprintf("/registry/pods/ns%d/pod-%d", w.rng.IntN(5), w.rng.IntN(20))
		if err := w.put(ctx, key); err != nil {
			return err
		}
	}
	for i := range 100 {
		if err := w.put(ctx, fmt.Sprintf("/registry/configmaps/ns%d/cm-%d", i%5, i)); err != nil {
			return err
		}
	}
	if err := w.del(ctx, "/registry/pods/ns4/", clientv3.WithPrefix()); err != nil {
		return err
	}
	if err := w.del(ctx, "/registry/configmaps/ns2/cm-7"); err != nil {
		return err
	}
	for i, id := range []int64{leaseKept, leaseRevoked} {
		if _, err := pb.NewLeaseClient(w.cli.ActiveConnection()).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: 3600}); err != nil {
			return fmt.Errorf("lease grant %x: %w", id, err)
		}
		key := fmt.Sprintf("/registry/leases/kube-node-lease/node-%d", i+1)
		if err := w.put(ctx, key, clientv3.WithLease(clientv3.LeaseID(id))); err != nil {
			return err
		}
	}
	if _, err := w.cli.Revoke(ctx, leaseRevoked); err != nil {
		return fmt.Errorf("lease revoke %x: %w", leaseRevoked, err)
	}
	txn, err := w.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Version("/registry/configmaps/ns0/cm-0"), ">", 0)).
		Then(clientv3.OpPut("/registry/txn/a", w.value()), clientv3.OpPut("/registry/txn/b", w.value())).
		Commit()
	if err != nil {
		return fmt.Errorf("txn: %w", err)
	}
	if !txn.Succeeded {
		return fmt.Errorf("txn at revision %d: the compare failed", txn.Header.Revision)
	}
	at := txn.Header.Revision - 100
	if _, err := w.cli.Compact(ctx, at, clientv3.WithCompactPhysical()); err != nil {
		return fmt.Errorf("compact at %d: %w", at, err)
	}
	for i := range 150 {
		if err := w.put(ctx, fmt.Sprintf("/registry/events/ns1/ev-%d", i)); err != nil {
			return err
		}
	}
	return nil
}

// solo runs the single member's workload: 120 puts over 40 keys, then one
// delete, so that --snapshot-count 50 cuts two snapshots.
func (w *workload) solo(ctx context.Context) error {
	for i := range 120 {
		if err := w.put(ctx, fmt.Sprintf("/registry/secrets/ns0/secret-%d", i%40)); err != nil {
			return err
		}
	}
	return w.del(ctx, "/registry/secrets/ns0/secret-0")
}

// value is 10 to 210 random bytes in base64.
func (w *workload) value() string {
	b := make([]byte, 10+w.rng.IntN(201))
	for i := range b {
		b[i] = byte(w.rng.UintN(256))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func (w *workload) put(ctx context.Context, key string, opts ...clientv3.OpOption) error {
	if _, err := w.cli.Put(ctx, key, w.value(), opts...); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// del deletes and fails if nothing was deleted, since every delete of the
// workload must make a revision.
func (w *workload) del(ctx context.Context, key string, opts ...clientv3.OpOption) error {
	resp, err := w.cli.Delete(ctx, key, opts...)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("delete %s at revision %d: nothing to delete", key, resp.Header.Revision)
	}
	return nil
}
