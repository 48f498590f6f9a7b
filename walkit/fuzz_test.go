package walkit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder as a last segment. Strict
// decoding with resynchronisation must end without panicking; every record it
// accepts must re-encode to exactly its bytes; and where strict decoding
// finds nothing wrong, etcd-style decoding must read the same records.
//
// The seed corpus in testdata/fuzz/FuzzDecode holds the records of the solo
// fixtures' segments (TestFuzzSeedsAreFixtureSegments keeps them honest); they
// are stored rather than unpacked here because fuzz workers run this setup
// with coverage instrumentation, where unpacking 64 MB takes too long.
// Minimising each new input takes up to a minute by default; a brief CI run
// wants e.g. -fuzztime 30s -fuzzminimizetime 10x.
func FuzzDecode(f *testing.F) {
	f.Add(hexBytes(f, formatsCreateExample))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		const name = "0000000000000000-0000000000000000.wal"
		strict := newDecoder([]source{memSource(name, 0, b)}, true)
		var clean []Record
		damaged := false
		for i := 0; i <= len(b)/8+2; i++ {
			rec, pos, err := strict.next()
			if errors.Is(err, io.EOF) {
				break
			}
			var de *DamageError
			if errors.As(err, &de) {
				damaged = true
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			end := pos.Offset + int64(frameSize+recordSize(rec))
			end += int64((8 - recordSize(rec)%8) % 8)
			if got := appendFrame(nil, rec); !bytes.Equal(got, b[pos.Offset:end]) {
				t.Fatalf("record at %d re-encodes as %x, file has %x", pos.Offset, got, b[pos.Offset:end])
			}
			clean = append(clean, Record{Type: rec.Type, CRC: rec.CRC, Data: bytes.Clone(rec.Data)})
		}
		if damaged {
			return
		}
		lenient := newDecoder([]source{memSource(name, 0, b)}, false)
		for i, want := range clean {
			rec, _, err := lenient.next()
			if err != nil {
				t.Fatalf("record %d: strict decoding accepted it, lenient: %v", i, err)
			}
			if rec.Type != want.Type || rec.CRC != want.CRC || !bytes.Equal(rec.Data, want.Data) {
				t.Fatalf("record %d differs between strict and lenient decoding", i)
			}
		}
		if _, _, err := lenient.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("lenient decoding goes on after the strict end: %v", err)
		}
	})
}

// TestFuzzSeedsAreEtcdSegments checks that the stored seeds are what they
// claim: segments written by etcd (taken from the solo fixtures) that walkit
// verifies clean and reads exactly as etcd's own reader does. They are the
// first 2 KiB of records, small enough for the fuzzer to mutate quickly.
func TestFuzzSeedsAreEtcdSegments(t *testing.T) {
	for _, set := range []string{"v3.6", "v3.5"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecode", "solo-"+set+"-segment"))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(strings.TrimSpace(string(raw)), "go test fuzz v1\n[]byte(")
		if !ok {
			t.Fatalf("%s: not a fuzz corpus file", set)
		}
		seed, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		mustWriteFile(t, filepath.Join(dir, SegmentName(0, 0)), []byte(seed))
		rep, err := Verify(dir, VerifyOptions{})
		if err != nil || !rep.OK() || rep.Records < 10 {
			t.Fatalf("%s seed: %v, %d records, findings %+v", set, err, rep.Records, rep.Findings)
		}
		compareWithOracle(t, dir, Snapshot{})
	}
}
