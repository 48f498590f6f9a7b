package snapkit

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// The checks a Finding can come from.
const (
	CheckTrailer = "trailer" // the SHA-256 trailer
	CheckBolt    = "bbolt"   // bbolt's own structure: meta, pages, key order, freelist
	CheckKey     = "key"     // the key bucket: revisions and KeyValues
	CheckMeta    = "meta"    // consistent index, term, compaction marks, storage version
	CheckMembers = "members" // members and members_removed
	CheckLease   = "lease"   // leases referenced by live keys
	CheckSchema  = "schema"  // bucket set
)

// Finding is one problem found in a file. It names the page, bucket and key
// when they are known.
type Finding struct {
	Check   string  `json:"check"`
	Page    *uint64 `json:"page,omitempty"`
	Bucket  string  `json:"bucket,omitempty"`
	Key     string  `json:"key,omitempty"` // printable: see Printable
	Message string  `json:"message"`
	// metaFallback marks an invalid meta page beside a valid one: damage,
	// but bbolt reads the file through the other meta page.
	metaFallback bool
}

func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Check)
	if f.Page != nil {
		fmt.Fprintf(&b, ": page %d", *f.Page)
	}
	if f.Bucket != "" {
		fmt.Fprintf(&b, ": bucket %s", f.Bucket)
	}
	if f.Key != "" {
		fmt.Fprintf(&b, ": key %s", f.Key)
	}
	b.WriteString(": ")
	b.WriteString(f.Message)
	return b.String()
}

// maxFindings bounds the findings kept; the rest are only counted.
const maxFindings = 1000

// findings collects Findings up to maxFindings. add is safe for
// concurrent use; read list once the producers are done.
type findings struct {
	mu         sync.Mutex
	list       []Finding
	suppressed int
}

func (fs *findings) add(f Finding) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.list) >= maxFindings {
		fs.suppressed++
		return
	}
	fs.list = append(fs.list, f)
}

func (fs *findings) page(id uint64, bucket, format string, args ...any) {
	fs.add(Finding{Check: CheckBolt, Page: &id, Bucket: bucket, Message: fmt.Sprintf(format, args...)})
}

// Printable renders a key or value for a person: as is when it is printable
// UTF-8, otherwise Go-quoted.
func Printable(b []byte) string {
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool { return !strconv.IsPrint(r) }) {
		return string(b)
	}
	return strconv.Quote(string(b))
}
