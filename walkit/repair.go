package walkit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"
)

// ErrUnrepairable means damage sits where truncation cannot help: in the
// header records of the first segment.
var ErrUnrepairable = errors.New("walkit: damage cannot be repaired by truncation")

// Repair is etcd's repair of a torn tail: it decodes the last segment and, if
// it ends in a torn or short record, copies the segment to <name>.broken,
// truncates it where that record starts and syncs it. It returns nil when
// the WAL now ends cleanly, and otherwise why not: damage of any other kind
// (a *DamageError) is not repaired. Unlike etcd it does not wait for a
// lock: a segment in use is left alone (ErrLocked).
func Repair(lg *slog.Logger, dir string) error {
	lg = discardLogger(lg)
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	last := segs[len(segs)-1]
	f, err := openLocked(last.Path, os.O_RDWR, false)
	if err != nil {
		return err
	}
	defer f.Close()
	d := newDecoder(fileSources([]Segment{last}), false)
	defer d.close()
	for {
		_, pos, err := d.next()
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			lg.Info("WAL repair: truncating torn tail", "segment", last.Name, "offset", pos.Offset, "error", err)
			if err := copyFile(last.Path, last.Path+".broken", -1); err != nil {
				return err // names the segment and its copy
			}
			if err := f.Truncate(pos.Offset); err != nil {
				return fmt.Errorf("walkit: repair: truncate %s at %d: %w", last.Path, pos.Offset, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("walkit: repair: fsync %s: %w", last.Path, err)
			}
			return nil
		default:
			var de *DamageError
			if errors.As(err, &de) {
				return fmt.Errorf("%w; not a torn tail, so not repaired (walkit repair plans a cut)", err)
			}
			return err
		}
	}
}

// copyFile copies the first n bytes of src (all of it when n < 0) to a new
// file dst, synced.
func copyFile(src, dst string, n int64) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("walkit: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("walkit: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("walkit: %w", cerr)
		}
	}()
	var r io.Reader = in
	if n >= 0 {
		r = io.LimitReader(in, n)
	}
	if _, err := io.Copy(out, r); err != nil {
		return fmt.Errorf("walkit: copy %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("walkit: fsync %s: %w", dst, err)
	}
	return nil
}

// LostEntry is an entry that a repair would drop.
type LostEntry struct {
	Index   uint64           `json:"index"`
	Term    uint64           `json:"term"`
	Type    raftpb.EntryType `json:"type"`
	Segment string           `json:"segment"`
	Offset  int64            `json:"offset"`
}

// FileChange is what a repair does to one segment.
type FileChange struct {
	Segment  string `json:"segment"`
	Action   string `json:"action"` // "truncate" or "remove"
	Size     int64  `json:"size"`   // size now
	Truncate int64  `json:"truncate,omitempty"`
}

// RepairPlan says how to cut a damaged WAL at its first bad record.
type RepairPlan struct {
	Dir    string   `json:"dir"`
	Damage *Finding `json:"damage,omitempty"` // the first bad record; nil: nothing to do
	// LastKeptIndex is the last entry kept (with no damage, the WAL's last entry).
	LastKeptIndex uint64 `json:"lastKeptIndex"`
	// EndIndex is the raft index the kept records end the log at: the last
	// kept entry's, or a later snapshot record's if that is above it. A
	// member's db and .snap files must not be ahead of it.
	EndIndex uint64       `json:"endIndex"`
	Changes  []FileChange `json:"changes"`
	// FirstLostIndex..LastLostIndex are the raft indexes the cut drops: from
	// EndIndex+1 (or the lowest index read after the cut, if lower) to the
	// highest index read after it, so the damaged record counts when an entry
	// follows it. Both are 0 when no readable entry follows the cut.
	FirstLostIndex uint64      `json:"firstLostIndex,omitempty"`
	LastLostIndex  uint64      `json:"lastLostIndex,omitempty"`
	LostEntries    []LostEntry `json:"lostEntries"` // the entries still readable after the cut
	LostRecords    int         `json:"lostRecords"` // readable records after the cut, entries included
	LostDamage     int         `json:"lostDamage"`  // further damage found after the cut
}

// LostIndexes is how many raft indexes the cut drops (see FirstLostIndex).
func (p *RepairPlan) LostIndexes() uint64 {
	if p.LastLostIndex == 0 {
		return 0
	}
	return p.LastLostIndex - p.FirstLostIndex + 1
}

