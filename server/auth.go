package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/lifeboat-dev/lifeboat/server/backend"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Authentication and RBAC, etcd's model: users and roles in the backend's
// auth buckets (through snapkit/schema, so a restored db keeps them and
// etcd reads them), changed only by applied InternalRaftRequests, checked
// at apply for writes (with the user and auth revision the proposer put in
// the request header) and at the API for what is served locally.

const (
	rootUser = "root"
	rootRole = "root"
)

// errNoPasswordUser is etcd's error (it has no gRPC code of its own).
var errNoPasswordUser = errors.New("auth: authentication failed, password was given for no password user")

// authInfo is who a request is from, and the auth revision its token was
// issued at.
type authInfo struct {
	user     string
	revision uint64
}

// interval is a key range [start, end); a nil end is unbounded.
type interval struct{ start, end []byte }

// userPerms are a user's read and write ranges, merged over its roles.
type userPerms struct{ read, write []interval }

// authState is one version of the auth store; it is replaced, never
// changed, so readers need no lock.
type authState struct {
	be       *backend.Backend // the backend it was read from
	enabled  bool
	revision uint64
	users    map[string]*authpb.User
	roles    map[string]*authpb.Role
	perms    map[string]userPerms
}

// authStore holds the current authState and the token provider.
type authStore struct {
	state  atomic.Pointer[authState]
	loadMu sync.Mutex
	tokens tokenProvider
}

// auth returns the auth state of the current stores, reading it from the
// backend when the stores changed (start, snapshot install). As etcd, a
// backend with auth revision 0 gets revision 1.
func (s *Server) auth() (*authState, error) {
	st := s.st.Load()
	if st == nil {
		return nil, ErrStopped
	}
	if a := s.sec.auth.state.Load(); a != nil && a.be == st.be {
		return a, nil
	}
	s.sec.auth.loadMu.Lock()
	defer s.sec.auth.loadMu.Unlock()
	if a := s.sec.auth.state.Load(); a != nil && a.be == st.be {
		return a, nil
	}
	a, err := loadAuthState(st.be)
	if err != nil {
		return nil, err
	}
	s.sec.auth.state.Store(a)
	return a, nil
}

func loadAuthState(be *backend.Backend) (*authState, error) {
	a := &authState{be: be, users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}}
	bt := be.BatchTx()
	bt.Lock()
	defer bt.Unlock()
	tx, err := bt.Tx()
	if err != nil {
		return nil, fmt.Errorf("server: read auth: %w", err)
	}
	if a.enabled, err = schema.AuthEnabled(tx); err != nil {
		return nil, fmt.Errorf("server: read auth: %w", err)
	}
	if a.revision, err = schema.AuthRevision(tx); err != nil {
		return nil, fmt.Errorf("server: read auth: %w", err)
	}
	users, err := schema.Users(tx)
	if err != nil {
		return nil, fmt.Errorf("server: read auth users: %w", err)
	}
	for _, u := range users {
		a.users[string(u.Name)] = u
	}
	roles, err := schema.Roles(tx)
	if err != nil {
		return nil, fmt.Errorf("server: read auth roles: %w", err)
	}
	for _, r := range roles {
		a.roles[string(r.Name)] = r
	}
	if a.revision == 0 {
		a.revision = 1
		if err := schema.SetAuthRevision(tx, 1); err != nil {
			return nil, fmt.Errorf("server: write auth revision: %w", err)
		}
	}
	a.mergePerms()
	return a, nil
}

// clone copies the state for a change.
func (a *authState) clone() *authState {
	b := *a
	b.users = make(map[string]*authpb.User, len(a.users))
	for k, v := range a.users {
		b.users[k] = v
	}
	b.roles = make(map[string]*authpb.Role, len(a.roles))
	for k, v := range a.roles {
		b.roles[k] = v
	}
	return &b
}

func hasRootRole(u *authpb.User) bool { return slices.Contains(u.Roles, rootRole) }

// mergePerms computes every user's merged permission ranges.
func (a *authState) mergePerms() {
	a.perms = make(map[string]userPerms, len(a.users))
	for name, u := range a.users {
		var p userPerms
		for _, rn := range u.Roles {
			r := a.roles[rn]
			if r == nil {
				continue
			}
			for _, kp := range r.KeyPermission {
				iv := permInterval(kp.Key, kp.RangeEnd)
				switch kp.PermType {
				case authpb.READ:
					p.read = append(p.read, iv)
				case authpb.WRITE:
					p.write = append(p.write, iv)
				case authpb.READWRITE:
					p.read = append(p.read, iv)
					p.write = append(p.write, iv)
				}
			}
		}
		p.read, p.write = mergeIntervals(p.read), mergeIntervals(p.write)
		a.perms[name] = p
	}
}

// pointEnd is the end of the range holding key alone.
func pointEnd(key []byte) []byte { return append(append([]byte(nil), key...), 0) }

// permInterval is the range of a permission: one key without range end,
// from key on with range end "\x00", else [key, end).
func permInterval(key, end []byte) interval {
	switch {
	case len(end) == 0:
		return interval{key, pointEnd(key)}
	case len(end) == 1 && end[0] == 0:
		return interval{key, nil}
	}
	return interval{key, end}
}

// endLess orders range ends, nil (unbounded) last.
func endLess(a, b []byte) bool {
	if a == nil {
		return false
	}
	return b == nil || bytes.Compare(a, b) < 0
}

