// Command build-etcd builds real etcd, etcdctl and etcdutl from the Go module
// proxy, and Lifeboat's oracle programs, into a cache keyed by version, and
// prints the path of each binary, one a line.
//
//	go run ./cmd/build-etcd                      # etcd, etcdctl, etcdutl and every oracle (v3.6, this module)
//	go run ./cmd/build-etcd walread              # one binary
//	go run ./cmd/build-etcd -module etcd35       # etcd v3.5 from interop/etcd35
//
// Run it from the interop directory. The cache is
// $LIFEBOAT_ETCD_CACHE/<version>/ (default $HOME/.cache/lifeboat-etcd), where
// <version> is the go.etcd.io/etcd/server/v3 version of the module. Oracles
// go to <version>/oracle-<hash>/, where the hash covers go.mod, go.sum, the
// oracle's own sources and internal/, so an edited oracle is rebuilt. A file
// lock in the version directory serializes parallel builds; a binary is
// written under a temporary name and renamed into place.
package main
