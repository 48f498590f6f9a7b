package server

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
)

// cluster is the member's view of the membership: the members, the removed
// IDs and the cluster version. The backend's members buckets are its
// durable copy; every change is written there by the apply loop.
type cluster struct {
	mu      sync.RWMutex
	id      uint64
	members map[uint64]*schema.Member
	removed map[uint64]bool
	version string
}

func newCluster(id uint64, members []schema.Member) *cluster {
	c := &cluster{id: id, members: make(map[uint64]*schema.Member), removed: make(map[uint64]bool)}
	for i := range members {
		m := members[i]
		c.members[m.ID] = &m
	}
	return c
}

// loadCluster reads the membership from the backend.
func loadCluster(tx *bolt.Tx, id uint64) (*cluster, error) {
	ms, err := schema.Members(tx)
	if err != nil {
		return nil, err
	}
	c := newCluster(id, ms)
	removed, err := schema.RemovedMembers(tx)
	if err != nil {
		return nil, err
	}
	for _, r := range removed {
		c.removed[r] = true
	}
	if c.version, err = schema.ClusterVersion(tx); err != nil {
		return nil, err
	}
	return c, nil
}

// replace swaps in the state of o (after a snapshot is applied).
func (c *cluster) replace(o *cluster) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members, c.removed, c.version = o.members, o.removed, o.version
	if o.id != 0 {
		c.id = o.id
	}
}

func (c *cluster) ID() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.id
}

func (c *cluster) Version() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.version
}

// Member returns a copy of member id.
func (c *cluster) Member(id uint64) (schema.Member, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, ok := c.members[id]
	if !ok {
		return schema.Member{}, false
	}
	return cloneMember(*m), true
}

func (c *cluster) IsRemoved(id uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.removed[id]
}

// Members returns copies of the members, sorted by ID.
func (c *cluster) Members() []schema.Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]schema.Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, cloneMember(*m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// RemovedIDs returns the removed member IDs, ascending.
func (c *cluster) RemovedIDs() []uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]uint64, 0, len(c.removed))
	for id := range c.removed {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// VotingMembers counts the members that are not learners.
func (c *cluster) VotingMembers() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, m := range c.members {
		if !m.IsLearner {
			n++
		}
	}
	return n
}

func cloneMember(m schema.Member) schema.Member {
	m.PeerURLs = slices.Clone(m.PeerURLs)
	m.ClientURLs = slices.Clone(m.ClientURLs)
	return m
}

// Errors of membership changes, as etcd's (their gRPC forms are in
// rpctypes).
var (
	errIDRemoved        = errors.New("membership: ID removed")
	errIDNotFound       = errors.New("membership: ID not found")
	errIDExists         = errors.New("membership: ID exists")
	errPeerURLExists    = errors.New("membership: peerURL exists")
	errMemberNotLearner = errors.New("membership: can only promote a learner member")
	errTooManyLearners  = errors.New("membership: too many learner members in cluster")
)

// maxLearners is etcd's default limit of learners in a cluster.
const maxLearners = 1

// validateAdd checks a member about to be added (on the proposer, before
// proposing, and again when the entry applies).
func (c *cluster) validateAdd(m schema.Member) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.removed[m.ID] {
		return errIDRemoved
	}
	if _, ok := c.members[m.ID]; ok {
		return errIDExists
	}
	urls := make(map[string]bool)
	learners := 0
	for _, o := range c.members {
		for _, u := range o.PeerURLs {
			urls[strings.TrimSuffix(u, "/")] = true
		}
		if o.IsLearner {
			learners++
		}
	}
	for _, u := range m.PeerURLs {
		if urls[strings.TrimSuffix(u, "/")] {
			return errPeerURLExists
		}
	}
	if m.IsLearner && learners >= maxLearners {
		return errTooManyLearners
	}
	return nil
}

// validateRemove checks that id can be removed.
func (c *cluster) validateRemove(id uint64) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.removed[id] {
		return errIDRemoved
	}
	if _, ok := c.members[id]; !ok {
		return errIDNotFound
	}
	return nil
}

// validateUpdate checks new peer URLs for member id.
func (c *cluster) validateUpdate(id uint64, peerURLs []string) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.removed[id] {
		return errIDRemoved
	}
	if _, ok := c.members[id]; !ok {
		return errIDNotFound
	}
	for oid, o := range c.members {
		if oid == id {
			continue
		}
		for _, u := range o.PeerURLs {
			if slices.Contains(peerURLs, u) {
				return errPeerURLExists
			}
		}
	}
	return nil
}

// validatePromote checks that id is a learner that can be promoted.
func (c *cluster) validatePromote(id uint64) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.removed[id] {
		return errIDRemoved
	}
	m, ok := c.members[id]
	if !ok {
		return errIDNotFound
	}
	if !m.IsLearner {
		return errMemberNotLearner
	}
	return nil
}

// add records a new member in memory and, if tx is non-nil, in the backend.
func (c *cluster) add(tx *bolt.Tx, m schema.Member) error {
	if tx != nil {
		if err := schema.PutMember(tx, m); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.members[m.ID] = &m
	c.mu.Unlock()
	return nil
}

// remove deletes member id in memory and, if tx is non-nil, in the backend.
func (c *cluster) remove(tx *bolt.Tx, id uint64) error {
	if tx != nil {
		if err := schema.RemoveMember(tx, id); err != nil {
			return err
		}
	}
	c.mu.Lock()
	delete(c.members, id)
	c.removed[id] = true
	c.mu.Unlock()
	return nil
}

// update changes a member with fn in memory and, if tx is non-nil, in the
// backend.
func (c *cluster) update(tx *bolt.Tx, id uint64, fn func(*schema.Member)) error {
	c.mu.Lock()
	m, ok := c.members[id]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", errIDNotFound, schema.FormatID(id))
	}
	nm := cloneMember(*m)
	fn(&nm)
	c.members[id] = &nm
	c.mu.Unlock()
	if tx != nil {
		return schema.PutMember(tx, nm)
	}
	return nil
}

