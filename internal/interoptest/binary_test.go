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
	t.Setenv(ModeEnv, "")
	r := &recorder{TB: t}
	unavailable(r, "etcd", cause)
	if r.failed != "" || !strings.Contains(r.skipped, "no network") || !strings.Contains(r.skipped, ModeEnv) {
		t.Fatalf("without %s: skipped %q, failed %q; want a skip naming the cause and the variable", ModeEnv, r.skipped, r.failed)
	}
	t.Setenv(ModeEnv, "require")
	r = &recorder{TB: t}
	unavailable(r, "etcd", cause)
	if r.skipped != "" || !strings.Contains(r.failed, "no network") {
		t.Fatalf("with %s=require: skipped %q, failed %q; want a failure naming the cause", ModeEnv, r.skipped, r.failed)
	}
}

// cacheWith makes a cache root holding a fake etcdutl, or nothing.
func cacheWith(t *testing.T, cached bool) (root, etcdutl string) {
	t.Helper()
	root = t.TempDir()
	t.Setenv(CacheEnv, root)
	etcdutl = filepath.Join(root, EtcdVersion, "etcdutl")
	if !cached {
		return root, etcdutl
	}
	if err := os.MkdirAll(filepath.Dir(etcdutl), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(etcdutl, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, etcdutl
}

// Every LIFEBOAT_INTEROP value against a cached binary: off skips even
// then, unset and require use it, anything else fails.
func TestModes(t *testing.T) {
	for _, tc := range []struct {
		mode           string
		found, skipped bool
		failed         string
	}{
		{mode: "", found: true},
		{mode: "require", found: true},
		{mode: "off", skipped: true},
		{mode: "on", failed: `LIFEBOAT_INTEROP="on"; want off, require, or unset`},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			root, want := cacheWith(t, true)
			t.Setenv(ModeEnv, tc.mode)
			r := &recorder{TB: t}
			got := Binary(r, "etcdutl")
			if (got == want) != tc.found || (r.skipped != "") != tc.skipped || !strings.Contains(r.failed, tc.failed) || (tc.failed == "") != (r.failed == "") {
				t.Fatalf("Binary(etcdutl) = %q, skipped %q, failed %q; want found %v, skipped %v, failed %q", got, r.skipped, r.failed, tc.found, tc.skipped, tc.failed)
			}
			if tc.found {
				if got, err := CacheRoot(); err != nil || got != root {
					t.Fatalf("CacheRoot() = %s, %v; want %s", got, err, root)
				}
			}
		})
	}
}

// Under off neither Binary nor Oracle builds anything: the empty cache
// stays empty and the skip names the variable.
func TestOffBuildsNothing(t *testing.T) {
	root, _ := cacheWith(t, false)
	t.Setenv(ModeEnv, "off")
	for _, tc := range []struct {
		fn   string
		get  func(testing.TB, string) string
		name string
	}{
		{"Binary", Binary, "etcd"},
		{"Oracle", Oracle, "walread"},
	} {
		r := &recorder{TB: t}
		if got := tc.get(r, tc.name); got != "" || r.failed != "" || !strings.Contains(r.skipped, ModeEnv+"=off") {
			t.Fatalf("%s(%s) under off = %q, skipped %q, failed %q; want a skip naming %s=off", tc.fn, tc.name, got, r.skipped, r.failed, ModeEnv)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Fatalf("cache %s after off: %v, %v; want it empty", root, entries, err)
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
