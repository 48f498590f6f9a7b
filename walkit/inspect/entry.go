package inspect

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

// Options choose how entries are printed.
type Options struct {
	// Hex prints every key, value and path as hex instead of text/base64.
	Hex bool
}

// ID is a member, lease or request ID; it prints as lowercase hex with no
// padding, as etcd prints IDs.
type ID uint64

func (id ID) String() string { return strconv.FormatUint(uint64(id), 16) }

// MarshalJSON writes the ID as a hex string: JSON numbers cannot hold 64 bits.
func (id ID) MarshalJSON() ([]byte, error) { return json.Marshal(id.String()) }

// Entry is one raft entry decoded for people. Exactly one of the request
// fields is set for a decoded request; none for a no-op.
type Entry struct {
	Term  uint64 `json:"term"`
	Index uint64 `json:"index"`
	Type  Type   `json:"type"`
	Size  int    `json:"size"` // bytes of entry data

	Header          *Header           `json:"header,omitempty"`
	Range           *Range            `json:"range,omitempty"`
	Put             *Put              `json:"put,omitempty"`
	DeleteRange     *DeleteRange      `json:"deleteRange,omitempty"`
	Txn             *Txn              `json:"txn,omitempty"`
	Compaction      *Compaction       `json:"compaction,omitempty"`
	LeaseGrant      *Lease            `json:"leaseGrant,omitempty"`
	LeaseRevoke     *Lease            `json:"leaseRevoke,omitempty"`
	LeaseCheckpoint []Lease           `json:"leaseCheckpoint,omitempty"`
	Alarm           *Alarm            `json:"alarm,omitempty"`
	Auth            *Auth             `json:"auth,omitempty"`
	Version         string            `json:"version,omitempty"` // cluster_version_set, downgrade_version_test
	MemberAttr      *MemberAttributes `json:"memberAttributes,omitempty"`
	Downgrade       *Downgrade        `json:"downgrade,omitempty"`
	Request         *V2Request        `json:"request,omitempty"`
	ConfChange      *ConfChange       `json:"confChange,omitempty"`
	// Error says why data that should decode did not.
	Error string `json:"error,omitempty"`
}

// Header is the InternalRaftRequest header.
type Header struct {
	ID           ID     `json:"id"`
	Username     string `json:"username,omitempty"`
	AuthRevision uint64 `json:"authRevision,omitempty"`
}

// Range is a RangeRequest (in a txn, or a serialized read).
type Range struct {
	Key          Bytes `json:"key"`
	RangeEnd     Bytes `json:"rangeEnd,omitzero"`
	Limit        int64 `json:"limit,omitempty"`
	Revision     int64 `json:"revision,omitempty"`
	Serializable bool  `json:"serializable,omitempty"`
	KeysOnly     bool  `json:"keysOnly,omitempty"`
	CountOnly    bool  `json:"countOnly,omitempty"`
}

// Put is a PutRequest.
type Put struct {
	Key         Bytes `json:"key"`
	Value       Bytes `json:"value,omitzero"`
	ValueSize   int   `json:"valueSize"`
	Lease       ID    `json:"lease,omitempty"`
	PrevKV      bool  `json:"prevKv,omitempty"`
	IgnoreValue bool  `json:"ignoreValue,omitempty"`
	IgnoreLease bool  `json:"ignoreLease,omitempty"`
}

// DeleteRange is a DeleteRangeRequest.
type DeleteRange struct {
	Key      Bytes `json:"key"`
	RangeEnd Bytes `json:"rangeEnd,omitzero"`
	PrevKV   bool  `json:"prevKv,omitempty"`
}

// Txn is a TxnRequest.
type Txn struct {
	Compare []Compare `json:"compare,omitempty"`
	Success []Op      `json:"success,omitempty"`
	Failure []Op      `json:"failure,omitempty"`
}

// Compare is one txn condition: Target of Key Result Operand.
type Compare struct {
	Key      Bytes  `json:"key"`
	RangeEnd Bytes  `json:"rangeEnd,omitzero"`
	Target   string `json:"target"` // VERSION, CREATE, MOD, VALUE, LEASE
	Result   string `json:"result"` // EQUAL, GREATER, LESS, NOT_EQUAL
	Operand  any    `json:"operand"`
}

