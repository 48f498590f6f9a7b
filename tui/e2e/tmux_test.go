package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/tui/internal/testcluster"
)

// tmux is one private tmux server running lbtop in one pane.
type tmux struct {
	t      testing.TB
	bin    string
	socket string
	exit   string // the file that receives the program's exit status
}

// newTmux finds tmux; without it the test skips, unless
// LIFEBOAT_TMUX=require, when it fails (so that CI cannot pass by skipping).
func newTmux(t testing.TB) *tmux {
	t.Helper()
	bin, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("LIFEBOAT_TMUX") == "require" {
			t.Fatalf("tmux not found and LIFEBOAT_TMUX=require: %v (apt-get install -y tmux)", err)
		}
		t.Skipf("tmux not found (%v); LIFEBOAT_TMUX=require makes this a failure", err)
	}
	dir := t.TempDir()
	tm := &tmux{t: t, bin: bin, socket: filepath.Join(dir, "tmux.sock"), exit: filepath.Join(dir, "exit-status")}
	t.Cleanup(func() { _ = exec.Command(bin, "-S", tm.socket, "kill-server").Run() })
	return tm
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command(tm.bin, append([]string{"-S", tm.socket}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs argv in a detached 160x40 session that stays after the
// program exits; a shell around it writes its exit status to tm.exit
// (tmux's own pane_dead_status can lag behind the pane's death).
func (tm *tmux) start(argv ...string) {
	tm.t.Helper()
	wrapped := append([]string{"sh", "-c", `"$@"; echo $? > ` + tm.exit, "sh"}, argv...)
	tm.run(append([]string{"-f", "/dev/null", "new-session", "-d", "-s", "lbtop", "-x", "160", "-y", "40"}, wrapped...)...)
	tm.run("set-option", "-s", "escape-time", "0")
	tm.run("set-option", "-t", "lbtop", "remain-on-exit", "on")
}

func (tm *tmux) keys(keys ...string) {
	tm.t.Helper()
	tm.run(append([]string{"send-keys", "-t", "lbtop"}, keys...)...)
}

func (tm *tmux) screen() string {
	tm.t.Helper()
	return tm.run("capture-pane", "-p", "-t", "lbtop")
}

// waitScreen captures the pane until ok accepts it, for up to 30s.
func (tm *tmux) waitScreen(what string, ok func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := tm.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("no screen with %s; the last:\n%s", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(subs ...string) func(string) bool {
	return func(s string) bool {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	}
}

// row is the line of the members table for name, or "".
func row(screen, name string) string {
	for _, l := range strings.Split(screen, "\n") {
		if f := strings.Fields(strings.TrimPrefix(l, "›")); len(f) > 1 && f[0] == name && strings.Contains(l, "127.0.0.1:") {
			return l
		}
	}
	return ""
}

// TestTmuxSmoke runs the lbtop binary against a 3-member cluster of
// lifeboat processes, given one endpoint: select, detail, filter, help, a
// member killed under it, and quit.
func TestTmuxSmoke(t *testing.T) {
	tm := newTmux(t)
	bin := testcluster.Build(t, "github.com/lifeboat-dev/lifeboat/cmd/lbtop")
	c := testcluster.StartProcesses(t, testcluster.Build(t, "github.com/lifeboat-dev/lifeboat/cmd/lifeboat"), testcluster.Options{})
	c.MoveLeader(0)
	tm.start(bin, "--endpoints", c.URL(0), "--refresh", "500ms", "--command-timeout", "1s")

	s := tm.waitScreen("the three members, healthy", contains("3/3 voters up, quorum ok", "leader m1", "hashkv agree"))
	for _, name := range []string{"m1", "m2", "m3"} {
		if r := row(s, name); !strings.Contains(r, "true") {
			t.Fatalf("row of %s: %q\n%s", name, r, s)
		}
	}
	if !strings.HasPrefix(row(s, "m1"), "›") {
		t.Fatalf("m1 is not selected:\n%s", s)
	}

	tm.keys("j")
	tm.waitScreen("m2 selected", func(s string) bool { return strings.HasPrefix(row(s, "m2"), "›") })
	tm.keys("Enter")
	tm.waitScreen("m2's detail", contains("member m2", "raft applied index", "last "))
	tm.keys("Escape")
	tm.waitScreen("the table again", func(s string) bool { return strings.HasPrefix(row(s, "m2"), "›") })

	tm.keys("/", "m", "3")
	tm.waitScreen("only m3 passes the filter", func(s string) bool {
		return row(s, "m3") != "" && row(s, "m1") == "" && row(s, "m2") == "" && strings.Contains(s, "/m3")
	})
	tm.keys("Enter", "Escape")
	tm.waitScreen("the filter cleared", func(s string) bool { return row(s, "m1") != "" && row(s, "m2") != "" })

	tm.keys("?")
	tm.waitScreen("the help", contains("back / clear filter", "refresh now"))
	tm.keys("?")
	tm.waitScreen("the help closed", func(s string) bool { return row(s, "m1") != "" })

	c.Kill(2)
	s = tm.waitScreen("m3 down", func(s string) bool {
		return strings.Contains(s, "2/3 voters up, quorum ok") && strings.Contains(row(s, "m3"), "false")
	})
	if r := row(s, "m1"); !strings.Contains(r, "true") {
		t.Errorf("m1 after m3 stopped: %q", r)
	}

	tm.keys("q")
	// The shell around lbtop records how it ended.
	var status []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(tm.exit); err == nil && len(bytes.TrimSpace(b)) > 0 {
			status = bytes.TrimSpace(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lbtop did not quit on q:\n%s", tm.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(status) != "0" {
		t.Errorf("lbtop exited with status %s, want 0:\n%s", status, tm.screen())
	}
}
