package walkit

// Reader streams every record of every segment of a WAL directory, with its
// position, for forensics. It decodes strictly (see Verify) and, after a
// *DamageError, resynchronises on the next plausible frame when Next is
// called again.
type Reader struct {
	d    *decoder
	segs []Segment
}

// NewReader opens the segments of dir for reading. It takes no lock and does
// not require contiguous sequence numbers: Verify reports gaps.
func NewReader(dir string) (*Reader, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	return &Reader{d: newDecoder(fileSources(segs), true), segs: segs}, nil
}

// Segments lists the segments the reader reads, in order.
func (r *Reader) Segments() []Segment { return r.segs }

// Next returns the next record and where it starts; io.EOF after the last.
// Damage is returned as *DamageError. Record.Data is valid until the next call.
func (r *Reader) Next() (Record, Position, error) { return r.d.next() }

// Close releases the open segment.
func (r *Reader) Close() error { return r.d.close() }
