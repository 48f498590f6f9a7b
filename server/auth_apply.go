package server

import (
	"bytes"
	"encoding/base64"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"

	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// applyAuth is the auth part of applying r, as etcd's authApplierV3: it
// checks r against the user and auth revision in its header and, for an
// auth request, applies it. handled is false for a permitted request that
// is not an auth request: the caller applies it.
func (s *Server) applyAuth(st *stores, r *pb.InternalRaftRequest) (res result, handled bool) {
	a, err := s.auth()
	if err != nil {
		return result{err: err}, true
	}
	var ai authInfo
	if r.Header != nil {
		ai = authInfo{user: r.Header.Username, revision: r.Header.AuthRevision}
	}
	if needsAdmin(r) {
		if err := a.adminPermitted(&ai); err != nil {
			return result{err: err}, true
		}
	}
	if err := s.checkApplyPermission(st, a, &ai, r); err != nil {
		return result{err: err}, true
	}
	resp, err, handled := s.applyAuthRequest(st, a, &ai, r)
	return result{resp, err}, handled
}

// needsAdmin lists the requests only root may make, as etcd's.
func needsAdmin(r *pb.InternalRaftRequest) bool {
	return r.AuthEnable != nil || r.AuthDisable != nil || r.AuthStatus != nil || r.AuthUserAdd != nil ||
		r.AuthUserDelete != nil || r.AuthUserChangePassword != nil || r.AuthUserGrantRole != nil ||
		r.AuthUserRevokeRole != nil || r.AuthRoleAdd != nil || r.AuthRoleGrantPermission != nil ||
		r.AuthRoleRevokePermission != nil || r.AuthRoleDelete != nil || r.AuthUserList != nil || r.AuthRoleList != nil
}

// checkApplyPermission checks the key permissions of a KV or lease request.
func (s *Server) checkApplyPermission(st *stores, a *authState, ai *authInfo, r *pb.InternalRaftRequest) error {
	if !a.enabled {
		return nil
	}
	switch {
	case r.Range != nil:
		return a.rangePermitted(ai, r.Range.Key, r.Range.RangeEnd)
	case r.Put != nil:
		return s.checkPut(st, a, ai, r.Put)
	case r.DeleteRange != nil:
		return checkDelete(a, ai, r.DeleteRange)
	case r.Txn != nil:
		return s.checkTxnAuth(st, a, ai, r.Txn)
	case r.LeaseRevoke != nil:
		return s.checkLeaseKeys(st, a, ai, r.LeaseRevoke.ID)
	}
	return nil
}

func (s *Server) checkPut(st *stores, a *authState, ai *authInfo, p *pb.PutRequest) error {
	if err := a.writePermitted(ai, p.Key, nil); err != nil {
		return err
	}
	// A lease whose keys the user may not write cannot be revoked by it,
	// so it may not attach a key to it either.
	if err := s.checkLeaseKeys(st, a, ai, p.Lease); err != nil {
		return err
	}
	if p.PrevKv {
		return a.rangePermitted(ai, p.Key, nil)
	}
	return nil
}

func checkDelete(a *authState, ai *authInfo, d *pb.DeleteRangeRequest) error {
	if err := a.writePermitted(ai, d.Key, d.RangeEnd); err != nil {
		return err
	}
	if d.PrevKv {
		return a.rangePermitted(ai, d.Key, d.RangeEnd)
	}
	return nil
}

// checkLeaseKeys checks that ai may write every key attached to lease id.
func (s *Server) checkLeaseKeys(st *stores, a *authState, ai *authInfo, id int64) error {
	if id == 0 || a.adminPermitted(ai) == nil {
		return nil
	}
	keys, _ := st.lessor.Keys(id)
	for _, k := range keys {
		if err := a.writePermitted(ai, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// checkTxnAuth checks every compare and every operation of both branches,
// nested transactions included.
func (s *Server) checkTxnAuth(st *stores, a *authState, ai *authInfo, t *pb.TxnRequest) error {
	for _, c := range t.Compare {
		if err := a.rangePermitted(ai, c.Key, c.RangeEnd); err != nil {
			return err
		}
	}
	for _, op := range slices.Concat(t.Success, t.Failure) {
		var err error
		switch {
		case op.GetRequestRange() != nil:
			err = a.rangePermitted(ai, op.GetRequestRange().Key, op.GetRequestRange().RangeEnd)
		case op.GetRequestPut() != nil:
			err = s.checkPut(st, a, ai, op.GetRequestPut())
		case op.GetRequestDeleteRange() != nil:
			err = checkDelete(a, ai, op.GetRequestDeleteRange())
		case op.GetRequestTxn() != nil:
			err = s.checkTxnAuth(st, a, ai, op.GetRequestTxn())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// authHeader is the header of an applied auth response; the API fills the
// rest.
func authHeader(st *stores) *pb.ResponseHeader { return &pb.ResponseHeader{Revision: st.kv.Rev()} }

// applyAuthRequest applies the auth requests; ok is false for any other.
func (s *Server) applyAuthRequest(st *stores, a *authState, ai *authInfo, r *pb.InternalRaftRequest) (resp any, err error, ok bool) {
	h := authHeader(st)
	switch {
	case r.AuthEnable != nil:
		return &pb.AuthEnableResponse{Header: h}, s.applyAuthEnable(st, a), true
	case r.AuthDisable != nil:
		if !a.enabled {
			return &pb.AuthDisableResponse{Header: h}, nil, true
		}
		err := s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
			n.enabled = false
			return schema.SetAuthEnabled(tx, false)
		})
		if err == nil {
			s.sec.auth.tokens.disable()
			s.lg.Info("disabled authentication")
		}
		return &pb.AuthDisableResponse{Header: h}, err, true
	case r.AuthStatus != nil:
		return &pb.AuthStatusResponse{Header: h, Enabled: a.enabled, AuthRevision: a.revision}, nil, true
	case r.Authenticate != nil:
		tok, err := s.applyAuthenticate(st, a, r.Authenticate)
		return &pb.AuthenticateResponse{Header: h, Token: tok}, err, true
	case r.AuthUserAdd != nil:
		return &pb.AuthUserAddResponse{Header: h}, s.applyUserAdd(st, a, r.AuthUserAdd), true
	case r.AuthUserDelete != nil:
		return &pb.AuthUserDeleteResponse{Header: h}, s.applyUserDelete(st, a, r.AuthUserDelete.Name), true
	case r.AuthUserChangePassword != nil:
		return &pb.AuthUserChangePasswordResponse{Header: h}, s.applyChangePassword(st, a, r.AuthUserChangePassword), true
	case r.AuthUserGrantRole != nil:
		return &pb.AuthUserGrantRoleResponse{Header: h}, s.applyGrantRole(st, a, r.AuthUserGrantRole), true
	case r.AuthUserRevokeRole != nil:
		return &pb.AuthUserRevokeRoleResponse{Header: h}, s.applyRevokeRole(st, a, r.AuthUserRevokeRole), true
	case r.AuthUserGet != nil:
		// The user itself may read its roles.
		if err := a.adminPermitted(ai); err != nil && r.AuthUserGet.Name != ai.user {
			return nil, err, true
		}
		u := a.users[r.AuthUserGet.Name]
		if u == nil {
			return nil, rpctypes.ErrGRPCUserNotFound, true
		}
		return &pb.AuthUserGetResponse{Header: h, Roles: slices.Clone(u.Roles)}, nil, true
	case r.AuthUserList != nil:
		resp := &pb.AuthUserListResponse{Header: h, Users: []string{}}
		for name := range a.users {
			resp.Users = append(resp.Users, name)
		}
		sort.Strings(resp.Users)
		return resp, nil, true
	case r.AuthRoleAdd != nil:
		return &pb.AuthRoleAddResponse{Header: h}, s.applyRoleAdd(st, a, r.AuthRoleAdd.Name), true
	case r.AuthRoleDelete != nil:
		return &pb.AuthRoleDeleteResponse{Header: h}, s.applyRoleDelete(st, a, r.AuthRoleDelete.Role), true
	case r.AuthRoleGet != nil:
		// A user may read the roles it has.
		if err := a.adminPermitted(ai); err != nil && !(a.users[ai.user] != nil && slices.Contains(a.users[ai.user].Roles, r.AuthRoleGet.Role)) {
			return nil, err, true
		}
		role := a.roles[r.AuthRoleGet.Role]
		if role == nil {
			return nil, rpctypes.ErrGRPCRoleNotFound, true
		}
		resp := &pb.AuthRoleGetResponse{Header: h}
		if r.AuthRoleGet.Role == rootRole {
			resp.Perm = []*authpb.Permission{{PermType: authpb.READWRITE, Key: []byte{}, RangeEnd: []byte{0}}}
		} else {
			resp.Perm = slices.Clone(role.KeyPermission)
		}
		return resp, nil, true
	case r.AuthRoleList != nil:
		resp := &pb.AuthRoleListResponse{Header: h, Roles: []string{}}
		for name := range a.roles {
			resp.Roles = append(resp.Roles, name)
		}
		sort.Strings(resp.Roles)
		return resp, nil, true
	case r.AuthRoleGrantPermission != nil:
		return &pb.AuthRoleGrantPermissionResponse{Header: h}, s.applyGrantPermission(st, a, r.AuthRoleGrantPermission), true
	case r.AuthRoleRevokePermission != nil:
		return &pb.AuthRoleRevokePermissionResponse{Header: h}, s.applyRevokePermission(st, a, r.AuthRoleRevokePermission), true
	}
	return nil, nil, false
}

func (s *Server) applyAuthEnable(st *stores, a *authState) error {
	if a.enabled {
		return nil
	}
	root := a.users[rootUser]
	if root == nil {
		return rpctypes.ErrGRPCRootUserNotExist
	}
	if !hasRootRole(root) {
		return rpctypes.ErrGRPCRootRoleNotExist
	}
	err := s.authMutation(st, false, func(n *authState, tx *bolt.Tx) error {
		n.enabled = true
		return schema.SetAuthEnabled(tx, true)
	})
	if err == nil {
		s.lg.Info("enabled authentication")
	}
	return err
}

// applyAuthenticate issues a token once the API has checked the password;
// every member assigns it (simple tokens live in each member's memory).
func (s *Server) applyAuthenticate(st *stores, a *authState, r *pb.InternalAuthenticateRequest) (string, error) {
	if !a.enabled {
		return "", rpctypes.ErrGRPCAuthNotEnabled
	}
	u := a.users[r.Name]
	if u == nil || (u.Options != nil && u.Options.NoPassword) {
		return "", rpctypes.ErrGRPCAuthFailed
	}
	return s.sec.auth.tokens.assign(r.Name, a.revision, st.kv.ApplyingIndex(), r.SimpleToken)
}

// password is the bcrypt hash an entry carries (etcd 3.5 on), or, for an
// entry of an older etcd, the hash of its clear password.
func (s *Server) password(plain, hashed string) ([]byte, error) {
	if plain != "" && hashed == "" {
		return bcrypt.GenerateFromPassword([]byte(plain), s.bcryptCost())
	}
	b, err := base64.StdEncoding.DecodeString(hashed)
	if err != nil {
		return nil, errNoPasswordUser
	}
	return b, nil
}

func (s *Server) applyUserAdd(st *stores, a *authState, r *pb.AuthUserAddRequest) error {
	if r.Name == "" {
		return rpctypes.ErrGRPCUserEmpty
	}
	if a.users[r.Name] != nil {
		return rpctypes.ErrGRPCUserAlreadyExist
	}
	opts := r.Options
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	u := &authpb.User{Name: []byte(r.Name), Options: opts}
	if !opts.NoPassword {
		pw, err := s.password(r.Password, r.HashedPassword)
		if err != nil {
			return err
		}
		u.Password = pw
	}
	return s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		n.users[r.Name] = u
		return schema.PutUser(tx, u)
	})
}

func (s *Server) applyUserDelete(st *stores, a *authState, name string) error {
	if a.enabled && name == rootUser {
		return rpctypes.ErrGRPCInvalidAuthMgmt
	}
	if a.users[name] == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	err := s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		delete(n.users, name)
		return schema.DeleteUser(tx, name)
	})
	if err == nil {
		s.sec.auth.tokens.invalidateUser(name)
	}
	return err
}

func (s *Server) applyChangePassword(st *stores, a *authState, r *pb.AuthUserChangePasswordRequest) error {
	old := a.users[r.Name]
	if old == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	u := &authpb.User{Name: old.Name, Roles: old.Roles, Options: old.Options}
	if old.Options == nil || !old.Options.NoPassword {
		pw, err := s.password(r.Password, r.HashedPassword)
		if err != nil {
			return err
		}
		u.Password = pw
	}
	err := s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		n.users[r.Name] = u
		return schema.PutUser(tx, u)
	})
	if err == nil {
		s.sec.auth.tokens.invalidateUser(r.Name)
	}
	return err
}