// PlanRepair finds the first bad record in any segment and plans to truncate
// the WAL there: that segment is cut at the record (or dropped if its header
// records are bad), later segments are dropped, and every entry that can
// still be read after the cut is listed as lost. A gap in the segments'
// sequence numbers cuts the WAL before the segment after the gap.
func PlanRepair(dir string) (*RepairPlan, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	// The WAL as etcd reads it ends at a sequence gap: read up to it first.
	head, gap := len(segs), Finding{}
	for i := 1; i < len(segs); i++ {
		if segs[i].Seq != segs[i-1].Seq+1 {
			head, gap = i, gapFinding(segs, i)
			break
		}
	}
	plan := &RepairPlan{Dir: dir}
	d := newDecoder(fileSources(segs[:head]), true)
	defer d.close()
	rep, err := verify(dir, segs[:head], d, VerifyOptions{})
	if err != nil {
		return nil, err
	}
	first := gap
	switch {
	case !rep.OK():
		first = rep.Findings[0]
	case head < len(segs):
		first.LastGoodIndex = d.lastGood
	default:
		plan.LastKeptIndex, plan.EndIndex = d.lastGood, d.lastEnd
		return plan, nil
	}
	plan.Damage = &first
	plan.LastKeptIndex, plan.EndIndex = first.LastGoodIndex, d.lastEnd
	at := slicesIndex(segs, first.Segment)
	if first.Record >= 2 {
		plan.Changes = append(plan.Changes, FileChange{Segment: segs[at].Name, Action: "truncate", Size: segs[at].Size, Truncate: first.Offset})
	} else if at == 0 {
		return nil, fmt.Errorf("%w: %s record %d at offset %d: %s", ErrUnrepairable, first.Segment, first.Record, first.Offset, first.Message)
	} else {
		plan.Changes = append(plan.Changes, FileChange{Segment: segs[at].Name, Action: "remove", Size: segs[at].Size})
	}
	for _, s := range segs[at+1:] {
		plan.Changes = append(plan.Changes, FileChange{Segment: s.Name, Action: "remove", Size: s.Size})
	}
	// The rest of the head, then the segments after a gap, are lost.
	if err := plan.addLost(d); err != nil {
		return nil, err
	}
	if head < len(segs) {
		tail := newDecoder(fileSources(segs[head:]), true)
		defer tail.close()
		if err := plan.addLost(tail); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// addLost reads what is left of d as lost.
func (p *RepairPlan) addLost(d *decoder) error {
	for {
		rec, pos, err := d.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var de *DamageError
		if errors.As(err, &de) {
			p.LostDamage++
			continue
		}
		if err != nil {
			return err
		}
		p.LostRecords++
		if rec.Type != EntryType {
			continue
		}
		e := &d.ent
		p.LostEntries = append(p.LostEntries, LostEntry{Index: e.Index, Term: e.Term, Type: e.Type, Segment: pos.Segment, Offset: pos.Offset})
		if p.LastLostIndex == 0 {
			p.FirstLostIndex = p.EndIndex + 1
		}
		p.FirstLostIndex = min(p.FirstLostIndex, e.Index)
		p.LastLostIndex = max(p.LastLostIndex, e.Index)
	}
}

func slicesIndex(segs []Segment, name string) int {
	for i, s := range segs {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// Apply carries out the plan. It locks every segment it changes (so it
// refuses a WAL in use), keeps each original as <name>.broken, writes a
// truncated copy beside it and renames it into place. Bytes before the cut
// are copied unchanged.
func (p *RepairPlan) Apply(lg *slog.Logger) error {
	lg = discardLogger(lg)
	for _, c := range p.Changes {
		path := filepath.Join(p.Dir, c.Segment)
		f, err := openLocked(path, os.O_RDWR, false)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("walkit: %w", err)
		}
		if info.Size() != c.Size {
			return fmt.Errorf("walkit: %s changed since the plan (%d bytes, planned for %d)", path, info.Size(), c.Size)
		}
		if _, err := os.Lstat(path + ".broken"); err == nil {
			return fmt.Errorf("walkit: %s.broken exists; move it away first", path)
		}
	}
	// Drop later segments first, newest first, so that a crash leaves a prefix of the WAL.
	for i := len(p.Changes) - 1; i >= 0; i-- {
		c := p.Changes[i]
		path := filepath.Join(p.Dir, c.Segment)
		switch c.Action {
		case "remove":
			if err := os.Rename(path, path+".broken"); err != nil {
				return fmt.Errorf("walkit: %w", err)
			}
			lg.Info("WAL repair: removed segment", "segment", c.Segment, "kept-as", c.Segment+".broken")
		case "truncate":
			tmp := path + ".repair.tmp"
			if err := copyFile(path, tmp, c.Truncate); err != nil {
				return err
			}
			if err := os.Link(path, path+".broken"); err != nil {
				if err := copyFile(path, path+".broken", -1); err != nil {
					return err
				}
			}
			if err := os.Rename(tmp, path); err != nil {
				return fmt.Errorf("walkit: %w", err)
			}
			lg.Info("WAL repair: truncated segment", "segment", c.Segment, "offset", c.Truncate, "kept-as", c.Segment+".broken")
		default:
			return fmt.Errorf("walkit: unknown repair action %q", c.Action)
		}
	}
	return fsyncDir(p.Dir)
}
