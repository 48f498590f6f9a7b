package tui

import (
	"context"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/lifeboat-dev/lifeboat/tui/internal/testcluster"
	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRefresh5Members is what one refresh costs lbtop against five
// members: the poll (Status, member list and health read of each, and
// HashKV every 30s as by default) and the model's update and render. The
// members are lifeboat processes, so that the process's CPU time
// (getrusage) is lbtop's alone. The poller's clock moves 2s a refresh, so
// the HashKV comparisons come as often as at the default --refresh; the
// refreshes themselves run back to back. It reports the CPU time of one
// refresh and the share of one core that lbtop takes at a 2s refresh.
func BenchmarkRefresh5Members(b *testing.B) {
	bin := testcluster.Build(b, "github.com/lifeboat-dev/lifeboat/cmd/lifeboat")
	c := testcluster.StartProcesses(b, bin, testcluster.Options{Members: 5})
	for i := range 100 {
		c.Put(i%5, "key/"+string(rune('a'+i%26)), "value")
	}
	now := time.Now()
	p, err := poll.New(poll.Config{Endpoints: []string{c.URL(0)}, Timeout: 2 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	m := New(Options{Poller: p, Now: func() time.Time { return now }})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 50})
	ctx := context.Background()
	m.Update(sampleMsg{p.Poll(ctx)}) // connects to every member
	if cs, _ := m.Cluster(); cs.VotersUp != 5 {
		b.Fatalf("%d of 5 members up", cs.VotersUp)
	}
	before := cpuTime(b)
	for b.Loop() {
		now = now.Add(DefaultRefresh)
		m.Update(sampleMsg{p.Poll(ctx)})
		_ = m.View()
	}
	per := (cpuTime(b) - before) / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(time.Millisecond), "cpu-ms/refresh")
	b.ReportMetric(100*float64(per)/float64(DefaultRefresh), "%core@2s")
}
