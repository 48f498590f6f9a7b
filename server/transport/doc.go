// Package transport carries raft messages between lifeboat members.
//
// Peers speak HTTP/1.1, cleartext or TLS (offering only "http/1.1" by
// ALPN), as etcd's do. Each member keeps one long-lived POST per peer and
// writes raft messages into its chunked body as frames:
//
//	[uvarint length][marshaled raftpb.Message]
//
// The receiving member enables full duplex, answers 200 at once and steps
// every frame into its raft node; the sender has the response while it
// still writes the body. Its own messages come back over its own stream,
// so each stream carries messages one way.
//
// A stream idle for KeepaliveInterval (1s) carries a keepalive: an empty
// frame, [uvarint 0] (no message marshals to zero bytes), which readers
// skip. The receiver writes a keepalive byte (0) on the response every
// KeepaliveInterval; the response carries nothing else. Either end takes a
// stream silent for 4 intervals for dead: the receiver by a read deadline
// on each read of the body (and a write deadline on its keepalives), the
// sender by a watchdog that also bounds the wait for the response, after
// which it connects again. A snapshot send that the peer takes no bytes of
// for as long fails; TCP keepalives (5s idle, 3 probes 1s apart) watch a
// connection waiting with nothing in flight, as for a snapshot's answer. Messages queue per peer and never block the raft loop: when
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
