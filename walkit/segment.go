package walkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SegmentSizeBytes is the size at which the writer cuts a new segment, and
// the size every new segment is preallocated to (64,000,000 bytes, as etcd).
const SegmentSizeBytes = 64 * 1000 * 1000

// Segment is one WAL file.
type Segment struct {
	Name  string // base name, %016x-%016x.wal
	Path  string
	Seq   uint64 // sequence number
	Index uint64 // raft index of the first entry expected in the segment
	Size  int64  // file size in bytes (preallocation included)
}

var (
	// ErrFileNotFound means a directory holds no WAL segment.
	ErrFileNotFound = errors.New("walkit: file not found")
	// ErrSequenceGap means segment sequence numbers are not contiguous.
	ErrSequenceGap = errors.New("walkit: segment sequence numbers not contiguous")
)

// badNamesError is a directory whose *.wal files are none of them named as
// segments: ErrFileNotFound, told with what was found.
type badNamesError struct {
	dir   string
	names []string
}

func (e *badNamesError) Error() string {
	const show = 3
	found := strings.Join(e.names[:min(len(e.names), show)], ", ")
	if n := len(e.names) - show; n > 0 {
		found += fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("walkit: %s: no valid segment names, expected %%016x-%%016x.wal (found %s)", e.dir, found)
}

func (e *badNamesError) Is(target error) bool { return target == ErrFileNotFound }

// SegmentName returns the file name of the segment with the given sequence and first index.
func SegmentName(seq, index uint64) string {
	return fmt.Sprintf("%016x-%016x.wal", seq, index)
}

// parseSegmentName parses %016x-%016x.wal.
func parseSegmentName(name string) (seq, index uint64, ok bool) {
	if len(name) != 37 || name[16] != '-' || !strings.HasSuffix(name, ".wal") {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(name[:16], 16, 64)
	index, err2 := strconv.ParseUint(name[17:33], 16, 64)
	return seq, index, err1 == nil && err2 == nil
}

// listSegments returns the segments of dir sorted by name, without checking
// their sequence. Other files (spares, *.broken) are ignored, as etcd does.
func listSegments(dir string) ([]Segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("walkit: %w", err)
	}
	var (
		segs []Segment
		bad  []string // *.wal files that are not named as segments
	)
	for _, de := range des {
		seq, index, ok := parseSegmentName(de.Name())
		if !ok && strings.HasSuffix(de.Name(), ".wal") {
			bad = append(bad, de.Name())
		}
		if !ok || !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("walkit: %w", err)
		}
		segs = append(segs, Segment{
			Name: de.Name(), Path: filepath.Join(dir, de.Name()),
			Seq: seq, Index: index, Size: info.Size(),
		})
	}
	if len(segs) == 0 && len(bad) > 0 {
		return nil, &badNamesError{dir: dir, names: bad}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrFileNotFound, dir)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Name < segs[j].Name })
	return segs, nil
}

// checkSequence reports the first break in the segments' sequence numbers.
func checkSequence(segs []Segment) error {
	for i := 1; i < len(segs); i++ {
		if segs[i].Seq != segs[i-1].Seq+1 {
			return fmt.Errorf("%w: %s follows %s", ErrSequenceGap, segs[i].Name, segs[i-1].Name)
		}
	}
	return nil
}

// ListSegments returns the WAL segments of dir, sorted, and checks that their
// sequence numbers are contiguous.
func ListSegments(dir string) ([]Segment, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if err := checkSequence(segs); err != nil {
		return nil, err
	}
	return segs, nil
}

// Exist reports whether dir holds a file named *.wal, as etcd's wal.Exist does.
func Exist(dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".wal") {
			return true
		}
	}
	return false
}

// searchIndex returns the position of the last segment whose first index is at most index.
func searchIndex(segs []Segment, index uint64) (int, bool) {
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].Index <= index {
			return i, true
		}
	}
	return -1, false
}
