package walkit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"go.etcd.io/raft/v3/raftpb"
)

// ReadAll reads the WAL from the snapshot given to Open or OpenForRead, with
// etcd's semantics: entries at or below the snapshot are skipped, a later
// entry at the same index replaces the earlier one and drops what followed
// it, the last HardState wins, every metadata record must equal the first,
// and the snapshot record at the snapshot's index must have its term.
//
// Opened for read, a torn or short tail ends the read quietly. Opened for
// append, the read must reach a clean end; the tail is then truncated at the
// last record, preallocated again, and the WAL is ready for Save. The
// metadata, state and entries are returned with ErrSnapshotNotFound when the
// snapshot has no record.
func (w *WAL) ReadAll() (metadata []byte, st raftpb.HardState, ents []raftpb.Entry, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dec
	if d == nil {
		return nil, st, nil, errReadAllDone
	}
	d.keepData = true
	var match bool
	for {
		var (
			rec Record
			pos Position
		)
		rec, pos, err = d.next()
		if err != nil {
			break
		}
		switch rec.Type {
		case EntryType:
			e := d.ent
			if e.Index > w.start.Index {
				off := e.Index - w.start.Index - 1
				if off > uint64(len(ents)) {
					return nil, raftpb.HardState{}, ents, fmt.Errorf("%w %s: snapshot index %d term %d, entry index %d term %d after %d entries",
						ErrSliceOutOfRange, pos.where(), w.start.Index, w.start.Term, e.Index, e.Term, len(ents))
				}
				ents = append(ents[:off], e)
			}
			w.enti = e.Index
		case StateType:
			st = d.state
		case MetadataType:
			if metadata != nil && !bytes.Equal(metadata, rec.Data) {
				return nil, raftpb.HardState{}, nil, fmt.Errorf("%w %s: %x differs from the first metadata %x", ErrMetadataConflict, pos.where(), rec.Data, metadata)
			}
			metadata = bytes.Clone(rec.Data)
		case CrcType:
		case SnapshotType:
			if d.snap.Index == w.start.Index {
				if d.snap.Term != w.start.Term {
					return nil, raftpb.HardState{}, nil, fmt.Errorf("%w %s: the record has term %d, want %d at index %d",
						ErrSnapshotMismatch, pos.where(), d.snap.Term, w.start.Term, w.start.Index)
				}
				match = true
			}
		default:
			return nil, raftpb.HardState{}, nil, fmt.Errorf("walkit: unexpected record type %d %s", int64(rec.Type), pos.where())
		}
	}
	if len(w.locks) == 0 {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, raftpb.HardState{}, nil, err
		}
	} else {
		if !errors.Is(err, io.EOF) {
			return nil, raftpb.HardState{}, nil, err
		}
		if err := zeroToEnd(w.tail(), d.off); err != nil {
			return nil, raftpb.HardState{}, nil, err
		}
		w.tailOff, w.crc = d.off, d.crc
		w.spare = newSpareFiles(w.dir, w.segSize)
	}
	err = nil
	if !match {
		err = fmt.Errorf("%w: index %d term %d", ErrSnapshotNotFound, w.start.Index, w.start.Term)
	}
	if cerr := d.close(); cerr != nil && err == nil {
		err = cerr
	}
	w.dec = nil
	w.start = Snapshot{}
	w.metadata = metadata
	return metadata, st, ents, err
}

// ValidSnapshotEntries returns the snapshot records of every segment in dir
// whose index is at most the commit index of the last HardState: the
// snapshots a restarting member may load.
func ValidSnapshotEntries(lg *slog.Logger, dir string) ([]Snapshot, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	d := newDecoder(fileSources(segs), false)
	defer d.close()
	var snaps []Snapshot
	var st raftpb.HardState
	for {
		rec, _, err := d.next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, err
			}
			if !errors.Is(err, io.EOF) {
				discardLogger(lg).Warn("WAL ends with a torn record", "dir", dir, "error", err)
			}
			break
		}
		switch rec.Type {
		case SnapshotType:
			snaps = append(snaps, d.snap)
		case StateType:
			st = d.state
		}
	}
	valid := snaps[:0]
	for _, s := range snaps {
		if s.Index <= st.Commit {
			valid = append(valid, s)
		}
	}
	return valid, nil
}