func (s *Server) applyGrantRole(st *stores, a *authState, r *pb.AuthUserGrantRoleRequest) error {
	old := a.users[r.User]
	if old == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	if r.Role != rootRole && a.roles[r.Role] == nil {
		return rpctypes.ErrGRPCRoleNotFound
	}
	if slices.Contains(old.Roles, r.Role) {
		return nil
	}
	u := &authpb.User{Name: old.Name, Password: old.Password, Options: old.Options, Roles: append(slices.Clone(old.Roles), r.Role)}
	sort.Strings(u.Roles)
	return s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		n.users[r.User] = u
		return schema.PutUser(tx, u)
	})
}

func (s *Server) applyRevokeRole(st *stores, a *authState, r *pb.AuthUserRevokeRoleRequest) error {
	if a.enabled && r.Name == rootUser && r.Role == rootRole {
		return rpctypes.ErrGRPCInvalidAuthMgmt
	}
	old := a.users[r.Name]
	if old == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	u := userWithout(old, r.Role)
	if len(u.Roles) == len(old.Roles) {
		return rpctypes.ErrGRPCRoleNotGranted
	}
	return s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		n.users[r.Name] = u
		return schema.PutUser(tx, u)
	})
}

func (s *Server) applyRoleAdd(st *stores, a *authState, name string) error {
	if name == "" {
		return rpctypes.ErrGRPCRoleEmpty
	}
	if a.roles[name] != nil {
		return rpctypes.ErrGRPCRoleAlreadyExist
	}
	role := &authpb.Role{Name: []byte(name)}
	return s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		n.roles[name] = role
		return schema.PutRole(tx, role)
	})
}

