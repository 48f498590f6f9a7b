package snap

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// ErrBadMembership means the v2-store JSON does not hold a membership that
// etcd could load. The error names the node path.
var ErrBadMembership = errors.New("snap: bad v2-store membership")

// Membership is the cluster membership kept in the v2 store.
type Membership struct {
	// Members, sorted by ID.
	Members []schema.Member
	// Removed holds the IDs of removed members, ascending.
	Removed []uint64
	// ClusterVersion is /0/version ("3.6.0"), or "" if absent.
	ClusterVersion string
}

// v2 store paths.
const (
	storePrefix        = "/0"
	keysPrefix         = "/1"
	membersDir         = "members"
	removedMembersDir  = "removed_members"
	versionKey         = "version"
	raftAttributesKey  = "raftAttributes"
	attributesKey      = "attributes"
	eventQueueCapacity = 1000 // etcd's v2 watcher hub history size
)

// node is a node of the v2 store as etcd serialises it.
type node struct {
	Path          string
	CreatedIndex  uint64
	ModifiedIndex uint64
	ExpireTime    time.Time
	Value         string
	Children      map[string]*node // nil for a value, non-nil for a directory
}

// store is the serialised v2 store; unknown members are ignored on decode.
type store struct {
	Root           *node
	WatcherHub     *watcherHub `json:",omitempty"`
	CurrentIndex   uint64
	Stats          *storeStats `json:",omitempty"`
	CurrentVersion int
}

// watcherHub, eventHistory and eventQueue are only ever written empty: etcd
// replaces its own with what it reads, so the queue must have its capacity
// of slots.
type watcherHub struct {
	EventHistory eventHistory
}

type eventHistory struct {
	Queue      eventQueue
	StartIndex uint64
	LastIndex  uint64
}

type eventQueue struct {
	Events   []*struct{}
	Size     int
	Front    int
	Back     int
	Capacity int
}

type storeStats struct {
	GetSuccess              uint64 `json:"getsSuccess"`
	GetFail                 uint64 `json:"getsFail"`
	SetSuccess              uint64 `json:"setsSuccess"`
	SetFail                 uint64 `json:"setsFail"`
	DeleteSuccess           uint64 `json:"deleteSuccess"`
	DeleteFail              uint64 `json:"deleteFail"`
	UpdateSuccess           uint64 `json:"updateSuccess"`
	UpdateFail              uint64 `json:"updateFail"`
	CreateSuccess           uint64 `json:"createSuccess"`
	CreateFail              uint64 `json:"createFail"`
	CompareAndSwapSuccess   uint64 `json:"compareAndSwapSuccess"`
	CompareAndSwapFail      uint64 `json:"compareAndSwapFail"`
	CompareAndDeleteSuccess uint64 `json:"compareAndDeleteSuccess"`
	CompareAndDeleteFail    uint64 `json:"compareAndDeleteFail"`
	ExpireCount             uint64 `json:"expireCount"`
	Watchers                uint64 `json:"watchers"`
}

// raftAttributes and attributes are the two halves of a member in the v2 store.
type raftAttributes struct {
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner,omitempty"`
}

type attributes struct {
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

func badNode(p, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadMembership, p, fmt.Sprintf(format, args...))
}

// DecodeMembership reads the membership from the v2-store JSON of a
// raftpb.Snapshot: the whole store of etcd 3.5 or the membership-only store
// of 3.6. A store without /0/members has no members.
func DecodeMembership(data []byte) (*Membership, error) {
	var st store
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMembership, err)
	}
	m := new(Membership)
	if st.Root == nil {
		return nil, badNode("/", "no Root")
	}
	cluster := st.Root.Children[path.Base(storePrefix)]
	if cluster == nil {
		return m, nil
	}
	if v := cluster.Children[versionKey]; v != nil {
		m.ClusterVersion = v.Value
	}
	if dir := cluster.Children[membersDir]; dir != nil {
		for name, n := range dir.Children {
			mem, err := decodeMember(path.Join(storePrefix, membersDir, name), name, n)
			if err != nil {
				return nil, err
			}
			m.Members = append(m.Members, mem)
		}
	}
	if dir := cluster.Children[removedMembersDir]; dir != nil {
		for name := range dir.Children {
			id, err := schema.ParseID(name)
			if err != nil {
				return nil, badNode(path.Join(storePrefix, removedMembersDir, name), "%v", err)
			}
			m.Removed = append(m.Removed, id)
		}
	}
	schema.SortMembers(m.Members)
	slices.Sort(m.Removed)
	return m, nil
}

