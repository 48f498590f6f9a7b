package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/tui/internal/testcluster"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux that Go runs on.
const clockTicks = 100

// processCPU is the user and system time of process pid and its threads.
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) start at
	// the state, field 3; utime and stime are fields 14 and 15.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[14-3], 10, 64)
	stime, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// BenchmarkLbtopSteadyState5Members runs the lbtop binary as an operator
// does, in a terminal (tmux) at the default 2s refresh, against five
// lifeboat processes, and reports the share of one core it takes: the
// polls, the HashKV comparisons, the renders and bubbletea's renderer, all
// of it, over 10s windows of its life.
func BenchmarkLbtopSteadyState5Members(b *testing.B) {
	tm := newTmux(b)
	bin := testcluster.Build(b, "github.com/lifeboat-dev/lifeboat/cmd/lbtop")
	c := testcluster.StartProcesses(b, testcluster.Build(b, "github.com/lifeboat-dev/lifeboat/cmd/lifeboat"), testcluster.Options{Members: 5})
	tm.start(bin, "--endpoints", c.URL(0))
	tm.waitScreen("five members up", contains("5/5 voters up, quorum ok", "hashkv agree"))
	pid, err := strconv.Atoi(strings.TrimSpace(tm.run("display-message", "-p", "-t", "lbtop", "#{pane_pid}")))
	if err != nil {
		b.Fatal(err)
	}
	const window = 10 * time.Second
	var cpu, wall time.Duration
	for b.Loop() {
		before, start := processCPU(b, pid), time.Now()
		time.Sleep(window)
		cpu += processCPU(b, pid) - before
		wall += time.Since(start)
	}
	b.ReportMetric(100*float64(cpu)/float64(wall), "%core")
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/(float64(wall)/float64(2*time.Second)), "cpu-ms/refresh")
}
