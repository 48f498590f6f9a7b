// Package lease is the server's lessor: the leases of the member, their TTLs
// and the keys attached to them.
//
// Every member applies Grant, Revoke and Checkpoint from the raft log, and
// keeps each lease in the lease bucket of the backend (snapkit/schema's
// leasepb layout: ID, TTL, RemainingTTL). Only the leader (the primary
// lessor, after Promote) runs the clocks: it renews leases, reports expired
// ones on ExpiredLeases for the server to propose their revocation, and
// periodically proposes checkpoints of the remaining TTLs through the
// Checkpointer, so that a new leader resumes them instead of granting every
// lease its full TTL again. Followers hold every lease forever.
//
// Revoke deletes the attached keys through a RangeDeleter, which the mvcc
// store provides, in the same backend transaction as the lease's deletion.
package lease
