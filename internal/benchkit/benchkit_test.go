package benchkit

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestCachedGeneratesOnce(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	calls := 0
	gen := func(path string) error {
		calls++
		return os.WriteFile(path, []byte("data"), 0o600)
	}
	for _, wantMade := range []bool{true, false} {
		path, made, err := Cached("x.db", gen)
		if err != nil {
			t.Fatal(err)
		}
		if made != wantMade {
			t.Fatalf("made %v, want %v", made, wantMade)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "data" {
			t.Fatalf("%s: %q, %v", path, b, err)
		}
	}
	if calls != 1 {
		t.Fatalf("gen ran %d times, want 1", calls)
	}
}

func TestCachedLeavesNothingWhenGenFails(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	boom := errors.New("boom")
	_, _, err := Cached("x.db", func(path string) error {
		_ = os.WriteFile(path, []byte("half"), 0o600)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	dir, _ := CacheDir()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v in %s", entries, dir)
	}
}

func TestRun(t *testing.T) {
	if _, err := os.Stat(TimeBin); err != nil {
		t.Skip(ErrNoTime)
	}
	cases := []struct {
		name    string
		argv    []string
		wantErr string
	}{
		{"ok", []string{"sh", "-c", "echo noise >&2; head -c 8000000 /dev/zero | tail -c 1 >/dev/null"}, ""},
		{"fails", []string{"sh", "-c", "echo broken >&2; exit 3"}, "broken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := Run(context.Background(), exec.Command(c.argv[0], c.argv[1:]...))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one holding %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.PeakRSS <= 0 || u.Wall <= 0 {
				t.Fatalf("usage %+v", u)
			}
		})
	}
}
