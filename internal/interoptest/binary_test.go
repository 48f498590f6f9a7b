package interoptest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Skipf and Fatalf record instead of
// stopping, so that unavailable's choice can be seen.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestUnavailableSkipsUnlessRequired(t *testing.T) {
	cause := fmt.Errorf("no network")
	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	unavailable(r, "etcd", cause)
	if r.failed != "" || !strings.Contains(r.skipped, "no network") || !strings.Contains(r.skipped, RequireEnv) {
		t.Fatalf("without %s: skipped %q, failed %q; want a skip naming the cause and the variable", RequireEnv, r.skipped, r.failed)
	}
	t.Setenv(RequireEnv, "require")
	r = &recorder{TB: t}
	unavailable(r, "etcd", cause)
	if r.skipped != "" || !strings.Contains(r.failed, "no network") {
		t.Fatalf("with %s=require: skipped %q, failed %q; want a failure naming the cause", RequireEnv, r.skipped, r.failed)
	}
}

func TestBinaryComesFromTheVersionedCache(t *testing.T) {
	root := t.TempDir()
	t.Setenv(CacheEnv, root)
	want := filepath.Join(root, EtcdVersion, "etcdutl")
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := Binary(t, "etcdutl"); got != want {
		t.Fatalf("Binary(etcdutl) = %s, want the cached %s", got, want)
	}
	if got, err := CacheRoot(); err != nil || got != root {
		t.Fatalf("CacheRoot() = %s, %v; want %s", got, err, root)
	}
}

func TestUnknownNamesFail(t *testing.T) {
	r := &recorder{TB: t}
	Binary(r, "etcdx")
	if !strings.Contains(r.failed, "etcdx") {
		t.Fatalf("Binary(etcdx): failed %q, want a failure naming it", r.failed)
	}
	r = &recorder{TB: t}
	Oracle(r, "etcd")
	if !strings.Contains(r.failed, "use Binary") {
		t.Fatalf("Oracle(etcd): failed %q, want a pointer to Binary", r.failed)
	}
}
