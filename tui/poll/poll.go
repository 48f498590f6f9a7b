package poll

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Defaults of Config.
const (
	DefaultTimeout      = 2 * time.Second
	DefaultHashInterval = 30 * time.Second
)

// Config configures a Poller.
type Config struct {
	// Endpoints are the seeds: one that answers is enough, the others are
	// found in its member list.
	Endpoints []string
	// Client is the template of every member's client: TLS, Username,
	// Password, DialTimeout. Its Endpoints and Logger are not used.
	Client clientv3.Config
	// Timeout bounds what one member may take in one refresh; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// HashInterval is how often the members' HashKV is compared (and
	// whenever the set of answering members changes); 0 means
	// DefaultHashInterval, a negative value never. HashKV reads the whole
	// store, so it is not asked on every refresh.
	HashInterval time.Duration
	Logger       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Poller polls one cluster. Poll must not be called concurrently.
type Poller struct {
	cfg Config
	lg  *slog.Logger

	mu    sync.Mutex
	conns map[string]*conn // by endpoint

	known  []*pb.Member      // the last member list
	seedOf map[uint64]string // member ID -> the seed endpoint that answered as it
	hash   *HashCheck        // the last comparison
	hashOf string            // the answering members it was made with
}

// polled is one member's answer to one refresh.
type polled struct {
	endpoint string
	id       uint64 // the member it was asked as (0: a seed)
	status   *pb.StatusResponse
	rtt      time.Duration
	err      error
	members  []*pb.Member
	health   error
}

// conn is one endpoint's client, made on first use.
type conn struct {
	mu  sync.Mutex
	cli *clientv3.Client
}

// New returns a poller; it connects nowhere until Poll.
func New(cfg Config) (*Poller, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("poll: no endpoints")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HashInterval == 0 {
		cfg.HashInterval = DefaultHashInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Poller{cfg: cfg, lg: lg, conns: make(map[string]*conn), seedOf: make(map[uint64]string)}, nil
}

// Close closes every client.
func (p *Poller) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for ep, c := range p.conns {
		errs = append(errs, c.close())
		delete(p.conns, ep)
	}
	return errors.Join(errs...)
}

// Poll asks every member once, concurrently, each within Config.Timeout,
// and returns what they said. Members found in the member list for the
// first time are asked in the same refresh.
func (p *Poller) Poll(ctx context.Context) Sample {
	start := p.cfg.Now()
	res := p.pollAll(ctx, p.targets())
	p.learnMembers(res)
	if more := p.unasked(res); len(more) > 0 {
		res = append(res, p.pollAll(ctx, more)...)
	}
	s := p.assemble(start, res)
	s.Hash = p.compareHashes(ctx, &s)
	p.closeUnused()
	s.Took = p.cfg.Now().Sub(start)
	return s
}

// target is an endpoint to ask, as a member (id) or as a seed (id 0).
type target struct {
	endpoint string
	id       uint64
}

// targets are the known members' endpoints, or the seeds while no member
// list is known.
func (p *Poller) targets() []target {
	if len(p.known) == 0 {
		var ts []target
		for _, ep := range p.cfg.Endpoints {
			ts = append(ts, target{endpoint: ep})
		}
		return ts
	}
	var ts []target
	for _, m := range p.known {
		if ep := p.endpointOf(m); ep != "" {
			ts = append(ts, target{endpoint: ep, id: m.ID})
		}
	}
	return ts
}

// endpointOf is where member m is asked: the seed that answered as it, so
// that an endpoint the operator gave is used as given, else its first
// advertised client URL.
func (p *Poller) endpointOf(m *pb.Member) string {
	if ep, ok := p.seedOf[m.ID]; ok {
		return ep
	}
	if len(m.ClientURLs) > 0 {
		return m.ClientURLs[0]
	}
	return ""
}

func (p *Poller) pollAll(ctx context.Context, ts []target) []polled {
	out := make([]polled, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Go(func() { out[i] = p.pollOne(ctx, t) })
	}
	wg.Wait()
	return out
}

// Health errors that say what the Sample says elsewhere too.
var (
	// ErrNoLeader: the member has no leader, so it was not asked to read.
	ErrNoLeader = errors.New("poll: no leader")
	// ErrAlarm: an alarm is raised in the cluster (etcdctl's endpoint
	// health reports every member unhealthy then).
	ErrAlarm = errors.New("poll: active alarm(s)")
)

// pollOne asks one endpoint for its Status, its member list (serializable,
// so that it answers without a quorum) and, when it has a leader, for a
// linearizable read of the key "health" as etcdctl's endpoint health does.
func (p *Poller) pollOne(ctx context.Context, t target) polled {
	r := polled{endpoint: t.endpoint, id: t.id}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	cli, err := p.conn(t.endpoint).client(p.clientConfig(t.endpoint))
	if err != nil {
		r.err = err
		return r
	}
	began := time.Now()
	st, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Status(ctx, &pb.StatusRequest{})
	r.rtt = time.Since(began)
	if err != nil {
		r.err = clientv3.ContextError(ctx, rpctypes.Error(err))
		return r
	}
	r.status = st
	if ml, err := cli.MemberList(ctx, clientv3.WithSerializable()); err == nil {
		r.members = ml.Members
	} else {
		p.lg.Debug("member list", "endpoint", t.endpoint, "error", err)
	}
	if st.Leader == 0 {
		r.health = ErrNoLeader
		return r
	}
	// A permission error still went through consensus: healthy.
	if _, err := cli.Get(ctx, "health"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		r.health = err
	}
	return r
}

func (p *Poller) clientConfig(endpoint string) clientv3.Config {
	cfg := p.cfg.Client
	cfg.Endpoints = []string{endpoint}
	cfg.Logger = zap.NewNop()
	cfg.LogConfig = nil
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = p.cfg.Timeout
	}
	// Come back quickly once a member that was down answers again; grpc's
	// default backoff grows to two minutes.
	cfg.DialOptions = append(slices.Clip(cfg.DialOptions), grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: max(p.cfg.Timeout, time.Second)},
		MinConnectTimeout: p.cfg.Timeout,
	}))
	return cfg
}

