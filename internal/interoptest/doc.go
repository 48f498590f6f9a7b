// Package interoptest gives Lifeboat's tests real etcd: it finds or builds
// etcd, etcdctl and etcdutl (v3.6.6) and the oracle programs of
// interop/cmd/*, and starts real etcd members on free 127.0.0.1 ports.
//
// Binaries live in a cache keyed by version:
//
//	$LIFEBOAT_ETCD_CACHE/<version>/{etcd,etcdctl,etcdutl}
//	$LIFEBOAT_ETCD_CACHE/<version>/oracle-<hash>/<name>
//
// LIFEBOAT_ETCD_CACHE defaults to $HOME/.cache/lifeboat-etcd. The oracle
// hash covers the interop module's go.mod, go.sum and the oracle's sources,
// so an edited oracle is rebuilt. A missing binary is built by
// `go run ./cmd/build-etcd <name>` in the interop directory, which holds a
// file lock so that parallel test processes build it once. When it cannot
// be had the test is skipped with the reason, or fails when
// LIFEBOAT_INTEROP=require (CI sets it, so CI cannot pass by skipping).
//
// The package imports nothing of etcd; it talks to members over HTTP
// (/health) and leaves the client side to the tests.
package interoptest
