package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Format is the manifest format this package writes.
const Format = 1

// Names of the objects in a backup's directory and beside the clusters.
const (
	ManifestName  = "manifest.json"
	SnapshotName  = "snapshot.db"
	LockName      = "backupd.lock"
	StateName     = "backupd.state.json"
	DaemonName    = "backupd.daemon.json"
	incomingMark  = ".incoming"
	timeLayout    = "20060102T150405.000Z"
	revisionMark  = "-r"
	clusterDigits = 16
)

// ErrBadName means a key or ID is not one backupd writes.
var ErrBadName = errors.New("manifest: not a backup name")

// ErrBadManifest means a manifest.json does not parse or lacks a field.
var ErrBadManifest = errors.New("manifest: bad manifest")

// ID names one backup: its cluster, its start time and its revision.
type ID struct {
	Cluster  uint64
	Time     time.Time // UTC, millisecond precision
	Revision int64
}

// NewID makes the ID of a backup of cluster taken at t (rounded down to the
// millisecond, in UTC) at revision rev.
func NewID(cluster uint64, t time.Time, rev int64) ID {
	return ID{Cluster: cluster, Time: t.UTC().Truncate(time.Millisecond), Revision: rev}
}

// String is the backup's directory below the prefix: "<cluster>/<time>-r<rev>".
func (id ID) String() string {
	return fmt.Sprintf("%016x/%s%s%d", id.Cluster, id.Time.Format(timeLayout), revisionMark, id.Revision)
}

// Name is the last element of String: "<time>-r<rev>".
func (id ID) Name() string {
	return id.Time.Format(timeLayout) + revisionMark + strconv.FormatInt(id.Revision, 10)
}

// Compare orders IDs by cluster, then time, then revision; -1, 0 or 1.
func (id ID) Compare(o ID) int {
	switch {
	case id.Cluster != o.Cluster:
		if id.Cluster < o.Cluster {
			return -1
		}
		return 1
	case !id.Time.Equal(o.Time):
		return id.Time.Compare(o.Time)
	case id.Revision != o.Revision:
		if id.Revision < o.Revision {
			return -1
		}
		return 1
	}
	return 0
}

// Dir is the backup's directory under prefix (no trailing slash).
func (id ID) Dir(prefix string) string { return join(prefix, id.String()) }

// Key is the key of the named object in the backup's directory.
func (id ID) Key(prefix, name string) string { return id.Dir(prefix) + "/" + name }

// StagingKey is where the object of a backup of cluster started at t is
// uploaded while its revision is not yet known.
func StagingKey(prefix string, cluster uint64, t time.Time, name string) string {
	return join(prefix, fmt.Sprintf("%016x/%s%s/%s", cluster, t.UTC().Truncate(time.Millisecond).Format(timeLayout), incomingMark, name))
}

// ClusterDir is the directory of every backup of cluster under prefix.
func ClusterDir(prefix string, cluster uint64) string {
	return join(prefix, fmt.Sprintf("%016x", cluster))
}

// PrefixKey is the key of name directly under prefix (the lock, the state).
func PrefixKey(prefix, name string) string { return join(prefix, name) }

func join(prefix, rest string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return rest
	}
	return prefix + "/" + rest
}

// ParseID parses "<cluster>/<time>-r<rev>", as String prints it.
func ParseID(s string) (ID, error) {
	cluster, name, ok := strings.Cut(s, "/")
	if !ok {
		return ID{}, fmt.Errorf("%w: %q: want <cluster>/<time>-r<revision>", ErrBadName, s)
	}
	c, err := parseCluster(cluster)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %q: %v", ErrBadName, s, err)
	}
	t, rev, err := ParseName(name)
	if err != nil {
		return ID{}, err
	}
	return ID{Cluster: c, Time: t, Revision: rev}, nil
}

// ParseName parses "<time>-r<rev>", a backup directory's last element.
func ParseName(name string) (time.Time, int64, error) {
	ts, revs, ok := strings.Cut(name, revisionMark)
	if !ok {
		return time.Time{}, 0, fmt.Errorf("%w: %q: no %q", ErrBadName, name, revisionMark)
	}
	t, err := time.Parse(timeLayout, ts)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("%w: %q: %v", ErrBadName, name, err)
	}
	rev, err := strconv.ParseInt(revs, 10, 64)
	if err != nil || rev < 1 || strconv.FormatInt(rev, 10) != revs {
		return time.Time{}, 0, fmt.Errorf("%w: %q: bad revision", ErrBadName, name)
	}
	return t, rev, nil
}

func parseCluster(s string) (uint64, error) {
	if len(s) != clusterDigits {
		return 0, fmt.Errorf("cluster ID %q is not %d hex digits", s, clusterDigits)
	}
	return strconv.ParseUint(s, 16, 64)
}

// KeyKind says what ParseKey found.
type KeyKind int

// The kinds of key under a prefix.
const (
	KindOther    KeyKind = iota // not written by backupd (or the lock and state)
	KindBackup                  // an object in a backup's directory
	KindIncoming                // a staging object
)

