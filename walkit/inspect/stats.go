package inspect

import (
	"bytes"
	"cmp"
	"slices"
)

// Stats is what a WAL holds, in numbers. Prefix statistics count the
// writes proposed (a txn's puts in both branches), not those applied.
type Stats struct {
	NodeID       ID             `json:"nodeId"`
	ClusterID    ID             `json:"clusterId"`
	Segments     int            `json:"segments"`
	SegmentBytes int64          `json:"segmentBytes"` // file sizes, preallocated tails included
	Records      map[string]int `json:"records"`
	Entries      int            `json:"entries"`
	EntryBytes   int64          `json:"entryBytes"` // bytes of entry data
	FirstIndex   uint64         `json:"firstIndex"`
	LastIndex    uint64         `json:"lastIndex"`
	FirstTerm    uint64         `json:"firstTerm"`
	LastTerm     uint64         `json:"lastTerm"`
	// Rewritten counts entries at an index the log already held: a new
	// leader replaced an uncommitted tail.
	Rewritten    int           `json:"rewritten"`
	EntryTypes   map[Type]int  `json:"entryTypes"`   // Normal, ConfigChange, ...
	RequestTypes map[Type]int  `json:"requestTypes"` // IRRPut, Request, NoOp, ...
	Snapshots    []SnapshotRef `json:"snapshots"`
	HardState    *HardState    `json:"hardState,omitempty"` // the last one
	Depth        int           `json:"depth"`               // path segments per prefix
	TopPrefixes  []PrefixStat  `json:"topPrefixes"`         // by bytes written, largest first
}

// SnapshotRef is a WAL snapshot record.
type SnapshotRef struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// HardState is raft's durable state.
type HardState struct {
	Term   uint64 `json:"term"`
	Vote   ID     `json:"vote"`
	Commit uint64 `json:"commit"`
}

// PrefixStat sums the writes under one key prefix.
type PrefixStat struct {
	Prefix  Bytes `json:"prefix"`
	Puts    int   `json:"puts"`
	Deletes int   `json:"deletes"`
	Bytes   int64 `json:"bytes"` // keys plus values put
}

// StatsBuilder adds up Stats as records go by.
type StatsBuilder struct {
	s        Stats
	top      int
	hex      bool
	prefixes map[string]*PrefixStat
}

// NewStats starts statistics whose prefixes are the first depth path
// segments of a key, keeping the top largest prefixes.
func NewStats(depth, top int, opt Options) *StatsBuilder {
	return &StatsBuilder{
		s: Stats{
			Records: map[string]int{}, EntryTypes: map[Type]int{}, RequestTypes: map[Type]int{},
			Depth: depth, Snapshots: []SnapshotRef{}, TopPrefixes: []PrefixStat{},
		},
		top: top, hex: opt.Hex, prefixes: map[string]*PrefixStat{},
	}
}

// addEntry counts one decoded entry.
func (b *StatsBuilder) addEntry(e *Entry) {
	s := &b.s
	if s.Entries == 0 {
		s.FirstIndex, s.FirstTerm = e.Index, e.Term
	} else if e.Index <= s.LastIndex {
		s.Rewritten++
	}
	s.Entries++
	s.LastIndex, s.LastTerm = e.Index, e.Term
	s.EntryBytes += int64(e.Size)
	s.EntryTypes[e.Names()[0]]++
	s.RequestTypes[e.Type]++
	for _, k := range e.Keys() {
		if k.Access != Written && k.Access != Deleted {
			continue
		}
		p := PrefixOf(k.Key, s.Depth)
		ps := b.prefixes[string(p)]
		if ps == nil {
			ps = &PrefixStat{Prefix: Bytes{Raw: bytes.Clone(p), Hex: b.hex}}
			b.prefixes[string(p)] = ps
		}
		if k.Access == Written {
			ps.Puts++
			ps.Bytes += int64(k.Size)
		} else {
			ps.Deletes++
		}
	}
}

// AddSegment counts a segment of size bytes.
func (b *StatsBuilder) AddSegment(size int64) {
	b.s.Segments++
	b.s.SegmentBytes += size
}

// Stats returns the totals so far, with the top prefixes sorted by bytes
// written, then deletes, then prefix.
func (b *StatsBuilder) Stats() Stats {
	s := b.s
	s.TopPrefixes = make([]PrefixStat, 0, len(b.prefixes))
	for _, p := range b.prefixes {
		s.TopPrefixes = append(s.TopPrefixes, *p)
	}
	slices.SortFunc(s.TopPrefixes, func(x, y PrefixStat) int {
		return cmp.Or(cmp.Compare(y.Bytes, x.Bytes), cmp.Compare(y.Deletes, x.Deletes), bytes.Compare(x.Prefix.Raw, y.Prefix.Raw))
	})
	if b.top > 0 && len(s.TopPrefixes) > b.top {
		s.TopPrefixes = s.TopPrefixes[:b.top]
	}
	return s
}

// PrefixOf cuts key after its first depth path segments: with depth 2,
// "/registry/pods/default/web" gives "/registry/pods/" and "a/b/c" gives
// "a/b/". A leading '/' belongs to the first segment. A key with fewer
// segments is its own prefix; depth <= 0 keeps the whole key.
func PrefixOf(key []byte, depth int) []byte {
	if depth <= 0 {
		return key
	}
	i := 0
	if len(key) > 0 && key[0] == '/' {
		i = 1
	}
	for ; depth > 0; depth-- {
		j := bytes.IndexByte(key[i:], '/')
		if j < 0 {
			return key
		}
		i += j + 1
	}
	return key[:i]
}
