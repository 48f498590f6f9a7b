// Command snapread is an oracle: it loads a raft snapshot with etcd's own
// snap package and prints it as JSON:
//
//	{"file":"<term>-<index>.snap","metadata":{"index":N,"term":N,"confState":{...}},"data":"<base64>"}
//
// Usage: snapread <snap-dir>       # Snapshotter.Load: the newest readable .snap
//
//	snapread <file.snap>      # snap.Read of that one file
//
// Note that Snapshotter.Load, as in etcd, renames a .snap file it cannot
// read to .broken before it tries the next older one.
package main
