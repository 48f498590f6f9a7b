package tui

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/lifeboat-dev/lifeboat/tui/common"
	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

// Poller takes one sample of the cluster; *poll.Poller is one.
type Poller interface {
	Poll(ctx context.Context) poll.Sample
}

// Defaults of Options.
const (
	DefaultRefresh       = 2 * time.Second
	DefaultBackupRefresh = time.Minute
	DefaultHistory       = 60
)

// Options configure a Model.
type Options struct {
	Poller Poller       // required
	Backup BackupSource // nil: no backup panel
	// Refresh is the time between the starts of two polls; 0 means
	// DefaultRefresh.
	Refresh time.Duration
	// BackupRefresh is the time between two reads of the bucket; 0 means
	// DefaultBackupRefresh. Listing a bucket costs more than a Status.
	BackupRefresh time.Duration
	// History is how many refreshes the detail page's sparklines keep; 0
	// means DefaultHistory.
	History int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Context bounds the polls; nil means context.Background().
	Context context.Context
}

type page int

const (
	pageMembers page = iota
	pageDetail
)

// Model is lbtop's bubbletea model.
type Model struct {
	c             *common.Common
	ctx           context.Context
	poller        Poller
	backup        BackupSource
	refresh       time.Duration
	backupRefresh time.Duration
	historyLen    int

	cur, prev     *poll.Sample
	refreshes     int
	history       map[string]*history // by row key
	leaderChanges int
	lastLeader    uint64
	rate          float64 // revisions per second
	rateKnown     bool

	polling bool // a poll is running
	again   bool // "refresh now" came while one was running
	tickSeq int  // only the newest scheduled tick polls

	backupState    *BackupState
	backupErr      error
	backupFetching bool
	backupSeq      int // only the newest scheduled read of the bucket reads

	selected  string // the selected row's key
	page      page
	showHelp  bool
	filtering bool
	filter    textinput.Model
	help      help.Model
}

// history is one member's last refreshes, for the sparklines; NaN where
// the member did not answer.
type history struct {
	raftIndex, dbSize, rttMs []float64
}

func (h *history) add(keep int, m *poll.Member) {
	idx, size, rtt := math.NaN(), math.NaN(), math.NaN()
	if m.Up() {
		idx, size = float64(m.Status.RaftIndex), float64(m.Status.DbSize)
		rtt = float64(m.RTT) / float64(time.Millisecond)
	}
	push := func(s []float64, v float64) []float64 {
		s = append(s, v)
		if len(s) > keep {
			s = s[len(s)-keep:]
		}
		return s
	}
	h.raftIndex, h.dbSize, h.rttMs = push(h.raftIndex, idx), push(h.dbSize, size), push(h.rttMs, rtt)
}

// New returns a model; Init starts the first poll.
func New(o Options) *Model {
	m := &Model{
		c:             common.New(o.Now),
		ctx:           o.Context,
		poller:        o.Poller,
		backup:        o.Backup,
		refresh:       o.Refresh,
		backupRefresh: o.BackupRefresh,
		historyLen:    o.History,
		history:       make(map[string]*history),
		help:          help.New(),
	}
	if m.ctx == nil {
		m.ctx = context.Background()
	}
	if m.refresh <= 0 {
		m.refresh = DefaultRefresh
	}
	if m.backupRefresh <= 0 {
		m.backupRefresh = DefaultBackupRefresh
	}
	if m.historyLen <= 0 {
		m.historyLen = DefaultHistory
	}
	m.filter = textinput.New()
	m.filter.Prompt = "/"
	m.filter.Placeholder = "name, ID or endpoint"
	return m
}

// Messages.
type (
	sampleMsg struct{ s poll.Sample }
	tickMsg   struct{ seq int }
	backupMsg struct {
		st  BackupState
		err error
	}
	backupTickMsg struct{ seq int }
)

// Init starts the first poll and the first read of the bucket.
func (m *Model) Init() tea.Cmd { return tea.Batch(m.poll(), m.fetchBackup()) }

func (m *Model) poll() tea.Cmd {
	if m.polling {
		m.again = true
		return nil
	}
	m.polling = true
	m.tickSeq++
	p, ctx := m.poller, m.ctx
	return func() tea.Msg { return sampleMsg{p.Poll(ctx)} }
}

func (m *Model) fetchBackup() tea.Cmd {
	if m.backup == nil || m.backupFetching {
		return nil
	}
	m.backupFetching = true
	m.backupSeq++
	b, ctx := m.backup, m.ctx
	return func() tea.Msg {
		st, err := b.BackupState(ctx)
		return backupMsg{st, err}
	}
}

