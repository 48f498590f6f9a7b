package poll

import (
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Sample is one refresh: what every member said, or why it did not.
type Sample struct {
	// At is when the refresh started, Took how long it ran.
	At   time.Time
	Took time.Duration
	// ClusterID is the cluster ID the members report (0: none answered).
	ClusterID uint64
	// Members holds every member of the member list, sorted by name and
	// then ID. Before any member has answered, it holds one row per seed
	// endpoint instead, with no ID.
	Members []Member
	// Leader is the member most of the answering members name as leader
	// (0: none).
	Leader uint64
	// Revision is the highest store revision a member reports.
	Revision int64
	// Hash compares the members' HashKV at one revision; it is nil until
	// two members have answered, and is kept between comparisons.
	Hash *HashCheck
}

// Member is one member's row.
type Member struct {
	ID         uint64
	Name       string // "" for a learner that has not started
	Endpoint   string // the client URL it is polled at ("" if it has none)
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool // as the member list says; Status says it too when up

	// Status is the member's answer; nil when it is down, and then Err
	// says why.
	Status *pb.StatusResponse
	// RTT is the round-trip time of the Status call.
	RTT time.Duration
	Err error
	// Health is nil when the member serves a linearizable read and no alarm
	// is raised in the cluster: etcdctl's "endpoint health".
	Health error
	// Alarms are the alarms raised for this member (NOSPACE, CORRUPT).
	Alarms []string
	// Errors are the member's Status errors other than alarms, such as
	// "etcdserver: no leader".
	Errors []string
}

// Up reports whether the member answered Status.
func (m *Member) Up() bool { return m.Status != nil }

// Healthy reports whether the member is up and healthy.
func (m *Member) Healthy() bool { return m.Up() && m.Health == nil }

// Voters counts the voting members (not learners), and those of them that
// answered.
func (s *Sample) Voters() (up, total int) {
	for i := range s.Members {
		m := &s.Members[i]
		if m.IsLearner {
			continue
		}
		total++
		if m.Up() {
			up++
		}
	}
	return up, total
}

// QuorumOK reports whether a majority of the voters answered and a leader
// is known.
func (s *Sample) QuorumOK() bool {
	up, total := s.Voters()
	return total > 0 && up >= total/2+1 && s.Leader != 0
}

// Member returns the member with the given ID, or nil.
func (s *Sample) Member(id uint64) *Member {
	for i := range s.Members {
		if s.Members[i].ID == id {
			return &s.Members[i]
		}
	}
	return nil
}

// HashCheck is one comparison of the members' HashKV at a revision every
// answering member has.
type HashCheck struct {
	At       time.Time
	Revision int64
	Hashes   []MemberHash // in the order of Sample.Members
	// Differ lists the members whose hash is not the majority's; with no
	// majority (two members that disagree), all of them.
	Differ []uint64
	// Problem says why no comparison was made (too few answers, compaction
	// in progress); then Differ is empty.
	Problem string
}

// MemberHash is one member's HashKV answer.
type MemberHash struct {
	ID              uint64
	Hash            uint32
	CompactRevision int64
	Err             error
}

// Agree reports whether the hashes were compared and all agree.
func (h *HashCheck) Agree() bool { return h.Problem == "" && len(h.Differ) == 0 }
