package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOracleHashFollowsSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("go.sum", "")
	write("cmd/walread/main.go", "package main\n")
	write("internal/waljson/waljson.go", "package waljson\n")
	t.Chdir(dir)
	hash := func() string {
		t.Helper()
		h, err := oracleHash("walread")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash()
	write("cmd/walread/main_test.go", "package main\n// a test\n")
	write("cmd/snapread/main.go", "package main\n// another oracle\n")
	if h := hash(); h != base {
		t.Fatalf("hash moved (%s -> %s) for files the oracle is not built from", base, h)
	}
	for _, f := range []string{"internal/waljson/waljson.go", "cmd/walread/main.go", "go.sum"} {
		write(f, "package changed\n")
		h := hash()
		if h == base {
			t.Fatalf("editing %s left the hash at %s", f, h)
		}
		base = h
	}
	if _, err := oracleHash("nosuch"); err != nil {
		t.Fatalf("an oracle without sources must still hash (go build reports it): %v", err)
	}
}

func TestUnknownBinary(t *testing.T) {
	b := builder{root: t.TempDir(), module: ".", version: "v3.6.6"}
	if _, err := b.binary("etcdx"); err == nil {
		t.Fatal("unknown binary accepted")
	}
	b.module = "etcd35"
	if _, err := b.binary("walread"); err == nil {
		t.Fatal("oracle from the etcd35 module accepted")
	}
}
