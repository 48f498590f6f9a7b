// Package transport carries raft messages between lifeboat members.
//
// Each member keeps one long-lived HTTP/2 (h2c, cleartext) request per peer
// and writes raft messages into its body as frames:
//
//	[uvarint length][marshaled raftpb.Message]
//
// The receiving member answers 200 at once and steps every frame into its
// raft node; its own messages come back over its own stream, so each stream
// flows one way. Messages queue per peer and never block the raft loop: when
// a peer's queue is full, or its stream is down, messages are dropped and the
// peer is reported unreachable to raft. Every request carries the sender's
// ID, cluster ID and peer URLs: a member that does not know the sender yet
// (its membership is behind) adds it as a peer from its stream, so that it
// can answer the leader and catch up.
//
// A MsgSnap goes over a separate request whose body is
//
//	[uvarint length][marshaled raftpb.Message][bbolt db bytes][32-byte SHA-256 of the db]
//
// The receiver writes the db to a tmp file in the snap dir, checks the hash,
// fsyncs it and renames it to %016x.snap.db (the snapshot index) before it
// steps the message; the server then swaps its backend for that file when
// raft hands the snapshot to the apply loop. Snapshot success or failure is
// reported to raft on the sender.
package transport
