package poll_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/tui/internal/testcluster"
	"github.com/lifeboat-dev/lifeboat/tui/poll"
)

func newPoller(t *testing.T, endpoints ...string) *poll.Poller {
	t.Helper()
	p, err := poll.New(poll.Config{Endpoints: endpoints, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// One endpoint is enough: the others come from its member list, and are
// asked in the same refresh.
func TestPollDiscoversMembersFromOneSeed(t *testing.T) {
	for _, b := range testcluster.Backends {
		t.Run(b.Name, func(t *testing.T) {
			c := b.Start(t, testcluster.Options{})
			c.MoveLeader(0)
			c.Put(0, "k", "v")
			s := newPoller(t, c.URL(1)).Poll(context.Background())
			if len(s.Members) != 3 {
				t.Fatalf("members: %+v", s.Members)
			}
			for i, m := range s.Members {
				if m.Name != c.Name(i) || !m.Healthy() || m.ID != c.ID(i) {
					t.Errorf("member %d: %+v (want %s, %x, healthy)", i, m, c.Name(i), c.ID(i))
				}
				if m.Status.DbSizeQuota != 2<<30 {
					t.Errorf("%s: quota %d", m.Name, m.Status.DbSizeQuota)
				}
			}
			// The seed is polled at the endpoint given, the others at their
			// advertised URL.
			if s.Members[1].Endpoint != c.URL(1) || s.Members[0].Endpoint != c.URL(0) {
				t.Errorf("endpoints: %s %s", s.Members[0].Endpoint, s.Members[1].Endpoint)
			}
			if s.Leader != c.ID(0) || !s.QuorumOK() || s.ClusterID == 0 || s.Revision < 2 {
				t.Errorf("leader %x (want %x), quorum %v, cluster %x, revision %d", s.Leader, c.ID(0), s.QuorumOK(), s.ClusterID, s.Revision)
			}
			if s.Hash == nil || !s.Hash.Agree() || s.Hash.Revision < 1 {
				t.Errorf("hash: %+v", s.Hash)
			}
		})
	}
}

// A member whose endpoint accepts connections but never answers shows as
// down after the member timeout; the others are reported as usual.
func TestPollHungMemberShowsDown(t *testing.T) {
	c := testcluster.StartLifeboat(t, testcluster.Options{Proxy: 3})
	c.MoveLeader(0)
	p := newPoller(t, c.URL(0))
	s := p.Poll(context.Background())
	if m := s.Members[2]; !m.Healthy() {
		t.Fatalf("m3 through its proxy: %+v", m)
	}
	c.Proxy().Freeze()
	s = p.Poll(context.Background())
	m3 := s.Members[2]
	if m3.Up() || !errors.Is(m3.Err, context.DeadlineExceeded) {
		t.Errorf("hung m3: up %v, err %v", m3.Up(), m3.Err)
	}
	for _, m := range s.Members[:2] {
		if !m.Healthy() {
			t.Errorf("%s: %+v", m.Name, m)
		}
	}
	if up, total := s.Voters(); up != 2 || total != 3 || !s.QuorumOK() {
		t.Errorf("voters %d/%d quorum %v", up, total, s.QuorumOK())
	}
}

// Before any endpoint answers there is one row per seed, saying why.
func TestPollNoEndpointAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := newPoller(t, addr).Poll(context.Background())
	if len(s.Members) != 1 || s.Members[0].Endpoint != addr || s.Members[0].Err == nil || s.Members[0].Up() {
		t.Fatalf("members: %+v", s.Members)
	}
	if s.QuorumOK() {
		t.Error("quorum ok with nothing answering")
	}
}
