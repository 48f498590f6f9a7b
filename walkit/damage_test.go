package walkit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-dev/lifeboat/internal/fixture"
)

// memSource is a segment held in memory, for sweeps that decode it many times.
func memSource(name string, seq uint64, b []byte) source {
	return source{name: name, seq: seq, size: int64(len(b)), open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// frame is one record's byte range, found by walking length fields.
type frame struct{ start, end int }

// walkFrames splits segment data into frames with nothing but the framing rule.
func walkFrames(b []byte) []frame {
	var fs []frame
	for off := 0; off+8 <= len(b); {
		l := binary.LittleEndian.Uint64(b[off:])
		if l == 0 {
			break
		}
		n, p := decodeFrameSize(l)
		fs = append(fs, frame{off, off + 8 + int(n+p)})
		off += 8 + int(n+p)
	}
	return fs
}

// soloSegment returns the solo fixture's only segment, trimmed to its
// records followed by one sector-aligned page of zeros, and its frames.
func soloSegment(t testing.TB, set string) (string, []byte, []frame) {
	t.Helper()
	segs, err := ListSegments(fixture.WALDir(t, set, "solo"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	fs := walkFrames(b)
	end := fs[len(fs)-1].end
	return segs[0].Name, b[:(end+4096)&^4095+4096], fs
}

// firstFinding decodes one in-memory segment strictly and returns its first finding.
func firstFinding(t testing.TB, name string, b []byte) *Finding {
	t.Helper()
	d := newDecoder([]source{memSource(name, 0, b)}, true)
	rep, err := verify("mem", []Segment{{Name: name, Size: int64(len(b))}}, d, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		return nil
	}
	return &rep.Findings[0]
}

// TestEverySingleByteCorruptionIsFound changes each byte of each record of
// the solo fixtures' segment in four ways and wants each change reported at
// the record that holds it. With -short or -race each byte gets one of the
// four changes, in turn, to keep the test fast.
func TestEverySingleByteCorruptionIsFound(t *testing.T) {
	for _, set := range fixture.Sets {
		name, b, frames := soloSegment(t, set)
		if f := firstFinding(t, name, b); f != nil {
			t.Fatalf("%s: intact segment reported %+v", set, f)
		}
		mutations := []func(byte) byte{
			func(c byte) byte { return c ^ 0x01 },
			func(c byte) byte { return c ^ 0x80 },
			func(c byte) byte { return ^c },
			func(byte) byte { return 0 },
		}
		tried := 0
		for _, fr := range frames {
			for p := fr.start; p < fr.end; p++ {
				orig := b[p]
				for i, m := range mutations {
					if (testing.Short() || raceEnabled) && i != p%len(mutations) {
						continue
					}
					if b[p] = m(orig); b[p] == orig {
						continue
					}
					tried++
					f := firstFinding(t, name, b)
					switch {
					case f == nil:
						t.Errorf("%s: byte %d (record at %d) %#02x->%#02x not detected", set, p, fr.start, orig, b[p])
					case f.Segment != name || f.Offset != int64(fr.start):
						t.Errorf("%s: byte %d %#02x->%#02x reported at %s offset %d (%s: %s), want record at %d",
							set, p, orig, b[p], f.Segment, f.Offset, f.Kind, f.Message, fr.start)
					}
				}
				b[p] = orig
			}
		}
		t.Logf("%s: %d records, %d corruptions detected at their record", set, len(frames), tried)
	}
}

// TestEveryTruncationOfTheLastRecordIsTorn cuts the segment file inside its
// last record at every byte: walkit names it a torn tail, and ReadAll's
// decoding, like etcd's, ends there quietly.
func TestEveryTruncationOfTheLastRecordIsTorn(t *testing.T) {
	name, b, frames := soloSegment(t, "v3.6")
	last := frames[len(frames)-1]
	for k := last.start + 1; k < last.end; k++ {
		f := firstFinding(t, name, b[:k])
		if f == nil || f.Kind != TornTail || f.Offset != int64(last.start) {
			t.Fatalf("cut at %d: finding %+v, want torn tail at %d", k, f, last.start)
		}
		d := newDecoder([]source{memSource(name, 0, b[:k])}, false)
		var err error
		for err == nil {
			_, _, err = d.next()
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: lenient decoding ended with %v, want an unexpected EOF", k, err)
		}
	}
}

// TestTornWriteInPreallocatedTail zeroes whole sectors of the last record in
// place, as a torn write leaves them: etcd's rule names it torn.
func TestTornWriteInPreallocatedTail(t *testing.T) {
	name, b, frames := soloSegment(t, "v3.6")
	last := frames[len(frames)-1]
	torn := append([]byte(nil), b...)
	clear(torn[last.start+8 : last.end])
	f := firstFinding(t, name, torn)
	if f == nil || f.Kind != TornTail || f.Offset != int64(last.start) {
		t.Fatalf("finding %+v, want torn tail at %d", f, last.start)
	}
}

func TestDamageNamesSegmentOffsetRecordAndLastGoodEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := applyScript(t, dir, 64<<10, testScript(600))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := ListSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	target := segs[2]
	data, err := os.ReadFile(target.Path)
	if err != nil {
		t.Fatal(err)
	}
	frames := walkFrames(data)
	// Independent view of the entries before the damaged record: the Reader on the intact WAL.
	vi := 10
	for frames[vi].end-frames[vi].start < 200 {
		vi++
	}
	victim := frames[vi]
	var lastGood uint64
	r, err := NewReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	for {
		rec, pos, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if pos.Segment == target.Name && pos.Offset == int64(victim.start) {
			break
		}
		if rec.Type == EntryType {
			e, err := decodeEntry(rec.Data, true)
			if err != nil {
				t.Fatal(err)
			}
			lastGood = e.Index
		}
	}
	r.Close()

	cases := []struct {
		name string
		at   int // byte offset within the victim frame
		kind DamageKind
	}{
		{"data byte", (victim.start + victim.end) / 2, CRCMismatch},
		{"length field", victim.start + 6, BadLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := append([]byte(nil), data...)
			bad[c.at] ^= 0x40
			mustWriteFile(t, target.Path, bad)
			defer mustWriteFile(t, target.Path, data)
			rep, err := Verify(dir, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != 1 {
				t.Fatalf("findings %+v, want one", rep.Findings)
			}
			f := rep.Findings[0]
			if f.Kind != c.kind || f.Segment != target.Name || f.Offset != int64(victim.start) || f.Record != vi || f.LastGoodIndex != lastGood {
				t.Fatalf("finding %+v, want %s in %s at %d, record %d, last good entry %d", f, c.kind, target.Name, victim.start, vi, lastGood)
			}
			if rep.Segments[2].FirstBadOffset != int64(victim.start) {
				t.Fatalf("segment report %+v", rep.Segments[2])
			}
		})
	}
}

// TestContinueOnErrorReportsEveryDamage corrupts three records in three
// segments and wants three findings and the intact records in between.
func TestContinueOnErrorReportsEveryDamage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := applyScript(t, dir, 64<<10, testScript(600))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	clean, err := Verify(dir, VerifyOptions{})
	if err != nil || !clean.OK() {
		t.Fatalf("clean WAL: %v %+v", err, clean)
	}
	segs, _ := ListSegments(dir)
	type hit struct {
		seg    string
		offset int64
	}
	var want []hit
	for i, mutate := range []func(b []byte, f frame){
		func(b []byte, f frame) { b[f.end-9] ^= 1 },     // data: CRC mismatch, frame intact
		func(b []byte, f frame) { b[f.start+5] = 0x7f }, // length: frame lost, resynchronise
		func(b []byte, f frame) { b[f.start+9] = 0x7f }, // record type: impossible type
	} {
		seg := segs[1+i]
		b, err := os.ReadFile(seg.Path)
		if err != nil {
			t.Fatal(err)
		}
		f := walkFrames(b)[5]
		mutate(b, f)
		mustWriteFile(t, seg.Path, b)
		want = append(want, hit{seg.Name, int64(f.start)})
	}
	rep, err := Verify(dir, VerifyOptions{ContinueOnError: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []hit
	for _, f := range rep.Findings {
		got = append(got, hit{f.Segment, f.Offset})
	}
	if len(got) != len(want) {
		t.Fatalf("findings %+v, want at %+v", rep.Findings, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("finding %d at %+v, want %+v (%+v)", i, got[i], want[i], rep.Findings[i])
		}
	}
	if rep.Records != clean.Records-len(want) {
		t.Fatalf("read %d intact records, want %d", rep.Records, clean.Records-len(want))
	}
}