// ParsedKey is a key under a prefix, read from its name alone.
type ParsedKey struct {
	Kind    KeyKind
	ID      ID     // KindBackup; for KindIncoming, Cluster and Time only
	Object  string // the last element: manifest.json, snapshot.db.zst, ...
	Cluster uint64
}

// ParseKey reads a key listed under prefix.
func ParseKey(prefix, key string) ParsedKey {
	rest := key
	if p := strings.Trim(prefix, "/"); p != "" {
		var ok bool
		if rest, ok = strings.CutPrefix(key, p+"/"); !ok {
			return ParsedKey{}
		}
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return ParsedKey{}
	}
	c, err := parseCluster(parts[0])
	if err != nil {
		return ParsedKey{}
	}
	if ts, ok := strings.CutSuffix(parts[1], incomingMark); ok {
		t, err := time.Parse(timeLayout, ts)
		if err != nil {
			return ParsedKey{}
		}
		return ParsedKey{Kind: KindIncoming, ID: ID{Cluster: c, Time: t}, Object: parts[2], Cluster: c}
	}
	t, rev, err := ParseName(parts[1])
	if err != nil {
		return ParsedKey{}
	}
	return ParsedKey{Kind: KindBackup, ID: ID{Cluster: c, Time: t, Revision: rev}, Object: parts[2], Cluster: c}
}

// ObjectName is the stored snapshot's name for a codec and encryption:
// snapshot.db, snapshot.db.zst, snapshot.db.gz, each with .age if encrypted.
func ObjectName(codec string, encrypted bool) string {
	name := SnapshotName
	switch codec {
	case "zstd":
		name += ".zst"
	case "gzip":
		name += ".gz"
	}
	if encrypted {
		name += ".age"
	}
	return name
}

// Manifest is the content of manifest.json.
type Manifest struct {
	Format int    `json:"format"`
	ID     string `json:"id"`

	// The source.
	ClusterID      string `json:"clusterID"` // hex, as etcd prints it
	MemberID       string `json:"memberID"`
	MemberName     string `json:"memberName,omitempty"`
	Role           string `json:"role"` // "follower" or "leader"
	Endpoint       string `json:"endpoint"`
	EtcdVersion    string `json:"etcdVersion"`
	StorageVersion string `json:"storageVersion,omitempty"`

	// What the snapshot holds (from snapkit on the spool).
	Revision        int64  `json:"revision"`
	CompactRevision int64  `json:"compactRevision"` // -1: never compacted
	RaftIndex       uint64 `json:"raftIndex"`       // meta consistent index
	RaftTerm        uint64 `json:"raftTerm"`
	HashKV          uint32 `json:"hashKV"`
	HashKVRevision  int64  `json:"hashKVRevision"`
	TotalKey        int    `json:"totalKey"`
	DBSize          int64  `json:"dbSize"`   // without the trailer
	DBSHA256        string `json:"dbSHA256"` // hex; the trailer

	Object Object `json:"object"`

	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Slot is the scheduled time the backup was taken for (absent for once).
	Slot *time.Time `json:"slot,omitempty"`
}

// Object describes the stored snapshot.
type Object struct {
	Key        string   `json:"key"`
	Size       int64    `json:"size"`
	SHA256     string   `json:"sha256"` // hex, of the stored bytes
	MD5        string   `json:"md5"`    // hex, of the stored bytes
	StoreMD5   bool     `json:"storeMD5"`
	Codec      string   `json:"codec"` // zstd, gzip or none
	Level      int      `json:"level,omitempty"`
	Recipients []string `json:"recipients,omitempty"` // age recipients; empty: not encrypted
}

// Encrypted reports whether the object is age-encrypted.
func (m *Manifest) Encrypted() bool { return len(m.Object.Recipients) > 0 }

// ParsedID is the manifest's ID.
func (m *Manifest) ParsedID() (ID, error) { return ParseID(m.ID) }

// Marshal encodes the manifest as indented JSON.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse decodes and checks a manifest.json. key, the object's key, names it
// in errors and must match the ID the manifest records.
func Parse(prefix, key string, b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadManifest, key, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%w: %s: format %d, want %d", ErrBadManifest, key, m.Format, Format)
	}
	id, err := m.ParsedID()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadManifest, key, err)
	}
	if want := id.Key(prefix, ManifestName); key != want {
		return nil, fmt.Errorf("%w: %s records ID %s (its key would be %s)", ErrBadManifest, key, m.ID, want)
	}
	switch {
	case m.Revision != id.Revision:
		return nil, fmt.Errorf("%w: %s: revision %d, its name says %d", ErrBadManifest, key, m.Revision, id.Revision)
	case m.Object.Key == "" || path.Dir(m.Object.Key) != id.Dir(prefix):
		return nil, fmt.Errorf("%w: %s: object %q is not in the backup's directory", ErrBadManifest, key, m.Object.Key)
	case m.DBSHA256 == "" || m.Object.SHA256 == "":
		return nil, fmt.Errorf("%w: %s: no SHA-256", ErrBadManifest, key)
	}
	switch m.Object.Codec {
	case "zstd", "gzip", "none":
	default:
		return nil, fmt.Errorf("%w: %s: unknown codec %q", ErrBadManifest, key, m.Object.Codec)
	}
	return &m, nil
}