func (p *Poller) conn(endpoint string) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.conns[endpoint]
	if !ok {
		c = &conn{}
		p.conns[endpoint] = c
	}
	return c
}

// client makes the client on first use; with a user it authenticates, so
// it is made in the member's own goroutine, and a failure is tried again
// on the next refresh.
func (c *conn) client(cfg clientv3.Config) (*clientv3.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cli == nil {
		cli, err := clientv3.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", cfg.Endpoints[0], err)
		}
		c.cli = cli
	}
	return c.cli, nil
}

func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cli == nil {
		return nil
	}
	err := c.cli.Close()
	c.cli = nil
	return err
}

// learnMembers takes the member list of the most up-to-date member that
// answered (highest term, then applied index), and remembers which seed
// answered as which member.
func (p *Poller) learnMembers(res []polled) {
	var best *polled
	for i := range res {
		r := &res[i]
		if r.status == nil {
			continue
		}
		if r.id == 0 {
			p.seedOf[r.status.Header.GetMemberId()] = r.endpoint
		}
		if r.members == nil {
			continue
		}
		if best == nil || r.status.RaftTerm > best.status.RaftTerm ||
			(r.status.RaftTerm == best.status.RaftTerm && r.status.RaftAppliedIndex > best.status.RaftAppliedIndex) {
			best = r
		}
	}
	if best == nil {
		return
	}
	p.known = best.members
	for id := range p.seedOf {
		if !slices.ContainsFunc(p.known, func(m *pb.Member) bool { return m.ID == id }) {
			delete(p.seedOf, id)
		}
	}
}

