// Command hashkv is an oracle: it computes the KV hash of a bbolt db file at a
// revision with etcd's own mvcc package and prints it as etcdutl does:
//
//	{"hash":N,"hashRevision":N,"compactRevision":N}
//
// Usage: hashkv [--rev N] <db>
//
// It exists because `etcdutl hashkv` of v3.6.6 panics ("no lessor to attach
// lease") on any db that holds a key attached to a lease, which every real
// cluster's db does. hashkv does what etcdutl does, but gives the store a
// lessor. It works on a temporary copy, because etcd's backend opens the
// file for writing.
package main
