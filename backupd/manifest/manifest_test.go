package manifest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIDRoundTripAndOrder(t *testing.T) {
	base := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	ids := []ID{
		NewID(0xcdf818194e3a8c32, base.Add(2*time.Hour), 9),
		NewID(0x1, base, 100),
		NewID(0xcdf818194e3a8c32, base, 1234567),
		NewID(0xcdf818194e3a8c32, base, 12),
	}
	for _, id := range ids {
		got, err := ParseID(id.String())
		if err != nil {
			t.Fatal(err)
		}
		if got.Compare(id) != 0 || !got.Time.Equal(id.Time) {
			t.Errorf("ParseID(%s) = %+v, want %+v", id, got, id)
		}
	}
	if s := ids[2].String(); s != "cdf818194e3a8c32/20261201T090000.123Z-r1234567" {
		t.Errorf("String() = %s", s)
	}
	// The names sort as the IDs do, without parsing.
	byName := slices.Clone(ids)
	slices.SortFunc(byName, func(a, b ID) int { return strings.Compare(a.String(), b.String()) })
	byID := slices.Clone(ids)
	slices.SortFunc(byID, ID.Compare)
	if !slices.Equal(byName, byID) {
		t.Errorf("name order %v, ID order %v", byName, byID)
	}
}

func TestParseKey(t *testing.T) {
	id := NewID(0xab, time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), 77)
	tests := []struct {
		prefix, key string
		want        ParsedKey
	}{
		{"p/q", "p/q/00000000000000ab/20260102T030405.006Z-r77/manifest.json", ParsedKey{Kind: KindBackup, ID: id, Object: "manifest.json", Cluster: 0xab}},
		{"", "00000000000000ab/20260102T030405.006Z-r77/snapshot.db.zst", ParsedKey{Kind: KindBackup, ID: id, Object: "snapshot.db.zst", Cluster: 0xab}},
		{"/p/", "p/00000000000000ab/20260102T030405.006Z.incoming/snapshot.db", ParsedKey{Kind: KindIncoming, ID: ID{Cluster: 0xab, Time: id.Time}, Object: "snapshot.db", Cluster: 0xab}},
		{"p", "p/backupd.lock", ParsedKey{}},
		{"p", "other/00000000000000ab/20260102T030405.006Z-r77/manifest.json", ParsedKey{}},
		{"p", "p/ab/20260102T030405.006Z-r77/manifest.json", ParsedKey{}},
		{"p", "p/00000000000000ab/20260102T030405.006Z-r0/manifest.json", ParsedKey{}},
		{"p", "p/00000000000000ab/20260102T030405.006Z-r077/manifest.json", ParsedKey{}},
		{"p", "p/00000000000000ab/yesterday-r7/manifest.json", ParsedKey{}},
		{"p", "p/00000000000000ab/20260102T030405.006Z-r77/x/manifest.json", ParsedKey{}},
	}
	for _, tt := range tests {
		got := ParseKey(tt.prefix, tt.key)
		if got.Kind != tt.want.Kind || got.Object != tt.want.Object || got.Cluster != tt.want.Cluster || got.ID.Compare(tt.want.ID) != 0 {
			t.Errorf("ParseKey(%q, %q) = %+v, want %+v", tt.prefix, tt.key, got, tt.want)
		}
	}
	if k := id.Key("p/q/", ManifestName); k != "p/q/00000000000000ab/20260102T030405.006Z-r77/manifest.json" {
		t.Errorf("Key = %s", k)
	}
	if k := StagingKey("", 0xab, id.Time, "snapshot.db"); ParseKey("", k).Kind != KindIncoming {
		t.Errorf("StagingKey %s does not parse as incoming", k)
	}
}

func validManifest(prefix string) *Manifest {
	id := NewID(0xab, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 77)
	return &Manifest{
		Format: Format, ID: id.String(), ClusterID: "ab", MemberID: "1", Role: "follower",
		Revision: 77, CompactRevision: -1, DBSHA256: "00", DBSize: 4096,
		Object: Object{Key: id.Key(prefix, ObjectName("zstd", true)), SHA256: "11", Codec: "zstd", Recipients: []string{"age1x"}},
	}
}

func TestParseChecks(t *testing.T) {
	const prefix = "backups"
	good := validManifest(prefix)
	key := "backups/00000000000000ab/20260102T030405.000Z-r77/manifest.json"
	b, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(prefix, key, b)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Encrypted() || m.Object.Key != good.Object.Key {
		t.Errorf("round trip: %+v", m)
	}
	tests := []struct {
		name   string
		key    string
		change func(*Manifest)
		want   string
	}{
		{"format", key, func(m *Manifest) { m.Format = 2 }, "format 2"},
		{"moved", "backups/00000000000000ab/20260102T030405.000Z-r78/manifest.json", func(*Manifest) {}, "records ID"},
		{"revision", key, func(m *Manifest) { m.Revision = 78 }, "its name says 77"},
		{"object elsewhere", key, func(m *Manifest) { m.Object.Key = "backups/x/snapshot.db" }, "not in the backup's directory"},
		{"codec", key, func(m *Manifest) { m.Object.Codec = "lz4" }, "unknown codec"},
		{"no hash", key, func(m *Manifest) { m.Object.SHA256 = "" }, "no SHA-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest(prefix)
			tt.change(m)
			b, _ := m.Marshal()
			_, err := Parse(prefix, tt.key, b)
			if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want ErrBadManifest with %q", err, tt.want)
			}
		})
	}
	if _, err := Parse(prefix, key, []byte("{")); !errors.Is(err, ErrBadManifest) {
		t.Errorf("truncated JSON: %v", err)
	}
}
