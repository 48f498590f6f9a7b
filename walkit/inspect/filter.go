package inspect

import (
	"bytes"
	"slices"
)

// Access says how a request uses a key or range.
type Access int

// The ways a request touches keys.
const (
	Read Access = iota
	Compared
	Written // put, or v2 PUT/POST
	Deleted
)

// KeyRange is one key or range a request touches: [Key, End) when End is
// set, the key alone when it is not, and every key from Key on when End is
// "\x00" (etcd's convention). Size is the bytes a write carries (key plus
// value).
type KeyRange struct {
	Key, End []byte
	Access   Access
	Size     int
}

// Keys lists every key and range the entry touches, txn branches and
// compares included (both branches: the log does not say which ran). A v2
// request's path counts as a key.
func (e *Entry) Keys() []KeyRange {
	var out []KeyRange
	switch {
	case e.Range != nil:
		out = append(out, KeyRange{Key: e.Range.Key.Raw, End: e.Range.RangeEnd.Raw, Access: Read})
	case e.Put != nil:
		out = append(out, e.Put.keys())
	case e.DeleteRange != nil:
		out = append(out, e.DeleteRange.keys())
	case e.Txn != nil:
		out = e.Txn.keys(out)
	case e.Request != nil:
		r := e.Request
		kr := KeyRange{Key: r.Path.Raw, Access: Read}
		switch r.Method {
		case "PUT", "POST":
			kr.Access, kr.Size = Written, len(r.Path.Raw)+len(r.Val.Raw)
		case "DELETE":
			kr.Access = Deleted
		}
		out = append(out, kr)
	}
	return out
}

func (p *Put) keys() KeyRange {
	return KeyRange{Key: p.Key.Raw, Access: Written, Size: len(p.Key.Raw) + len(p.Value.Raw)}
}

func (d *DeleteRange) keys() KeyRange {
	return KeyRange{Key: d.Key.Raw, End: d.RangeEnd.Raw, Access: Deleted}
}

func (t *Txn) keys(out []KeyRange) []KeyRange {
	for _, c := range t.Compare {
		out = append(out, KeyRange{Key: c.Key.Raw, End: c.RangeEnd.Raw, Access: Compared})
	}
	for _, o := range slices.Concat(t.Success, t.Failure) {
		switch {
		case o.Range != nil:
			out = append(out, KeyRange{Key: o.Range.Key.Raw, End: o.Range.RangeEnd.Raw, Access: Read})
		case o.Put != nil:
			out = append(out, o.Put.keys())
		case o.DeleteRange != nil:
			out = append(out, o.DeleteRange.keys())
		case o.Txn != nil:
			out = o.Txn.keys(out)
		}
	}
	return out
}

// Overlaps reports whether the range holds any key that starts with prefix.
func (k KeyRange) Overlaps(prefix []byte) bool {
	if len(k.End) == 0 {
		return bytes.HasPrefix(k.Key, prefix)
	}
	// [Key, End) meets [prefix, prefixEnd) when Key < prefixEnd and prefix < End.
	if pe := PrefixEnd(prefix); pe != nil && bytes.Compare(k.Key, pe) >= 0 {
		return false
	}
	fromKeyOn := len(k.End) == 1 && k.End[0] == 0
	return fromKeyOn || bytes.Compare(prefix, k.End) < 0
}

// PrefixEnd is the first key after every key with prefix p, as etcdctl's
// --prefix computes it (p with its last byte below 0xff incremented and
// what follows dropped), or nil when there is none (p empty or all 0xff).
func PrefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Filter selects entries. Zero fields select everything.
type Filter struct {
	StartIndex uint64 // entries with Index >= StartIndex
	EndIndex   uint64 // entries with Index <= EndIndex, when not 0
	Term       uint64 // entries of this term, when not 0
	Types      []Type // entries answering to any of these names (see Entry.Names)
	KeyPrefix  []byte // entries touching a key under this prefix, when not nil
}

// MatchIndex applies the index and term bounds only, so that a reader can
// skip decoding entries that cannot match.
func (f *Filter) MatchIndex(index, term uint64) bool {
	return index >= f.StartIndex &&
		(f.EndIndex == 0 || index <= f.EndIndex) &&
		(f.Term == 0 || term == f.Term)
}

// Match reports whether e passes every condition of f.
func (f *Filter) Match(e *Entry) bool {
	if !f.MatchIndex(e.Index, e.Term) {
		return false
	}
	if len(f.Types) > 0 && !slices.ContainsFunc(e.Names(), func(t Type) bool { return slices.Contains(f.Types, t) }) {
		return false
	}
	if f.KeyPrefix != nil {
		return slices.ContainsFunc(e.Keys(), func(k KeyRange) bool { return k.Overlaps(f.KeyPrefix) })
	}
	return true
}
