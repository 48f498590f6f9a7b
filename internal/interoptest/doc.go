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
// file lock so that parallel test processes build it once.
//
// LIFEBOAT_INTEROP says what the interop tests do:
//
//	off      skip at once, building and running nothing (a fast inner loop)
//	unset    find or build the binaries; skip a test, with the reason, when
//	         one cannot be had
//	require  like unset, but fail that test instead of skipping it (CI sets
//	         it, so CI cannot pass by skipping)
//
// Any other value fails the test.
//
// The package imports nothing of etcd; it talks to members over HTTP
// (/health) and leaves the client side to the tests.
package interoptest
