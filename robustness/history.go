package robustness

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Infinity is the return time of an operation whose outcome is unknown: it
// may take effect at any moment after its call.
const Infinity = time.Duration(math.MaxInt64)

// RequestKind says what a Request does.
type RequestKind int

const (
	// Txn is a key-value request: range, put and delete are one-op txns.
	Txn RequestKind = iota
	// LeaseGrant grants the lease Lease with TTL.
	LeaseGrant
	// LeaseRevoke revokes Lease, deleting its keys.
	LeaseRevoke
	// LeaseExpire is the expiry of Lease: never called by a client, it is
	// added to a history as an operation of unknown outcome from the
	// moment the lease may expire.
	LeaseExpire
)

// Request is the input of one operation.
type Request struct {
	Kind  RequestKind
	Txn   TxnRequest // Kind Txn
	Lease int64      // the lease of the lease kinds
	TTL   int64      // LeaseGrant
}

// TxnRequest is a transaction; with no compare it always takes Then.
type TxnRequest struct {
	If   []Compare
	Then []TxnOp
	Else []TxnOp
}

// CompareTarget is the field a Compare looks at.
type CompareTarget int

const (
	CompareValue CompareTarget = iota
	CompareVersion
	CompareMod
	CompareCreate
)

// CompareResult is a Compare's relation.
type CompareResult int

const (
	Equal CompareResult = iota
	NotEqual
	Less
	Greater
)

// Compare compares one key's field, as etcd's Compare on a single key. A
// missing key has version, mod and create revision 0 and fails every value
// compare.
type Compare struct {
	Key    string
	Target CompareTarget
	Result CompareResult
	Value  string // CompareValue
	Number int64  // the other targets
}

// OpKind is the kind of one operation in a txn.
type OpKind int

const (
	Range OpKind = iota
	Put
	Delete
)

// TxnOp is one operation in a txn. End "" means the single key Key;
// otherwise the range [Key, End).
type TxnOp struct {
	Kind  OpKind
	Key   string
	End   string
	Value string // Put
	Lease int64  // Put
}

// KV is a key-value pair with etcd's metadata.
type KV struct {
	Key     string
	Value   string
	Mod     int64
	Create  int64
	Version int64
	Lease   int64
}

func (kv KV) String() string {
	s := fmt.Sprintf("%s=%q@%d(c%d,v%d)", kv.Key, kv.Value, kv.Mod, kv.Create, kv.Version)
	if kv.Lease != 0 {
		s += fmt.Sprintf("[lease %x]", kv.Lease)
	}
	return s
}

// Response is the output of one operation.
type Response struct {
	// Unknown: the client got an error that leaves the outcome open.
	Unknown bool
	// Err is a definite etcd error (the request had no effect), such as
	// "etcdserver: requested lease not found".
	Err string
	// Rev is the response header's revision.
	Rev       int64
	Succeeded bool       // Txn: Then was taken
	Results   []OpResult // Txn: one per op of the branch taken
}

// OpResult is the result of one op in a txn.
type OpResult struct {
	KVs     []KV  // Range
	Deleted int64 // Delete
}

// Operation is one recorded client call.
type Operation struct {
	ID     int
	Client int
	Req    Request
	Resp   Response
	// Call and Return are times since the history began; Return is
	// Infinity for an operation of unknown outcome.
	Call, Return time.Duration
	// Member is the ID of the member that answered (header member_id).
	Member uint64
	// Serializable marks a range served from one member's state, outside
	// the linearizable history.
	Serializable bool
	// Error is the client's error, if any (for reports).
	Error string
}

// Event is one event of a watch.
type Event struct {
	Delete bool
	KV     KV
	Prev   *KV
}

func (e Event) String() string {
	kind := "put"
	if e.Delete {
		kind = "delete"
	}
	s := kind + " " + e.KV.String()
	if e.Prev != nil {
		s += " prev " + e.Prev.String()
	}
	return s
}

// WatchResponse is one response received on a watch.
type WatchResponse struct {
	Time time.Duration
	// Rev is the header's revision; a response with no event and no
	// error is a progress notification: every event up to Rev was sent.
	Rev       int64
	Events    []Event
	Compacted int64 // the compact revision, if the watch was compacted
	Canceled  bool
	Err       string
}

// Progress reports whether r is a progress notification.
func (r WatchResponse) Progress() bool {
	return len(r.Events) == 0 && r.Compacted == 0 && !r.Canceled && r.Err == ""
}

// Watch is one watch, opened on one key range from a start revision and
// read until it ended.
type Watch struct {
	ID     int
	Client int
	Key    string
	End    string // "" the single key; "\x00" every key from Key
	Start  int64  // the requested start revision (0: from now)
	PrevKV bool
	// Endpoint is the member it was opened on.
	Endpoint string
	Opened   time.Duration
	// Responses in the order received.
	Responses []WatchResponse
}

