// Package backupd takes verified, encrypted, scheduled snapshots of an etcd
// (or lifeboat) cluster into any gocloud.dev/blob bucket.
//
// One backup (Backup): choose an up-to-date follower, else the leader
// (ChooseMember); stream its Maintenance.Snapshot into a spool file and, in
// the same pass, through the codec (zstd/gzip/none, then age) into a
// staging object, hashing it as it arrives (its SHA-256 against its
// trailer); verify the spool: read back, it must match the stream, and
// snapkit checks the bbolt structure and schema, the status and hashkv at
// its revision; then commit: copy the staging object to its final name (on
// file:// a hard link), compare sizes and the store's MD5 where it keeps
// one computed on its side, and write the manifest last (package
// manifest has the layout and the commit rule). A failure at any step
// leaves no manifest, so nothing counts; the staging object is an orphan
// that prune removes after a grace period.
//
// Runner adds the prefix's lock, the state of the newest attempt (one
// backup per slot whatever the number of daemons; retention pauses after a
// failure) and retention (package retention). Daemon runs a Runner on a
// schedule with /healthz and Prometheus metrics (Metrics). Verify and Fetch
// read a backup back; Drill restores one with a Restorer, boots a lifeboat
// member on it in process and compares it with the manifest.
package backupd
