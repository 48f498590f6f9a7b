// Package inspect turns the raft entries of an etcd WAL into something a
// person can read: it decodes entry data (an InternalRaftRequest, a v2
// Request, a ConfChange with its member JSON, or a leader no-op), filters
// entries by index, term, type and key prefix, and adds up statistics.
//
// Entry types carry the names etcd-dump-logs uses (ConfigChange, Normal,
// Request, InternalRaftRequest, IRRPut, ...) plus names for the requests it
// does not list (IRRAlarm, IRRAuthUserAdd, IRRClusterVersionSet, ...), NoOp
// for an empty Normal entry and UnknownNormal for data nothing decodes.
// Keys and values print as UTF-8 when printable and as "base64:..."
// otherwise, or as hex on request. Passwords and tokens are never printed.
//
// The package reads no files: walkit reads the WAL, inspect explains it.
package inspect
