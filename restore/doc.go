// Package restore recovers etcd clusters offline: it restores snapshot
// files into new data dirs (what `etcdutl snapshot restore` does, faster
// and with learners), inspects surviving data dirs, rewrites a survivor's
// membership as etcd's --force-new-cluster would (into a copy), rolls a
// snapshot forward with a surviving WAL's committed entries (replayed by a
// lifeboat member started in process on the new dir, so through the
// server's own apply code), and plans and applies a whole recovery.
//
// Every file is read and written through walkit (the WAL), snapkit/schema
// (the bbolt backend), snapkit/snap (.snap files) and snapkit/datadir (the
// names in a data dir); this package holds no format of its own, and no
// apply code: entries are applied by the server alone. Inputs are
// never changed: new data dirs are built in a temporary directory beside
// their destination, synced, and renamed into place.
package restore