// Update handles a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.c.Width, m.c.Height = msg.Width, msg.Height
		m.help.SetWidth(msg.Width)
		return m, nil
	case sampleMsg:
		return m, m.take(msg.s)
	case tickMsg:
		if msg.seq != m.tickSeq {
			return m, nil
		}
		return m, m.poll()
	case backupMsg:
		m.backupFetching = false
		m.backupState, m.backupErr = &msg.st, msg.err
		if msg.err != nil {
			m.backupState = nil
		}
		seq := m.backupSeq
		return m, tea.Tick(m.backupRefresh, func(time.Time) tea.Msg { return backupTickMsg{seq} })
	case backupTickMsg:
		if msg.seq != m.backupSeq {
			return m, nil
		}
		return m, m.fetchBackup()
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	if m.filtering {
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		return m, cmd
	}
	return m, nil
}

// take records a sample and schedules the next poll, Refresh after this
// one started.
func (m *Model) take(s poll.Sample) tea.Cmd {
	m.polling = false
	m.prev, m.cur = m.cur, &s
	m.refreshes++
	for i := range s.Members {
		mem := &s.Members[i]
		k := rowKey(mem)
		h := m.history[k]
		if h == nil {
			h = &history{}
			m.history[k] = h
		}
		h.add(m.historyLen, mem)
	}
	if s.Leader != 0 {
		if m.lastLeader != 0 && s.Leader != m.lastLeader {
			m.leaderChanges++
		}
		m.lastLeader = s.Leader
	}
	m.rateKnown = false
	if m.prev != nil && m.prev.Revision > 0 && s.Revision > 0 {
		if dt := s.At.Sub(m.prev.At).Seconds(); dt > 0 {
			m.rate, m.rateKnown = float64(s.Revision-m.prev.Revision)/dt, true
		}
	}
	m.keepSelection()
	if m.again {
		m.again = false
		return m.poll()
	}
	seq := m.tickSeq
	wait := max(0, m.refresh-s.Took)
	return tea.Tick(wait, func(time.Time) tea.Msg { return tickMsg{seq} })
}

func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	km := m.c.KeyMap
	if m.filtering {
		switch msg.String() {
		case "enter":
			m.filtering = false
			m.filter.Blur()
			return nil
		case "esc":
			m.filtering = false
			m.filter.Blur()
			m.filter.SetValue("")
			m.keepSelection()
			return nil
		case "ctrl+c":
			return tea.Quit
		}
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		m.keepSelection()
		return cmd
	}
	switch {
	case key.Matches(msg, km.Quit):
		return tea.Quit
	case key.Matches(msg, km.Help):
		m.showHelp = !m.showHelp
	case key.Matches(msg, km.Back):
		switch {
		case m.showHelp:
			m.showHelp = false
		case m.page == pageDetail:
			m.page = pageMembers
		case m.filter.Value() != "":
			m.filter.SetValue("")
			m.keepSelection()
		}
	case key.Matches(msg, km.Refresh):
		return tea.Batch(m.poll(), m.fetchBackup())
	case key.Matches(msg, km.Filter):
		m.filtering, m.showHelp, m.page = true, false, pageMembers
		return m.filter.Focus()
	case key.Matches(msg, km.Detail):
		if m.selectedMember() != nil {
			m.page, m.showHelp = pageDetail, false
		}
	case key.Matches(msg, km.Up):
		m.move(-1)
	case key.Matches(msg, km.Down):
		m.move(+1)
	}
	return nil
}

// visible are the current sample's members that pass the filter.
func (m *Model) visible() []*poll.Member {
	if m.cur == nil {
		return nil
	}
	f := strings.ToLower(strings.TrimSpace(m.filter.Value()))
	var out []*poll.Member
	for i := range m.cur.Members {
		mem := &m.cur.Members[i]
		if f == "" || strings.Contains(strings.ToLower(mem.Name+" "+idText(mem.ID)+" "+mem.Endpoint), f) {
			out = append(out, mem)
		}
	}
	return out
}

// keepSelection keeps the selected member selected if it is still shown,
// else selects the first row; with no row shown it changes nothing, so
// that the selection comes back with the rows.
func (m *Model) keepSelection() {
	vis := m.visible()
	for _, mem := range vis {
		if rowKey(mem) == m.selected {
			return
		}
	}
	if len(vis) > 0 {
		m.selected = rowKey(vis[0])
	}
}

func (m *Model) move(d int) {
	vis := m.visible()
	for i, mem := range vis {
		if rowKey(mem) == m.selected {
			m.selected = rowKey(vis[max(0, min(len(vis)-1, i+d))])
			return
		}
	}
}

func (m *Model) selectedMember() *poll.Member {
	for _, mem := range m.visible() {
		if rowKey(mem) == m.selected {
			return mem
		}
	}
	return nil
}

// rowKey identifies a row across refreshes: the member ID, or for a seed
// that never answered, its endpoint.
func rowKey(mem *poll.Member) string {
	if mem.ID != 0 {
		return idText(mem.ID)
	}
	return mem.Endpoint
}

func idText(id uint64) string {
	if id == 0 {
		return "-"
	}
	return fmt.Sprintf("%016x", id)
}