// Op is one operation of a txn branch; exactly one field is set.
type Op struct {
	Range       *Range       `json:"range,omitempty"`
	Put         *Put         `json:"put,omitempty"`
	DeleteRange *DeleteRange `json:"deleteRange,omitempty"`
	Txn         *Txn         `json:"txn,omitempty"`
}

// Compaction is a CompactionRequest.
type Compaction struct {
	Revision int64 `json:"revision"`
	Physical bool  `json:"physical,omitempty"`
}

// Lease is a lease grant (ID, TTL), revoke (ID) or checkpoint (ID,
// RemainingTTL).
type Lease struct {
	ID           ID    `json:"id"`
	TTL          int64 `json:"ttl,omitempty"`
	RemainingTTL int64 `json:"remainingTtl,omitempty"`
}

// Alarm is an AlarmRequest.
type Alarm struct {
	Action   string `json:"action"`
	MemberID ID     `json:"memberId"`
	Alarm    string `json:"alarm"`
}

// Auth is any auth request. Passwords, hashes and tokens are left out on
// purpose.
type Auth struct {
	User       string `json:"user,omitempty"`
	Role       string `json:"role,omitempty"`
	Perm       string `json:"perm,omitempty"` // READ, WRITE, READWRITE
	Key        Bytes  `json:"key,omitzero"`
	RangeEnd   Bytes  `json:"rangeEnd,omitzero"`
	NoPassword bool   `json:"noPassword,omitempty"`
}