// unasked are the known members that no answer in res came from.
func (p *Poller) unasked(res []polled) []target {
	var ts []target
	for _, m := range p.known {
		if slices.ContainsFunc(res, func(r polled) bool { return r.answeredAs(m.ID) || r.id == m.ID }) {
			continue
		}
		if ep := p.endpointOf(m); ep != "" {
			ts = append(ts, target{endpoint: ep, id: m.ID})
		}
	}
	return ts
}

func (r *polled) answeredAs(id uint64) bool {
	return r.status != nil && r.status.Header.GetMemberId() == id
}

// alarmText is how a Status error names an alarm: the text form of
// etcdserverpb.AlarmMember, as etcd and lifeboat both write it.
var alarmText = regexp.MustCompile(`^memberID:(\d+) alarm:([A-Z]+) ?$`)

// assemble builds the sample from the answers.
func (p *Poller) assemble(start time.Time, res []polled) Sample {
	s := Sample{At: start}
	if len(p.known) == 0 {
		// Nothing answered yet: one row per seed.
		for _, r := range res {
			s.Members = append(s.Members, Member{Endpoint: r.endpoint, Err: r.err})
		}
		return s
	}
	alarms := make(map[uint64][]string)
	votes := make(map[uint64]int)
	for _, m := range p.known {
		row := Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner, Endpoint: p.endpointOf(m)}
		i := slices.IndexFunc(res, func(r polled) bool { return r.answeredAs(m.ID) })
		switch {
		case row.Endpoint == "":
			row.Err = errors.New("not started (no client URL)")
		case i < 0:
			row.Err = answerError(res, m.ID)
		default:
			r := res[i]
			row.Status, row.RTT, row.Health = r.status, r.rtt, r.health
			s.ClusterID = r.status.Header.GetClusterId()
			s.Revision = max(s.Revision, r.status.Header.GetRevision())
			if r.status.Leader != 0 {
				votes[r.status.Leader]++
			}
			for _, e := range r.status.Errors {
				if g := alarmText.FindStringSubmatch(e); g != nil {
					if id, err := strconv.ParseUint(g[1], 10, 64); err == nil {
						if !slices.Contains(alarms[id], g[2]) {
							alarms[id] = append(alarms[id], g[2])
						}
						continue
					}
				}
				row.Errors = append(row.Errors, e)
			}
		}
		s.Members = append(s.Members, row)
	}
	var names []string
	for id, as := range alarms {
		slices.Sort(as)
		if m := s.Member(id); m != nil {
			m.Alarms = as
		}
		names = append(names, as...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	for i := range s.Members {
		m := &s.Members[i]
		if m.Up() && m.Health == nil && len(names) > 0 {
			m.Health = fmt.Errorf("%w: %s", ErrAlarm, strings.Join(names, " "))
		}
	}
	for id, n := range votes {
		if n > votes[s.Leader] || (n == votes[s.Leader] && id < s.Leader) {
			s.Leader = id
		}
	}
	slices.SortStableFunc(s.Members, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return s
}

// answerError says why member id has no answer: the error of the poll made
// for it, or that its endpoint answered as another member.
func answerError(res []polled, id uint64) error {
	for _, r := range res {
		if r.id != id {
			continue
		}
		if r.err != nil {
			return r.err
		}
		return fmt.Errorf("%s answers as member %016x", r.endpoint, r.status.Header.GetMemberId())
	}
	return errors.New("not asked")
}

// closeUnused closes the clients of endpoints that are no longer polled.
func (p *Poller) closeUnused() {
	keep := make(map[string]bool)
	for _, t := range p.targets() {
		keep[t.endpoint] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for ep, c := range p.conns {
		if !keep[ep] {
			if err := c.close(); err != nil {
				p.lg.Debug("close client", "endpoint", ep, "error", err)
			}
			delete(p.conns, ep)
		}
	}
}