// restore records the members, removed IDs and version of ms in c and, if
// tx is non-nil, in the backend.
func (c *cluster) restore(tx *bolt.Tx, ms *snap.Membership) error {
	for _, m := range ms.Members {
		if err := c.add(tx, m); err != nil {
			return err
		}
	}
	for _, id := range ms.Removed {
		if err := c.remove(tx, id); err != nil {
			return err
		}
	}
	if ms.ClusterVersion != "" {
		return c.setVersion(tx, ms.ClusterVersion)
	}
	return nil
}

// setVersion records the cluster version.
func (c *cluster) setVersion(tx *bolt.Tx, v string) error {
	if tx != nil {
		if err := schema.SetClusterVersion(tx, v); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
	return nil
}

// healthInterval is etcd's HealthInterval: the strict reconfiguration
// checks count a peer as connected once its stream has been up this long.
const healthInterval = 5 * time.Second

// reconfigCheck is what etcd's strict reconfiguration checks
// (--strict-reconfig-check) look at: the members, this member, since when
// each peer's stream has been up (zero: down), and the time. A member has
// started once it has published its name.
type reconfigCheck struct {
	members     []schema.Member
	self        uint64
	activeSince func(id uint64) time.Time
	now         time.Time
}

func (r reconfigCheck) voters() []schema.Member {
	var out []schema.Member
	for _, m := range r.members {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

// connected counts the voters connected for healthInterval, this member
// included (etcd's numConnectedSince).
func (r reconfigCheck) connected(voters []schema.Member) int {
	since := r.now.Add(-healthInterval)
	n := 0
	for _, m := range voters {
		if t := r.activeSince(m.ID); m.ID == r.self || (!t.IsZero() && t.Before(since)) {
			n++
		}
	}
	return n
}

// countStarted counts the voters but skip, and those of them started.
func countStarted(voters []schema.Member, skip uint64) (members, started int) {
	for _, m := range voters {
		if m.ID == skip {
			continue
		}
		members++
		if m.Name != "" {
			started++
		}
	}
	return members, started
}

// mayAdd is etcd's mayAddMember: a voter only if the started voters stay a
// quorum of the larger cluster (the new member counts, not started), or if
// it is the second member of a cluster of one, which is the recipe to
// restore a cluster from one member; and anything only once every voter
// has been connected for healthInterval.
func (r reconfigCheck) mayAdd(learner bool) error {
	voters := r.voters()
	if !learner {
		members, started := countStarted(voters, 0)
		members++
		if !(started == 1 && members == 2) && started < members/2+1 {
			return rpctypes.ErrGRPCMemberNotEnoughStarted
		}
	}
	if r.connected(voters) != len(voters) {
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// mayRemove is etcd's mayRemoveMember: a learner always; a voter only if
// the started voters left are a quorum of those left (so never the last
// one), and, unless it is a peer whose stream is down, only if the voters
// connected for healthInterval stay a quorum without it.
func (r reconfigCheck) mayRemove(id uint64) error {
	for _, m := range r.members {
		if m.ID == id && m.IsLearner {
			return nil
		}
	}
	voters := r.voters()
	if members, started := countStarted(voters, id); started < members/2+1 {
		return rpctypes.ErrGRPCMemberNotEnoughStarted
	}
	if id != r.self && r.activeSince(id).IsZero() {
		return nil
	}
	if r.connected(voters)-1 < 1+(len(voters)-1)/2 {
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// mayPromote is etcd's IsReadyToPromoteMember: the started voters and the
// learner, counted as started, are a quorum of the voters and the learner.
func (r reconfigCheck) mayPromote() error {
	members, started := countStarted(r.voters(), 0)
	if started+1 < (members+1)/2+1 {
		return rpctypes.ErrGRPCMemberNotEnoughStarted
	}
	return nil
}

// pbMember converts a member to its gRPC form.
func pbMember(m schema.Member) *etcdserverpb.Member {
	return &etcdserverpb.Member{
		ID:         m.ID,
		Name:       m.Name,
		PeerURLs:   slices.Clone(m.PeerURLs),
		ClientURLs: slices.Clone(m.ClientURLs),
		IsLearner:  m.IsLearner,
	}
}

// membershipRPCError maps membership errors to etcd's gRPC errors.
func membershipRPCError(err error) error {
	switch {
	case errors.Is(err, errIDRemoved):
		return rpctypes.ErrGRPCMemberNotFound
	case errors.Is(err, errIDNotFound):
		return rpctypes.ErrGRPCMemberNotFound
	case errors.Is(err, errIDExists):
		return rpctypes.ErrGRPCMemberExist
	case errors.Is(err, errPeerURLExists):
		return rpctypes.ErrGRPCPeerURLExist
	case errors.Is(err, errMemberNotLearner):
		return rpctypes.ErrGRPCMemberNotLearner
	case errors.Is(err, errTooManyLearners):
		return rpctypes.ErrGRPCTooManyLearners
	}
	return toGRPCError(err)
}