// mergeIntervals sorts and merges overlapping or touching ranges.
func mergeIntervals(ivs []interval) []interval {
	sort.Slice(ivs, func(i, j int) bool { return bytes.Compare(ivs[i].start, ivs[j].start) < 0 })
	var out []interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && (out[n-1].end == nil || bytes.Compare(iv.start, out[n-1].end) <= 0) {
			if endLess(out[n-1].end, iv.end) {
				out[n-1].end = iv.end
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// covers reports whether the merged ranges hold all of [key, end), or key
// alone without end; end "\x00" means every key from key on.
func covers(ivs []interval, key, end []byte) bool {
	want := permInterval(key, end)
	for _, iv := range ivs {
		if bytes.Compare(iv.start, want.start) <= 0 && !endLess(iv.end, want.end) {
			return true
		}
	}
	return false
}

// validPermRange is etcd's check of a permission's range.
func validPermRange(key, end []byte) bool {
	if len(key) == 0 {
		return false
	}
	if len(end) == 0 || (len(end) == 1 && end[0] == 0) {
		return true
	}
	return bytes.Compare(key, end) < 0
}

// opPermitted checks a key operation of ai, as etcd's isOpPermitted.
func (a *authState) opPermitted(ai *authInfo, key, end []byte, write bool) error {
	if !a.enabled {
		return nil
	}
	if ai == nil || ai.revision == 0 {
		return rpctypes.ErrGRPCUserEmpty
	}
	if ai.revision < a.revision {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	u := a.users[ai.user]
	if u == nil {
		return rpctypes.ErrGRPCPermissionDenied
	}
	if hasRootRole(u) {
		return nil
	}
	p := a.perms[ai.user]
	ivs := p.read
	if write {
		ivs = p.write
	}
	if covers(ivs, key, end) {
		return nil
	}
	return rpctypes.ErrGRPCPermissionDenied
}

func (a *authState) rangePermitted(ai *authInfo, key, end []byte) error {
	return a.opPermitted(ai, key, end, false)
}

func (a *authState) writePermitted(ai *authInfo, key, end []byte) error {
	return a.opPermitted(ai, key, end, true)
}

// adminPermitted checks that ai has the root role, as etcd's
// IsAdminPermitted.
func (a *authState) adminPermitted(ai *authInfo) error {
	if !a.enabled {
		return nil
	}
	if ai == nil || ai.user == "" {
		return rpctypes.ErrGRPCUserEmpty
	}
	u := a.users[ai.user]
	if u == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	if !hasRootRole(u) {
		return rpctypes.ErrGRPCPermissionDenied
	}
	return nil
}

// authInfoFromCtx is who a request is from: the user of its token (gRPC
// metadata "token", or "authorization" from the gateway), else with
// --client-cert-auth the common name of its verified client certificate.
// A context that did not come through the gRPC server is the member's own
// (health checks, auto compaction, lease expiry) and acts as root, as
// etcd's WithRoot. nil means no user: auth is disabled or none was given.
func (s *Server) authInfoFromCtx(ctx context.Context) (*authInfo, error) {
	a, err := s.auth()
	if err != nil {
		return nil, err
	}
	if !a.enabled {
		return nil, nil
	}
	// Looked up one key at a time: metadata.FromIncomingContext would copy
	// every header of every request.
	if token := incomingToken(ctx); token != "" {
		ai, ok := s.sec.auth.tokens.info(ctx, token, a.revision)
		if !ok {
			return nil, rpctypes.ErrGRPCInvalidAuthToken
		}
		return ai, nil
	}
	if _, ok := metadata.FromIncomingContext(ctx); !ok {
		return &authInfo{user: rootUser, revision: a.revision}, nil
	}
	if !s.cfg.ClientTLSInfo.ClientCertAuth {
		return nil, nil
	}
	return certAuthInfo(ctx, a.revision), nil
}

// incomingToken is the request's auth token: gRPC metadata "token", else
// "authorization" (from the gateway), the first of them present; "" if
// it has neither.
func incomingToken(ctx context.Context) string {
	for _, k := range []string{tokenMetadataKey, "authorization"} {
		if v := metadata.ValueFromIncomingContext(ctx, k); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// certAuthInfo is the common name of the verified client certificate, as
// etcd's AuthInfoFromTLS.
func certAuthInfo(ctx context.Context, revision uint64) *authInfo {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	for _, chain := range ti.State.VerifiedChains {
		if len(chain) > 0 && chain[0].Subject.CommonName != "" {
			return &authInfo{user: chain[0].Subject.CommonName, revision: revision}
		}
	}
	return nil
}

// authMutation is one applied change of the auth store: fn changes the
// cloned state and the backend in tx.
func (s *Server) authMutation(st *stores, bump bool, fn func(a *authState, tx *bolt.Tx) error) error {
	cur, err := s.auth()
	if err != nil {
		return err
	}
	next := cur.clone()
	err = s.withTx(st, func(tx *bolt.Tx) error {
		if err := fn(next, tx); err != nil {
			return err
		}
		if bump {
			next.revision++
			return schema.SetAuthRevision(tx, next.revision)
		}
		return nil
	})
	if err != nil {
		return err
	}
	next.mergePerms()
	s.sec.auth.state.Store(next)
	return nil
}

// userWithout returns u without role.
func userWithout(u *authpb.User, role string) *authpb.User {
	out := &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options}
	for _, r := range u.Roles {
		if r != role {
			out.Roles = append(out.Roles, r)
		}
	}
	return out
}

// parseAuthToken splits --auth-token "type,k=v,..." as etcd does.
func parseAuthToken(s string) (string, map[string]string, error) {
	parts := strings.Split(s, ",")
	opts := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return "", nil, fmt.Errorf("--auth-token %q: option %q is not key=value", s, p)
		}
		if _, dup := opts[k]; dup {
			return "", nil, fmt.Errorf("--auth-token %q: option %s given twice", s, k)
		}
		opts[k] = v
	}
	return parts[0], opts, nil
}