func decodeMember(p, name string, n *node) (schema.Member, error) {
	id, err := schema.ParseID(name)
	if err != nil {
		return schema.Member{}, badNode(p, "%v", err)
	}
	if n == nil || n.Children == nil {
		return schema.Member{}, badNode(p, "not a directory")
	}
	ra := n.Children[raftAttributesKey]
	if ra == nil {
		return schema.Member{}, badNode(p, "no raftAttributes")
	}
	var r raftAttributes
	if err := json.Unmarshal([]byte(ra.Value), &r); err != nil {
		return schema.Member{}, badNode(p+"/"+raftAttributesKey, "%v", err)
	}
	var a attributes
	if at := n.Children[attributesKey]; at != nil {
		if err := json.Unmarshal([]byte(at.Value), &a); err != nil {
			return schema.Member{}, badNode(p+"/"+attributesKey, "%v", err)
		}
	}
	return schema.Member{ID: id, Name: a.Name, PeerURLs: r.PeerURLs, ClientURLs: a.ClientURLs, IsLearner: r.IsLearner}, nil
}

// storeBuilder assigns v2 indexes the way etcd's store does: each write
// takes the next index.
type storeBuilder struct{ index uint64 }

func (b *storeBuilder) dir(p string, created uint64) *node {
	return &node{Path: p, CreatedIndex: created, ModifiedIndex: created, Children: map[string]*node{}}
}

func (b *storeBuilder) value(parent *node, name, value string) {
	b.index++
	p := path.Join(parent.Path, name)
	parent.Children[name] = &node{Path: p, CreatedIndex: b.index, ModifiedIndex: b.index, Value: value}
}

// EncodeMembership writes a v2 store that holds m only, shaped as etcd 3.6
// writes it: /0 with members, removed_members and version, and an empty /1.
// Members are written in ID order, each as raftAttributes then, if it has a
// name or client URLs, attributes.
func EncodeMembership(m Membership) ([]byte, error) {
	var b storeBuilder
	root := b.dir("/", 0)
	cluster := b.dir(storePrefix, 0)
	root.Children[path.Base(storePrefix)] = cluster
	root.Children[path.Base(keysPrefix)] = b.dir(keysPrefix, 0)

	members := slices.Clone(m.Members)
	schema.SortMembers(members)
	if len(members) > 0 {
		dir := b.dir(path.Join(storePrefix, membersDir), b.index+1)
		cluster.Children[membersDir] = dir
		for _, mem := range members {
			ra, err := json.Marshal(raftAttributes{PeerURLs: mem.PeerURLs, IsLearner: mem.IsLearner})
			if err != nil {
				return nil, fmt.Errorf("snap: member %s: %w", schema.FormatID(mem.ID), err)
			}
			md := b.dir(path.Join(dir.Path, schema.FormatID(mem.ID)), b.index+1)
			dir.Children[schema.FormatID(mem.ID)] = md
			b.value(md, raftAttributesKey, string(ra))
			if mem.Name != "" || len(mem.ClientURLs) > 0 {
				at, err := json.Marshal(attributes{Name: mem.Name, ClientURLs: mem.ClientURLs})
				if err != nil {
					return nil, fmt.Errorf("snap: member %s: %w", schema.FormatID(mem.ID), err)
				}
				b.value(md, attributesKey, string(at))
			}
		}
	}
	if len(m.Removed) > 0 {
		dir := b.dir(path.Join(storePrefix, removedMembersDir), b.index+1)
		cluster.Children[removedMembersDir] = dir
		for _, id := range slices.Sorted(slices.Values(m.Removed)) {
			b.value(dir, schema.FormatID(id), "")
		}
	}
	if m.ClusterVersion != "" {
		b.value(cluster, versionKey, m.ClusterVersion)
	}
	st := store{
		Root:           root,
		WatcherHub:     &watcherHub{EventHistory: eventHistory{Queue: eventQueue{Events: make([]*struct{}, eventQueueCapacity), Capacity: eventQueueCapacity}}},
		CurrentIndex:   b.index,
		Stats:          &storeStats{},
		CurrentVersion: 2,
	}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("snap: marshal v2 store: %w", err)
	}
	return data, nil
}
