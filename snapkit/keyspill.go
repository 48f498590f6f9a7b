package snapkit

import (
	"encoding/binary"
	"fmt"
	"os"
)

// keyBudget is how many key events (40 bytes each) a keyBucket holds in
// memory, 10 MiB: past it, the events are compacted to the last one of each
// key and, if that still holds half the budget, written to a spill file,
// so that the walk's memory is bounded whatever the number of keys.
const keyBudget = 1 << 18

// keySpill is a temporary file of key events, written in runs: each run
// holds every part's events, part after part, in bucket order. It is
// unlinked as soon as it is created.
type keySpill struct {
	f    *os.File
	end  int64
	runs []spillRun
	buf  []byte
}

// spillRun is one run: its offset and, for each part, the index of its
// first event in the run (starts[keyParts] is the run's length).
type spillRun struct {
	off    int64
	starts [keyParts + 1]int64
}

const keyEventSize = 40

func newKeySpill(dir string) (*keySpill, error) {
	f, err := os.CreateTemp(dir, "snapkit-keys-*")
	if err != nil {
		return nil, fmt.Errorf("snapkit: key spill: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("snapkit: key spill: %w", err)
	}
	return &keySpill{f: f}, nil
}

// write appends a run of parts.
func (s *keySpill) write(parts *[keyParts][]keyEvent) error {
	r := spillRun{off: s.end}
	for i, events := range parts {
		r.starts[i+1] = r.starts[i] + int64(len(events))
		s.buf = s.buf[:0]
		for _, e := range events {
			s.buf = appendKeyEvent(s.buf, e)
		}
		if _, err := s.f.WriteAt(s.buf, s.end); err != nil {
			return fmt.Errorf("snapkit: key spill: %w", err)
		}
		s.end += int64(len(s.buf))
	}
	s.runs = append(s.runs, r)
	return nil
}

// read appends part i's spilled events to events, in bucket order.
func (s *keySpill) read(i int, events []keyEvent) ([]keyEvent, error) {
	for _, r := range s.runs {
		n := r.starts[i+1] - r.starts[i]
		s.buf = append(s.buf[:0], make([]byte, n*keyEventSize)...)
		if _, err := s.f.ReadAt(s.buf, r.off+r.starts[i]*keyEventSize); err != nil {
			return nil, fmt.Errorf("snapkit: key spill: %w", err)
		}
		for b := s.buf; len(b) > 0; b = b[keyEventSize:] {
			events = append(events, parseKeyEvent(b))
		}
	}
	return events, nil
}

func (s *keySpill) Close() error { return s.f.Close() }

func appendKeyEvent(b []byte, e keyEvent) []byte {
	b = binary.LittleEndian.AppendUint64(b, e.id[0])
	b = binary.LittleEndian.AppendUint64(b, e.id[1])
	b = binary.LittleEndian.AppendUint64(b, uint64(e.lease))
	b = binary.LittleEndian.AppendUint32(b, e.pos)
	tomb := uint32(0)
	if e.tomb {
		tomb = 1
	}
	b = binary.LittleEndian.AppendUint32(b, tomb)
	b = binary.LittleEndian.AppendUint32(b, e.crc)
	return binary.LittleEndian.AppendUint32(b, e.n)
}

func parseKeyEvent(b []byte) keyEvent {
	return keyEvent{
		id:    keyID{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])},
		lease: int64(binary.LittleEndian.Uint64(b[16:])),
		pos:   binary.LittleEndian.Uint32(b[24:]),
		tomb:  binary.LittleEndian.Uint32(b[28:]) != 0,
		crc:   binary.LittleEndian.Uint32(b[32:]),
		n:     binary.LittleEndian.Uint32(b[36:]),
	}
}
