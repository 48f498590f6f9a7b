package restore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Defaults of `etcdutl snapshot restore`.
const (
	DefaultName    = "default"
	DefaultPeerURL = "http://localhost:2380"
	// EtcdDefaultToken is etcd's default --initial-cluster-token. A restore
	// with it and the old peer URLs recreates the old cluster ID.
	EtcdDefaultToken = "etcd-cluster"
)

// ErrUsage marks an error in the options given (a bad URL, a name missing
// from the cluster); the CLI exits 2 for it.
var ErrUsage = errors.New("restore: bad usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// MemberSpec is one member of the cluster being created.
type MemberSpec struct {
	Name     string   `json:"name"`
	PeerURLs []string `json:"peerURLs"`
	Learner  bool     `json:"learner,omitempty"`
}

// ParseInitialCluster parses --initial-cluster ("n1=http://a:2380,n2=...",
// a name repeated for several URLs) and marks the names in learners
// (--initial-learners) as learners. Members keep the order of first
// appearance.
func ParseInitialCluster(s string, learners []string) ([]MemberSpec, error) {
	var out []MemberSpec
	at := map[string]int{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" || u == "" {
			return nil, usageErr("--initial-cluster: %q is not name=peer-url", part)
		}
		i, seen := at[name]
		if !seen {
			i = len(out)
			at[name] = i
			out = append(out, MemberSpec{Name: name})
		}
		out[i].PeerURLs = append(out[i].PeerURLs, u)
	}
	if len(out) == 0 {
		return nil, usageErr("--initial-cluster is empty")
	}
	for _, l := range learners {
		i, ok := at[l]
		if !ok {
			return nil, usageErr("--initial-learners: %q is not in --initial-cluster", l)
		}
		out[i].Learner = true
	}
	return out, nil
}

// FormatInitialCluster prints members as --initial-cluster takes them.
func FormatInitialCluster(ms []MemberSpec) string {
	var parts []string
	for _, m := range ms {
		for _, u := range m.PeerURLs {
			parts = append(parts, m.Name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// Cluster is a new cluster's identity: its members with their IDs, derived
// as etcd derives them from the peer URLs and the token.
type Cluster struct {
	Token   string          `json:"token"`
	ID      uint64          `json:"-"`
	Members []schema.Member `json:"members"` // ascending ID
}

// ClusterIDHex is the cluster ID as etcd prints it.
func (c *Cluster) ClusterIDHex() string { return schema.FormatID(c.ID) }

// Member returns the member named name.
func (c *Cluster) Member(name string) (schema.Member, bool) {
	for _, m := range c.Members {
		if m.Name == name {
			return m, true
		}
	}
	return schema.Member{}, false
}

// Voters and Learners return the member IDs of each kind, ascending.
func (c *Cluster) Voters() []uint64   { return c.ids(false) }
func (c *Cluster) Learners() []uint64 { return c.ids(true) }

func (c *Cluster) ids(learners bool) []uint64 {
	var ids []uint64
	for _, m := range c.Members {
		if m.IsLearner == learners {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// NewCluster derives the IDs of specs under token. It checks the URLs
// (absolute, with a host, no path), that no two members share an ID (the
// same peer URLs) or a name, and that there is at least one voter.
func NewCluster(specs []MemberSpec, token string) (*Cluster, error) {
	if token == "" {
		return nil, usageErr("the cluster token is empty")
	}
	c := &Cluster{Token: token}
	names := map[string]bool{}
	for _, s := range specs {
		if s.Name == "" {
			return nil, usageErr("a member has no name")
		}
		if names[s.Name] {
			return nil, usageErr("member %s is listed twice", s.Name)
		}
		names[s.Name] = true
		if len(s.PeerURLs) == 0 {
			return nil, usageErr("member %s has no peer URL", s.Name)
		}
		for _, u := range s.PeerURLs {
			if err := checkURL(u); err != nil {
				return nil, usageErr("member %s: %v", s.Name, err)
			}
		}
		id, err := schema.MemberID(s.PeerURLs, token, nil)
		if err != nil {
			return nil, usageErr("member %s: %v", s.Name, err)
		}
		c.Members = append(c.Members, schema.Member{ID: id, Name: s.Name, PeerURLs: slices.Clone(s.PeerURLs), IsLearner: s.Learner})
	}
	schema.SortMembers(c.Members)
	for i := 1; i < len(c.Members); i++ {
		if c.Members[i].ID == c.Members[i-1].ID {
			return nil, usageErr("members %s and %s have the same peer URLs", c.Members[i-1].Name, c.Members[i].Name)
		}
	}
	if len(c.Voters()) == 0 {
		return nil, usageErr("every member is a learner; a cluster needs a voter")
	}
	ids := make([]uint64, len(c.Members))
	for i, m := range c.Members {
		ids[i] = m.ID
	}
	c.ID = schema.ClusterID(ids)
	return c, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("peer URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix" && u.Scheme != "unixs") || u.Host == "" {
		return fmt.Errorf("peer URL %q: want scheme://host:port", s)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("peer URL %q must not have a path", s)
	}
	return nil
}

// sameURLs compares two URL lists as sets.
func sameURLs(a, b []string) bool {
	norm := func(us []string) []string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = strings.TrimSuffix(u, "/")
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(norm(a), norm(b))
}

// FreshToken derives a cluster token from seed (the SHA-256 of the db being
// restored): every member restored from the same file gets the same token,
// and so the same cluster, without being told one, while the cluster ID
// differs from the old one's, which was made from another token.
func FreshToken(seed []byte) string {
	sum := sha256.Sum256(append([]byte("lifeboat-restore\x00"), seed...))
	return "lifeboat-" + hex.EncodeToString(sum[:8])
}
