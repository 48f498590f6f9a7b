// Package poll asks every member of an etcd cluster for its state once per
// refresh: its Status, whether it serves a linearizable read (etcdctl's
// endpoint health), the member list it knows, and from time to time its
// HashKV at a revision all members have. Each member has its own client and
// its own timeout, and they are asked concurrently, so a member that hangs
// shows as down in the Sample instead of holding the others up.
//
// It talks to the cluster only through go.etcd.io/etcd/client/v3 and works
// the same against etcd and lifeboat.
package poll
