package cli

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/dustin/go-humanize"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/tui"
	"github.com/lifeboat-dev/lifeboat/tui/internal/testcluster"
	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

// run runs cmd and the commands of the batches it returns, and gives their
// messages to m; the ticks they would schedule are not run.
func run(m *tui.Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			run(m, c)
		}
	default:
		m.Update(msg)
	}
}

// The panel over a real bucket: one backup of a 1-member lifeboat, taken
// with backupd's library into a file:// bucket, as lbtop sees it at
// several ages against several intervals (the model's clock).
func TestBucketPanel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.StartLifeboat(t, testcluster.Options{Members: 1})
	c.Put(0, "k", "v")
	url, prefix := "file://"+t.TempDir(), "prod/etcd"
	s, err := store.Open(ctx, url, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := backupd.Backup(ctx, &backupd.Config{
		Client:   clientv3.Config{Endpoints: []string{c.URL(0)}, DialTimeout: 5 * time.Second},
		Store:    s,
		Codec:    codec.Options{Codec: codec.Zstd},
		SpoolDir: t.TempDir(),
	}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.ParsedID()
	if err != nil {
		t.Fatal(err)
	}
	p, err := poll.New(poll.Config{Endpoints: []string{c.URL(0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	for _, tc := range []struct {
		name     string
		interval time.Duration
		age      time.Duration // of the backup, on the model's clock
		stale    bool
		panel    string
	}{
		{"fresh", time.Hour, time.Minute, false, "every 1h: ok"},
		{"stale", time.Minute, 10 * time.Minute, true, "every 1m: STALE, newest is 10m old"},
		{"no interval", 0, 30 * time.Hour, false, "interval unknown, age not judged: ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := bucketSource(ctx, url, prefix, tc.interval)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			st, err := src.BackupState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Newest == nil || st.Newest.Revision != m.Revision || !st.Newest.Time.Equal(id.Time) ||
				st.Newest.Size != m.Object.Size || st.Kept != 1 || st.Interval != tc.interval || st.LastDrill != nil {
				t.Fatalf("state %+v newest %+v; manifest revision %d time %s size %d", st, st.Newest, m.Revision, id.Time, m.Object.Size)
			}

			now := id.Time.Add(tc.age)
			model := tui.New(tui.Options{Poller: p, Backup: src, Now: func() time.Time { return now }, Context: ctx})
			model.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
			run(model, model.Init())
			b := model.Backup()
			if b == nil || b.Err != nil || b.Stale != tc.stale || b.Newest == nil || b.Newest.Revision != m.Revision || b.Age != tc.age {
				t.Fatalf("panel %+v, want stale %v", b, tc.stale)
			}
			screen := ansi.Strip(model.Render())
			for _, want := range []string{"BACKUP  " + src.Name(), "revision " + strconv.FormatInt(m.Revision, 10), "(1 kept)", tc.panel} {
				if !strings.Contains(screen, want) {
					t.Errorf("screen lacks %q:\n%s", want, screen)
				}
			}
		})
	}
}

// drillAge is the age on the panel's drill line, which depends on when
// the drill ended (checked exactly in the model's report).
var drillAge = regexp.MustCompile(`(last drill +ok) \S+ ago`)

// The panel over a bucket that backupd run writes to, with drills: the
// interval and the last drill come from the daemon's record, and the
// newest backup is stale once older than twice the recorded interval
// (lbtop's --interval 0). --interval still overrides the record.
func TestBucketPanelFromDaemon(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testcluster.StartLifeboat(t, testcluster.Options{Members: 1})
	c.Put(0, "k", "v")
	url, prefix := "file://"+t.TempDir(), "prod/etcd"
	s, err := store.Open(ctx, url, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	every2s, _ := backupd.ParseSchedule("@every 2s")
	every3s, _ := backupd.ParseSchedule("@every 3s")
	d := &backupd.Daemon{
		Runner: &backupd.Runner{Config: &backupd.Config{
			Client: clientv3.Config{Endpoints: []string{c.URL(0)}, DialTimeout: 5 * time.Second},
			Store:  s, Codec: codec.Options{Codec: codec.Zstd}, SpoolDir: t.TempDir(),
		}, Holder: "lbtop-test"},
		Schedule: every2s, Metrics: backupd.NewMetrics(),
		Drill:         &backupd.Drill{Store: s, WorkDir: t.TempDir()},
		DrillSchedule: every3s,
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	var info store.DaemonInfo
	// (A drill before the first backup commits fails: none to restore.)
	for deadline := time.Now().Add(time.Minute); info.LastDrill == nil || !info.LastDrill.OK; {
		if time.Now().After(deadline) {
			t.Fatalf("no drill passed in a minute: %+v, last %+v", info, info.LastDrill)
		}
		time.Sleep(100 * time.Millisecond)
		if info, _, err = s.DaemonInfo(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if info, _, err = s.DaemonInfo(ctx); err != nil { // the daemon may have drilled again
		t.Fatal(err)
	}
	drill := info.LastDrill
	if !drill.OK || drill.ID == "" {
		t.Fatalf("drill %+v", drill)
	}
	p, err := poll.New(poll.Config{Endpoints: []string{c.URL(0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	for _, tc := range []struct {
		name     string
		flag     time.Duration // --interval
		interval time.Duration // the panel's
		age      time.Duration // of the newest backup, on the model's clock
		stale    bool
		panel    string // with <bucket>, <id>, <size>, <drill age> for what differs between runs
	}{
		{"recorded, fresh", 0, 2 * time.Second, 4 * time.Second, false, `BACKUP  <bucket>
  newest verified  4s ago  revision 2  <size>  (<kept> kept)
  schedule         every 2s: ok
  last drill       ok <drill age> ago  of <id>`},
		{"recorded, stale", 0, 2 * time.Second, 5 * time.Second, true, `BACKUP  <bucket>
  newest verified  5s ago  revision 2  <size>  (<kept> kept)
  schedule         every 2s: STALE, newest is 5s old
  last drill       ok <drill age> ago  of <id>`},
		{"--interval overrides", time.Minute, time.Minute, 5 * time.Second, false, `BACKUP  <bucket>
  newest verified  5s ago  revision 2  <size>  (<kept> kept)
  schedule         every 1m: ok
  last drill       ok <drill age> ago  of <id>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := bucketSource(ctx, url, prefix, tc.flag)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			st, err := src.BackupState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := tui.Drill{Time: drill.End, ID: drill.ID, OK: true}
			if st.Newest == nil || st.Newest.Revision != 2 || st.Interval != tc.interval || st.LastDrill == nil || *st.LastDrill != want {
				t.Fatalf("state %+v newest %+v drill %+v; want interval %s, drill %+v", st, st.Newest, st.LastDrill, tc.interval, want)
			}
			now := st.Newest.Time.Add(tc.age)
			model := tui.New(tui.Options{Poller: p, Backup: src, Now: func() time.Time { return now }, Context: ctx})
			model.Update(tea.WindowSizeMsg{Width: 160, Height: 40})
			run(model, model.Init())
			b := model.Backup()
			if b == nil || b.Err != nil || b.Stale != tc.stale || b.Age != tc.age || b.Interval != tc.interval ||
				b.LastDrill == nil || *b.LastDrill != want || b.DrillAge != now.Sub(drill.End) {
				t.Fatalf("panel %+v, want stale %v, interval %s, drill %+v", b, tc.stale, tc.interval, want)
			}
			screen := ansi.Strip(model.Render())
			start := strings.Index(screen, "BACKUP  ")
			if start < 0 {
				t.Fatalf("no backup panel:\n%s", screen)
			}
			lines := strings.Split(screen[start:], "\n")[:4]
			for i, l := range lines {
				lines[i] = strings.TrimRight(l, " ")
			}
			got := strings.NewReplacer(src.Name(), "<bucket>", drill.ID, "<id>", humanize.Bytes(uint64(st.Newest.Size)), "<size>",
				"("+strconv.Itoa(st.Kept)+" kept)", "(<kept> kept)").Replace(strings.Join(lines, "\n"))
			got = drillAge.ReplaceAllString(got, "$1 <drill age> ago")
			if got != tc.panel {
				t.Errorf("panel\n%s\nwant\n%s\nscreen:\n%s", got, tc.panel, screen)
			}
		})
	}
}
