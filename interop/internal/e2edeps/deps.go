//go:build tools

// Package e2edeps records etcd's e2e test module as a requirement of the
// interop module, so that `task e2e-etcd` runs etcd's own end-to-end tests
// (go.etcd.io/etcd/tests/v3/e2e, and tests/v3/common with the e2e build
// tag) from the Go module proxy, with lifeboat as the etcd binary. It is
// never built.
package e2edeps

import (
	_ "go.etcd.io/etcd/tests/v3/common"
	_ "go.etcd.io/etcd/tests/v3/e2e"
)