// applyRoleDelete deletes a role and takes it from every user.
func (s *Server) applyRoleDelete(st *stores, a *authState, name string) error {
	if a.enabled && name == rootRole {
		return rpctypes.ErrGRPCInvalidAuthMgmt
	}
	if a.roles[name] == nil {
		return rpctypes.ErrGRPCRoleNotFound
	}
	return s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		delete(n.roles, name)
		if err := schema.DeleteRole(tx, name); err != nil {
			return err
		}
		for un, u := range n.users {
			if !slices.Contains(u.Roles, name) {
				continue
			}
			nu := userWithout(u, name)
			n.users[un] = nu
			if err := schema.PutUser(tx, nu); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Server) applyGrantPermission(st *stores, a *authState, r *pb.AuthRoleGrantPermissionRequest) error {
	if r.Perm == nil {
		return rpctypes.ErrGRPCPermissionNotGiven
	}
	if !validPermRange(r.Perm.Key, r.Perm.RangeEnd) {
		return rpctypes.ErrGRPCInvalidAuthMgmt
	}
	old := a.roles[r.Name]
	if old == nil {
		return rpctypes.ErrGRPCRoleNotFound
	}
	role := &authpb.Role{Name: old.Name}
	updated := false
	for _, p := range old.KeyPermission {
		if bytes.Equal(p.Key, r.Perm.Key) && bytes.Equal(p.RangeEnd, r.Perm.RangeEnd) {
			p = &authpb.Permission{PermType: r.Perm.PermType, Key: p.Key, RangeEnd: p.RangeEnd}
			updated = true
		}
		role.KeyPermission = append(role.KeyPermission, p)
	}
	if !updated {
		role.KeyPermission = append(role.KeyPermission, &authpb.Permission{PermType: r.Perm.PermType, Key: r.Perm.Key, RangeEnd: r.Perm.RangeEnd})
		sort.SliceStable(role.KeyPermission, func(i, j int) bool {
			return bytes.Compare(role.KeyPermission[i].Key, role.KeyPermission[j].Key) < 0
		})
	}
	return s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		n.roles[r.Name] = role
		return schema.PutRole(tx, role)
	})
}

func (s *Server) applyRevokePermission(st *stores, a *authState, r *pb.AuthRoleRevokePermissionRequest) error {
	old := a.roles[r.Role]
	if old == nil {
		return rpctypes.ErrGRPCRoleNotFound
	}
	role := &authpb.Role{Name: old.Name}
	for _, p := range old.KeyPermission {
		if !bytes.Equal(p.Key, r.Key) || !bytes.Equal(p.RangeEnd, r.RangeEnd) {
			role.KeyPermission = append(role.KeyPermission, p)
		}
	}
	if len(role.KeyPermission) == len(old.KeyPermission) {
		return rpctypes.ErrGRPCPermissionNotGranted
	}
	return s.authMutation(st, true, func(n *authState, tx *bolt.Tx) error {
		n.roles[r.Role] = role
		return schema.PutRole(tx, role)
	})
}