// Compaction is one compaction request.
type Compaction struct {
	Rev          int64
	Call, Return time.Duration // Return Infinity if the outcome is unknown
	Err          string
}

// History is everything the clients did and saw.
type History struct {
	Operations  []Operation
	Watches     []*Watch
	Compactions []Compaction
}

// Recorder collects a History from concurrent clients.
type Recorder struct {
	start time.Time

	mu      sync.Mutex
	history History
	maxRev  int64
}

// NewRecorder starts a history now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the time since the history began.
func (r *Recorder) Now() time.Duration { return time.Since(r.start) }

// Add records an operation (its ID is assigned here).
func (r *Recorder) Add(op Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.ID = len(r.history.Operations)
	r.history.Operations = append(r.history.Operations, op)
	if !op.Resp.Unknown && op.Resp.Err == "" {
		r.maxRev = max(r.maxRev, op.Resp.Rev)
	}
}

// MaxRev is the newest revision an operation returned so far.
func (r *Recorder) MaxRev() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxRev
}

// AddWatch records a watch; the caller fills it in before History is
// read, and no longer after.
func (r *Recorder) AddWatch(w *Watch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.ID = len(r.history.Watches)
	r.history.Watches = append(r.history.Watches, w)
}

// AddCompaction records a compaction.
func (r *Recorder) AddCompaction(c Compaction) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.history.Compactions = append(r.history.Compactions, c)
}

// History returns what was recorded, operations in call order. Call it
// once every client has stopped.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.history
	h.Operations = append([]Operation(nil), h.Operations...)
	sort.SliceStable(h.Operations, func(i, j int) bool { return h.Operations[i].Call < h.Operations[j].Call })
	return h
}

// String describes an operation for a report.
func (op Operation) String() string {
	ret := "inf"
	if op.Return != Infinity {
		ret = op.Return.String()
	}
	s := fmt.Sprintf("#%d c%d [%v, %s] %s -> %s", op.ID, op.Client, op.Call, ret, op.Req, op.Resp)
	if op.Serializable {
		s += " (serializable)"
	}
	if op.Member != 0 {
		s += fmt.Sprintf(" from %x", op.Member)
	}
	if op.Error != "" && op.Resp.Unknown {
		s += " (" + op.Error + ")"
	}
	return s
}

func (r Request) String() string {
	switch r.Kind {
	case LeaseGrant:
		return fmt.Sprintf("grant(%x, ttl %d)", r.Lease, r.TTL)
	case LeaseRevoke:
		return fmt.Sprintf("revoke(%x)", r.Lease)
	case LeaseExpire:
		return fmt.Sprintf("expire(%x)", r.Lease)
	}
	t := r.Txn
	if len(t.If) == 0 && len(t.Else) == 0 && len(t.Then) == 1 {
		return t.Then[0].String()
	}
	var b strings.Builder
	b.WriteString("txn(if ")
	for i, c := range t.If {
		if i > 0 {
			b.WriteString(" && ")
		}
		b.WriteString(c.String())
	}
	b.WriteString(" then ")
	writeOps(&b, t.Then)
	b.WriteString(" else ")
	writeOps(&b, t.Else)
	b.WriteString(")")
	return b.String()
}

func writeOps(b *strings.Builder, ops []TxnOp) {
	b.WriteString("[")
	for i, o := range ops {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.String())
	}
	b.WriteString("]")
}

func (o TxnOp) String() string {
	key := o.Key
	if o.End != "" {
		key = fmt.Sprintf("[%s, %q)", o.Key, o.End)
	}
	switch o.Kind {
	case Put:
		if o.Lease != 0 {
			return fmt.Sprintf("put(%s, %q, lease %x)", key, o.Value, o.Lease)
		}
		return fmt.Sprintf("put(%s, %q)", key, o.Value)
	case Delete:
		return fmt.Sprintf("delete(%s)", key)
	}
	return fmt.Sprintf("get(%s)", key)
}

func (c Compare) String() string {
	rel := [...]string{"==", "!=", "<", ">"}[c.Result]
	switch c.Target {
	case CompareValue:
		return fmt.Sprintf("value(%s) %s %q", c.Key, rel, c.Value)
	case CompareVersion:
		return fmt.Sprintf("version(%s) %s %d", c.Key, rel, c.Number)
	case CompareMod:
		return fmt.Sprintf("mod(%s) %s %d", c.Key, rel, c.Number)
	}
	return fmt.Sprintf("create(%s) %s %d", c.Key, rel, c.Number)
}

func (r Response) String() string {
	if r.Unknown {
		return "unknown"
	}
	if r.Err != "" {
		return "error " + r.Err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rev %d", r.Rev)
	if !r.Succeeded {
		b.WriteString(" else")
	}
	for _, res := range r.Results {
		if res.KVs != nil {
			fmt.Fprintf(&b, " %v", res.KVs)
		}
		if res.Deleted != 0 {
			fmt.Fprintf(&b, " deleted %d", res.Deleted)
		}
	}
	return b.String()
}
