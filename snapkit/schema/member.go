package schema

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Member is a cluster member as etcd stores it in the members bucket. Its
// JSON is etcd's, field for field and in the same order:
//
//	{"id":<decimal>,"peerURLs":[…],"isLearner":true,"name":"…","clientURLs":[…]}
//
// isLearner, name and clientURLs are omitted when empty; peerURLs never is.
type Member struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	IsLearner  bool     `json:"isLearner,omitempty"`
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

// removedValue is the value of every members_removed pair.
var removedValue = []byte("removed")

// FormatID prints a member or cluster ID as etcd does: lowercase hex, no
// padding. It is also the key of the members buckets.
func FormatID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseID parses a hex member or cluster ID as FormatID prints it.
func ParseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("schema: member ID %q: %w", s, err)
	}
	return id, nil
}

// MemberID derives a member ID as etcd does: SHA-1 over the sorted peer URLs
// (each normalised by net/url), concatenated, then the cluster token, then,
// for a member added at runtime (now != nil), the Unix seconds in decimal.
// The ID is the first 8 bytes of the digest, big-endian.
func MemberID(peerURLs []string, token string, now *time.Time) (uint64, error) {
	urls := make([]string, 0, len(peerURLs))
	for _, s := range peerURLs {
		u, err := url.Parse(s)
		if err != nil {
			return 0, fmt.Errorf("schema: peer URL %q: %w", s, err)
		}
		urls = append(urls, u.String())
	}
	slices.Sort(urls)
	b := []byte(strings.Join(urls, "") + token)
	if now != nil {
		b = strconv.AppendInt(b, now.Unix(), 10)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8]), nil
}

// ClusterID derives a cluster ID as etcd does: SHA-1 over the sorted member
// IDs, each as 8 bytes big-endian; the first 8 bytes of the digest,
// big-endian.
func ClusterID(memberIDs []uint64) uint64 {
	ids := slices.Clone(memberIDs)
	slices.Sort(ids)
	b := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// Members returns the members bucket sorted by ID. Each key must be the
// hex of the ID in its JSON.
func Members(tx *bolt.Tx) ([]Member, error) {
	b := tx.Bucket(MembersBucket)
	if b == nil {
		return nil, nil
	}
	var out []Member
	err := b.ForEach(func(k, v []byte) error {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return badValue(MembersBucket, k, "member JSON: %v", err)
		}
		if FormatID(m.ID) != string(k) {
			return badValue(MembersBucket, k, "JSON id %s does not match the key", FormatID(m.ID))
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	SortMembers(out)
	return out, nil
}

// SortMembers sorts ms by ascending ID.
func SortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
}

// PutMember writes m's JSON under its hex ID.
func PutMember(tx *bolt.Tx, m Member) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("schema: marshal member %s: %w", FormatID(m.ID), err)
	}
	return put(tx, MembersBucket, []byte(FormatID(m.ID)), v)
}

// RemoveMember deletes member id from members and records it in
// members_removed, as etcd does when a member is removed.
func RemoveMember(tx *bolt.Tx, id uint64) error {
	key := []byte(FormatID(id))
	if err := del(tx, MembersBucket, key); err != nil {
		return err
	}
	return put(tx, MembersRemovedBucket, key, removedValue)
}

// RemovedMembers returns the IDs in members_removed, ascending.
func RemovedMembers(tx *bolt.Tx) ([]uint64, error) {
	b := tx.Bucket(MembersRemovedBucket)
	if b == nil {
		return nil, nil
	}
	var out []uint64
	err := b.ForEach(func(k, _ []byte) error {
		id, err := ParseID(string(k))
		if err != nil {
			return badValue(MembersRemovedBucket, k, "%v", err)
		}
		out = append(out, id)
		return nil
	})
	slices.Sort(out)
	return out, err
}

// ClearMembers deletes every pair of members and members_removed, as
// `etcdutl snapshot restore` does before writing the new membership.
func ClearMembers(tx *bolt.Tx) error {
	for _, name := range [][]byte{MembersBucket, MembersRemovedBucket} {
		b, err := writable(tx, name)
		if err != nil {
			return err
		}
		var keys [][]byte
		if err := b.ForEach(func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("schema: delete %s/%q: %w", name, k, err)
			}
		}
	}
	return nil
}
