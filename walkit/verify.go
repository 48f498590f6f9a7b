package walkit

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// ContinueOnError keeps reading after damage, resynchronising on the next
	// frame that decodes, and reports every problem instead of the first.
	ContinueOnError bool
	// Progress, if set, is called with the bytes read so far and the total
	// size of the segments, at each segment boundary and at the end.
	Progress func(done, total int64)
}

// SegmentReport summarises one segment.
type SegmentReport struct {
	Name           string   `json:"name"`
	Size           int64    `json:"size"`
	DataEnd        int64    `json:"dataEnd"` // offset after the last intact record
	Records        int      `json:"records"`
	Entries        int      `json:"entries"`
	FirstIndex     uint64   `json:"firstIndex"`
	LastIndex      uint64   `json:"lastIndex"`
	Terms          []uint64 `json:"terms"`          // distinct entry terms, in the order first seen
	CRCOK          bool     `json:"crcOK"`          // no CRC mismatch in the segment
	FirstBadOffset int64    `json:"firstBadOffset"` // -1 when the segment is intact
}

// Finding is one problem found by Verify.
type Finding struct {
	Kind          DamageKind `json:"kind"`
	Segment       string     `json:"segment"`
	Offset        int64      `json:"offset"`
	Record        int        `json:"record"`
	LastGoodIndex uint64     `json:"lastGoodIndex"`
	Skipped       int64      `json:"skipped,omitempty"` // bytes passed over to resynchronise
	Message       string     `json:"message"`
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	Dir      string          `json:"dir"`
	Segments []SegmentReport `json:"segments"`
	Findings []Finding       `json:"findings"`
	Records  int             `json:"records"`
	Entries  int             `json:"entries"`
	Bytes    int64           `json:"bytes"` // bytes of records read
}

// OK reports whether Verify found nothing wrong.
func (r *VerifyReport) OK() bool { return len(r.Findings) == 0 }

// Verify reads every segment of dir strictly, streaming with a bounded
// buffer, and reports each segment and every damage it finds. Strict means
// more than etcd checks: besides the CRC, padding must be zero, the record
// type known, each payload the canonical encoding of its message, and each
// record possible where it stands. A torn tail is reported as TornTail.
func Verify(dir string, opts VerifyOptions) (*VerifyReport, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	d := newDecoder(fileSources(segs), true)
	defer d.close()
	return verify(dir, segs, d, opts)
}

func verify(dir string, segs []Segment, d *decoder, opts VerifyOptions) (*VerifyReport, error) {
	rep := &VerifyReport{Dir: dir, Segments: make([]SegmentReport, len(segs))}
	var total, before int64
	for i, s := range segs {
		rep.Segments[i] = SegmentReport{Name: s.Name, Size: s.Size, CRCOK: true, FirstBadOffset: -1}
		total += s.Size
		if i > 0 && s.Seq != segs[i-1].Seq+1 {
			rep.Findings = append(rep.Findings, gapFinding(segs, i))
		}
	}
	seg := -1
	progress := func(cur int) {
		for ; seg < cur; seg++ {
			if seg >= 0 {
				before += segs[seg].Size
			}
			if opts.Progress != nil {
				opts.Progress(before, total)
			}
		}
	}
	for {
		rec, pos, err := d.next()
		if d.skipped > 0 && len(rep.Findings) > 0 {
			rep.Findings[len(rep.Findings)-1].Skipped = d.skipped
			d.skipped = 0
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			var de *DamageError
			if !errors.As(err, &de) {
				return rep, err
			}
			progress(d.cur)
			sr := &rep.Segments[d.cur]
			if sr.FirstBadOffset < 0 {
				sr.FirstBadOffset = de.Pos.Offset
			}
			if de.Kind == CRCMismatch {
				sr.CRCOK = false
			}
			rep.Findings = append(rep.Findings, Finding{Kind: de.Kind, Segment: de.Pos.Segment, Offset: de.Pos.Offset,
				Record: de.Pos.Record, LastGoodIndex: de.LastGoodIndex, Message: de.Err.Error()})
			if !opts.ContinueOnError {
				break
			}
			continue
		}
		progress(d.cur)
		sr := &rep.Segments[d.cur]
		sr.Records++
		sr.DataEnd = d.off
		rep.Records++
		rep.Bytes += d.off - pos.Offset
		if rec.Type == EntryType {
			e := &d.ent
			if sr.Entries == 0 {
				sr.FirstIndex = e.Index
			}
			sr.Entries++
			rep.Entries++
			sr.LastIndex = e.Index
			if n := len(sr.Terms); n == 0 || sr.Terms[n-1] != e.Term && !slices.Contains(sr.Terms, e.Term) {
				sr.Terms = append(sr.Terms, e.Term)
			}
		}
	}
	progress(len(segs))
	return rep, nil
}

// gapFinding reports that segs[i] does not follow segs[i-1] in sequence.
func gapFinding(segs []Segment, i int) Finding {
	return Finding{Kind: SequenceGap, Segment: segs[i].Name,
		Message: fmt.Sprintf("sequence %d follows %d (%s)", segs[i].Seq, segs[i-1].Seq, segs[i-1].Name)}
}