// MemberAttributes is a ClusterMemberAttrSetRequest.
type MemberAttributes struct {
	MemberID   ID       `json:"memberId"`
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

// Downgrade is a DowngradeInfoSetRequest.
type Downgrade struct {
	Enabled bool   `json:"enabled"`
	Version string `json:"version,omitempty"`
}

// V2Request is the v2 etcdserverpb.Request that etcd 3.5 still proposes for
// member attributes and the cluster version.
type V2Request struct {
	ID         ID     `json:"id"`
	Method     string `json:"method"`
	Path       Bytes  `json:"path"`
	Val        Bytes  `json:"val,omitzero"`
	Dir        bool   `json:"dir,omitempty"`
	PrevValue  Bytes  `json:"prevValue,omitzero"`
	PrevIndex  uint64 `json:"prevIndex,omitempty"`
	PrevExist  *bool  `json:"prevExist,omitempty"`
	Expiration int64  `json:"expiration,omitempty"`
	Wait       bool   `json:"wait,omitempty"`
	Since      uint64 `json:"since,omitempty"`
	Recursive  bool   `json:"recursive,omitempty"`
	Sorted     bool   `json:"sorted,omitempty"`
	Quorum     bool   `json:"quorum,omitempty"`
	Time       int64  `json:"time,omitempty"`
	Stream     bool   `json:"stream,omitempty"`
	Refresh    *bool  `json:"refresh,omitempty"`
}

// ConfChange is a raft ConfChange, with the member etcd put in its context.
// A ConfChangeV2 fills Changes instead of Type and NodeID.
type ConfChange struct {
	ID      uint64   `json:"id"`
	Type    string   `json:"type,omitempty"` // AddNode, RemoveNode, UpdateNode, AddLearnerNode
	NodeID  ID       `json:"nodeId,omitempty"`
	Changes []Change `json:"changes,omitempty"`
	Member  *Member  `json:"member,omitempty"`
	// Context holds context bytes that are not a member's JSON.
	Context Bytes `json:"context,omitzero"`
}

// Change is one step of a ConfChangeV2.
type Change struct {
	Type   string `json:"type"`
	NodeID ID     `json:"nodeId"`
}

// Member is the member JSON etcd stores in a ConfChange context (see
// FORMATS.md §9). IsPromote marks a learner promotion.
type Member struct {
	ID         ID       `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
	IsPromote  bool     `json:"isPromote,omitempty"`
}

// memberJSON is etcd's spelling of Member, whose id is a decimal number.
type memberJSON struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
	IsPromote  bool     `json:"isPromote"`
}

// Decode explains one raft entry. It never fails: data that does not
// decode gives an entry of type UnknownNormal with Error set.
func Decode(ent raftpb.Entry, opt Options) Entry {
	e := Entry{Term: ent.Term, Index: ent.Index, Size: len(ent.Data)}
	switch ent.Type {
	case raftpb.EntryConfChange:
		e.Type = TypeConfigChange
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(ent.Data); err != nil {
			e.Error = fmt.Sprintf("confchange: %v", err)
			return e
		}
		e.ConfChange = &ConfChange{
			ID:     cc.ID,
			Type:   strings.TrimPrefix(cc.Type.String(), "ConfChange"),
			NodeID: ID(cc.NodeID),
		}
		e.ConfChange.setContext(cc.Context, opt)
	case raftpb.EntryConfChangeV2:
		e.Type = TypeConfigChangeV2
		var cc raftpb.ConfChangeV2
		if err := cc.Unmarshal(ent.Data); err != nil {
			e.Error = fmt.Sprintf("confchange v2: %v", err)
			return e
		}
		e.ConfChange = &ConfChange{}
		for _, c := range cc.Changes {
			e.ConfChange.Changes = append(e.ConfChange.Changes,
				Change{Type: strings.TrimPrefix(c.Type.String(), "ConfChange"), NodeID: ID(c.NodeID)})
		}
		e.ConfChange.setContext(cc.Context, opt)
	case raftpb.EntryNormal:
		e.decodeNormal(ent.Data, opt)
	default:
		e.Type = TypeUnknown
		e.Error = fmt.Sprintf("raft entry type %d", ent.Type)
	}
	return e
}

// setContext decodes a member's JSON from a ConfChange context, keeping
// the bytes as they are when they are something else.
func (c *ConfChange) setContext(ctx []byte, opt Options) {
	if len(ctx) == 0 {
		return
	}
	var m memberJSON
	if err := json.Unmarshal(ctx, &m); err != nil || m.ID == 0 {
		c.Context = Bytes{Raw: ctx, Hex: opt.Hex}
		return
	}
	c.Member = &Member{ID: ID(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs,
		IsLearner: m.IsLearner, IsPromote: m.IsPromote}
}

// decodeNormal follows etcd's apply path: empty data is a leader no-op,
// then an InternalRaftRequest, then the v2 Request.
func (e *Entry) decodeNormal(data []byte, opt Options) {
	if len(data) == 0 {
		e.Type = TypeNoOp
		return
	}
	var rr etcdserverpb.InternalRaftRequest
	irrErr := rr.Unmarshal(data)
	if irrErr == nil && e.setIRR(&rr, opt) {
		return
	}
	var r etcdserverpb.Request
	if err := r.Unmarshal(data); err == nil && r.Method != "" {
		e.Type = TypeRequest
		e.Request = v2Request(&r, opt)
		return
	}
	if irrErr == nil { // a valid message that carries no request we know
		e.Type = TypeInternalRaftRequest
		e.setHeader(&rr)
		return
	}
	e.Type = TypeUnknownNormal
	e.Error = fmt.Sprintf("neither InternalRaftRequest nor v2 Request: %v", irrErr)
}

func (e *Entry) setHeader(rr *etcdserverpb.InternalRaftRequest) {
	switch {
	case rr.Header != nil:
		e.Header = &Header{ID: ID(rr.Header.ID), Username: rr.Header.Username, AuthRevision: rr.Header.AuthRevision}
	case rr.ID != 0:
		e.Header = &Header{ID: ID(rr.ID)}
	}
}

// setIRR fills e from the request rr carries and reports whether it
// carried one.
func (e *Entry) setIRR(rr *etcdserverpb.InternalRaftRequest, opt Options) bool {
	b := func(raw []byte) Bytes { return Bytes{Raw: raw, Hex: opt.Hex} }
	e.setHeader(rr)
	switch {
	case rr.Range != nil:
		e.Type, e.Range = TypeIRRRange, rangeView(rr.Range, opt)
	case rr.Put != nil:
		e.Type, e.Put = TypeIRRPut, putView(rr.Put, opt)
	case rr.DeleteRange != nil:
		e.Type, e.DeleteRange = TypeIRRDeleteRange, deleteView(rr.DeleteRange, opt)
	case rr.Txn != nil:
		e.Type, e.Txn = TypeIRRTxn, txnView(rr.Txn, opt)
	case rr.Compaction != nil:
		e.Type, e.Compaction = TypeIRRCompaction, &Compaction{Revision: rr.Compaction.Revision, Physical: rr.Compaction.Physical}
	case rr.LeaseGrant != nil:
		e.Type, e.LeaseGrant = TypeIRRLeaseGrant, &Lease{ID: ID(rr.LeaseGrant.ID), TTL: rr.LeaseGrant.TTL}
	case rr.LeaseRevoke != nil:
		e.Type, e.LeaseRevoke = TypeIRRLeaseRevoke, &Lease{ID: ID(rr.LeaseRevoke.ID)}
	case rr.LeaseCheckpoint != nil:
		e.Type = TypeIRRLeaseCheckpoint
		for _, c := range rr.LeaseCheckpoint.Checkpoints {
			e.LeaseCheckpoint = append(e.LeaseCheckpoint, Lease{ID: ID(c.ID), RemainingTTL: c.Remaining_TTL})
		}
	case rr.Alarm != nil:
		e.Type, e.Alarm = TypeIRRAlarm, &Alarm{Action: rr.Alarm.Action.String(), MemberID: ID(rr.Alarm.MemberID), Alarm: rr.Alarm.Alarm.String()}
	case rr.V2 != nil:
		e.Type, e.Request = TypeIRRV2, v2Request(rr.V2, opt)
	case rr.AuthEnable != nil:
		e.Type, e.Auth = TypeIRRAuthEnable, &Auth{}
	case rr.AuthDisable != nil:
		e.Type, e.Auth = TypeIRRAuthDisable, &Auth{}
	case rr.AuthStatus != nil:
		e.Type, e.Auth = TypeIRRAuthStatus, &Auth{}
	case rr.Authenticate != nil:
		e.Type, e.Auth = TypeIRRAuthenticate, &Auth{User: rr.Authenticate.Name}
	case rr.AuthUserAdd != nil:
		e.Type, e.Auth = TypeIRRAuthUserAdd, &Auth{User: rr.AuthUserAdd.Name,
			NoPassword: rr.AuthUserAdd.Options != nil && rr.AuthUserAdd.Options.NoPassword}
	case rr.AuthUserDelete != nil:
		e.Type, e.Auth = TypeIRRAuthUserDelete, &Auth{User: rr.AuthUserDelete.Name}
	case rr.AuthUserGet != nil:
		e.Type, e.Auth = TypeIRRAuthUserGet, &Auth{User: rr.AuthUserGet.Name}
	case rr.AuthUserChangePassword != nil:
		e.Type, e.Auth = TypeIRRAuthUserChangePassword, &Auth{User: rr.AuthUserChangePassword.Name}
	case rr.AuthUserGrantRole != nil:
		e.Type, e.Auth = TypeIRRAuthUserGrantRole, &Auth{User: rr.AuthUserGrantRole.User, Role: rr.AuthUserGrantRole.Role}
	case rr.AuthUserRevokeRole != nil:
		e.Type, e.Auth = TypeIRRAuthUserRevokeRole, &Auth{User: rr.AuthUserRevokeRole.Name, Role: rr.AuthUserRevokeRole.Role}
	case rr.AuthUserList != nil:
		e.Type, e.Auth = TypeIRRAuthUserList, &Auth{}
	case rr.AuthRoleList != nil:
		e.Type, e.Auth = TypeIRRAuthRoleList, &Auth{}
	case rr.AuthRoleAdd != nil:
		e.Type, e.Auth = TypeIRRAuthRoleAdd, &Auth{Role: rr.AuthRoleAdd.Name}
	case rr.AuthRoleDelete != nil:
		e.Type, e.Auth = TypeIRRAuthRoleDelete, &Auth{Role: rr.AuthRoleDelete.Role}
	case rr.AuthRoleGet != nil:
		e.Type, e.Auth = TypeIRRAuthRoleGet, &Auth{Role: rr.AuthRoleGet.Role}
	case rr.AuthRoleGrantPermission != nil:
		a := &Auth{Role: rr.AuthRoleGrantPermission.Name}
		if p := rr.AuthRoleGrantPermission.Perm; p != nil {
			a.Perm, a.Key, a.RangeEnd = p.PermType.String(), b(p.Key), b(p.RangeEnd)
		}
		e.Type, e.Auth = TypeIRRAuthRoleGrantPermission, a
	case rr.AuthRoleRevokePermission != nil:
		p := rr.AuthRoleRevokePermission
		e.Type, e.Auth = TypeIRRAuthRoleRevokePermission, &Auth{Role: p.Role, Key: b(p.Key), RangeEnd: b(p.RangeEnd)}
	case rr.ClusterVersionSet != nil:
		e.Type, e.Version = TypeIRRClusterVersionSet, rr.ClusterVersionSet.Ver
	case rr.ClusterMemberAttrSet != nil:
		m := &MemberAttributes{MemberID: ID(rr.ClusterMemberAttrSet.Member_ID)}
		if a := rr.ClusterMemberAttrSet.MemberAttributes; a != nil {
			m.Name, m.ClientURLs = a.Name, a.ClientUrls
		}
		e.Type, e.MemberAttr = TypeIRRClusterMemberAttrSet, m
	case rr.DowngradeInfoSet != nil:
		e.Type, e.Downgrade = TypeIRRDowngradeInfoSet, &Downgrade{Enabled: rr.DowngradeInfoSet.Enabled, Version: rr.DowngradeInfoSet.Ver}
	case rr.DowngradeVersionTest != nil:
		e.Type, e.Version = TypeIRRDowngradeVersionTest, rr.DowngradeVersionTest.Ver
	default:
		e.Header = nil
		return false
	}
	return true
}

func rangeView(r *etcdserverpb.RangeRequest, opt Options) *Range {
	return &Range{Key: Bytes{r.Key, opt.Hex}, RangeEnd: Bytes{r.RangeEnd, opt.Hex}, Limit: r.Limit,
		Revision: r.Revision, Serializable: r.Serializable, KeysOnly: r.KeysOnly, CountOnly: r.CountOnly}
}

func putView(p *etcdserverpb.PutRequest, opt Options) *Put {
	return &Put{Key: Bytes{p.Key, opt.Hex}, Value: Bytes{p.Value, opt.Hex}, ValueSize: len(p.Value),
		Lease: ID(p.Lease), PrevKV: p.PrevKv, IgnoreValue: p.IgnoreValue, IgnoreLease: p.IgnoreLease}
}

func deleteView(d *etcdserverpb.DeleteRangeRequest, opt Options) *DeleteRange {
	return &DeleteRange{Key: Bytes{d.Key, opt.Hex}, RangeEnd: Bytes{d.RangeEnd, opt.Hex}, PrevKV: d.PrevKv}
}

func txnView(t *etcdserverpb.TxnRequest, opt Options) *Txn {
	v := &Txn{}
	for _, c := range t.Compare {
		cv := Compare{Key: Bytes{c.Key, opt.Hex}, RangeEnd: Bytes{c.RangeEnd, opt.Hex},
			Target: c.Target.String(), Result: c.Result.String()}
		switch u := c.TargetUnion.(type) {
		case *etcdserverpb.Compare_Version:
			cv.Operand = u.Version
		case *etcdserverpb.Compare_CreateRevision:
			cv.Operand = u.CreateRevision
		case *etcdserverpb.Compare_ModRevision:
			cv.Operand = u.ModRevision
		case *etcdserverpb.Compare_Value:
			cv.Operand = Bytes{u.Value, opt.Hex}
		case *etcdserverpb.Compare_Lease:
			cv.Operand = ID(u.Lease)
		}
		v.Compare = append(v.Compare, cv)
	}
	v.Success = opsView(t.Success, opt)
	v.Failure = opsView(t.Failure, opt)
	return v
}

func opsView(ops []*etcdserverpb.RequestOp, opt Options) []Op {
	var out []Op
	for _, op := range ops {
		var o Op
		switch r := op.Request.(type) {
		case *etcdserverpb.RequestOp_RequestRange:
			o.Range = rangeView(r.RequestRange, opt)
		case *etcdserverpb.RequestOp_RequestPut:
			o.Put = putView(r.RequestPut, opt)
		case *etcdserverpb.RequestOp_RequestDeleteRange:
			o.DeleteRange = deleteView(r.RequestDeleteRange, opt)
		case *etcdserverpb.RequestOp_RequestTxn:
			o.Txn = txnView(r.RequestTxn, opt)
		}
		out = append(out, o)
	}
	return out
}

func v2Request(r *etcdserverpb.Request, opt Options) *V2Request {
	return &V2Request{ID: ID(r.ID), Method: r.Method, Path: Bytes{[]byte(r.Path), opt.Hex},
		Val: Bytes{[]byte(r.Val), opt.Hex}, Dir: r.Dir, PrevValue: Bytes{[]byte(r.PrevValue), opt.Hex},
		PrevIndex: r.PrevIndex, PrevExist: r.PrevExist, Expiration: r.Expiration, Wait: r.Wait,
		Since: r.Since, Recursive: r.Recursive, Sorted: r.Sorted, Quorum: r.Quorum, Time: r.Time,
		Stream: r.Stream, Refresh: r.Refresh}
}
