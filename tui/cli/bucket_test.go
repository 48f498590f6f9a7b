package cli

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
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
