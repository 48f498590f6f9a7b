package server

import (
	"context"
	"encoding/base64"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"
)

// authServer is etcd's Auth service: every call goes through raft, and
// passwords are hashed (with --bcrypt-cost) and checked before it, so that
// no clear password reaches the log.
type authServer struct {
	pb.UnimplementedAuthServer
	s *Server
}

// authCall proposes one auth request and returns its response with the
// member's header.
func authCall[T interface{ GetHeader() *pb.ResponseHeader }](ctx context.Context, s *Server, r *pb.InternalRaftRequest) (T, error) {
	var zero T
	resp, err := s.propose(ctx, r)
	if err != nil {
		return zero, toGRPCError(err)
	}
	out := resp.(T)
	s.header(out.GetHeader())
	return out, nil
}

func (a *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return authCall[*pb.AuthEnableResponse](ctx, a.s, &pb.InternalRaftRequest{AuthEnable: r})
}

func (a *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return authCall[*pb.AuthDisableResponse](ctx, a.s, &pb.InternalRaftRequest{AuthDisable: r})
}

func (a *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return authCall[*pb.AuthStatusResponse](ctx, a.s, &pb.InternalRaftRequest{AuthStatus: r})
}

// Authenticate checks the password against the current auth state, then
// proposes the token's issue; it checks again if the auth store changed
// in between, as etcd.
func (a *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := a.s.linearizableReadNotify(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	for {
		st, err := a.s.auth()
		if err != nil {
			return nil, err
		}
		if err := st.checkPassword(r.Name, r.Password); err != nil {
			if err != rpctypes.ErrGRPCAuthNotEnabled {
				a.s.lg.Warn("invalid authentication was requested", "user", r.Name, "error", err)
			}
			return nil, err
		}
		prefix, err := a.s.sec.auth.tokens.prefix()
		if err != nil {
			return nil, err
		}
		resp, err := authCall[*pb.AuthenticateResponse](ctx, a.s, &pb.InternalRaftRequest{
			Authenticate: &pb.InternalAuthenticateRequest{Name: r.Name, SimpleToken: prefix},
		})
		if err != nil {
			return nil, err
		}
		if now, err := a.s.auth(); err == nil && now.revision == st.revision {
			return resp, nil
		}
	}
}

// checkPassword compares password with the user's bcrypt hash.
func (a *authState) checkPassword(user, password string) error {
	if !a.enabled {
		return rpctypes.ErrGRPCAuthNotEnabled
	}
	u := a.users[user]
	if u == nil {
		return rpctypes.ErrGRPCAuthFailed
	}
	if u.Options != nil && u.Options.NoPassword {
		return errNoPasswordUser
	}
	if bcrypt.CompareHashAndPassword(u.Password, []byte(password)) != nil {
		return rpctypes.ErrGRPCAuthFailed
	}
	return nil
}

// hashPassword is what UserAdd and UserChangePassword propose in place of
// the password.
func (s *Server) hashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost())
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

func (a *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	if r.Options == nil || !r.Options.NoPassword {
		h, err := a.s.hashPassword(r.Password)
		if err != nil {
			return nil, err
		}
		r.HashedPassword, r.Password = h, ""
	}
	return authCall[*pb.AuthUserAddResponse](ctx, a.s, &pb.InternalRaftRequest{AuthUserAdd: r})
}

func (a *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return authCall[*pb.AuthUserGetResponse](ctx, a.s, &pb.InternalRaftRequest{AuthUserGet: r})
}

func (a *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return authCall[*pb.AuthUserListResponse](ctx, a.s, &pb.InternalRaftRequest{AuthUserList: r})
}

func (a *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return authCall[*pb.AuthUserDeleteResponse](ctx, a.s, &pb.InternalRaftRequest{AuthUserDelete: r})
}

func (a *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	h, err := a.s.hashPassword(r.Password)
	if err != nil {
		return nil, err
	}
	r.HashedPassword, r.Password = h, ""
	return authCall[*pb.AuthUserChangePasswordResponse](ctx, a.s, &pb.InternalRaftRequest{AuthUserChangePassword: r})
}

func (a *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return authCall[*pb.AuthUserGrantRoleResponse](ctx, a.s, &pb.InternalRaftRequest{AuthUserGrantRole: r})
}

func (a *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return authCall[*pb.AuthUserRevokeRoleResponse](ctx, a.s, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
}

func (a *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return authCall[*pb.AuthRoleAddResponse](ctx, a.s, &pb.InternalRaftRequest{AuthRoleAdd: r})
}

func (a *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return authCall[*pb.AuthRoleGetResponse](ctx, a.s, &pb.InternalRaftRequest{AuthRoleGet: r})
}

func (a *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return authCall[*pb.AuthRoleListResponse](ctx, a.s, &pb.InternalRaftRequest{AuthRoleList: r})
}

func (a *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return authCall[*pb.AuthRoleDeleteResponse](ctx, a.s, &pb.InternalRaftRequest{AuthRoleDelete: r})
}

func (a *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return authCall[*pb.AuthRoleGrantPermissionResponse](ctx, a.s, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
}

func (a *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return authCall[*pb.AuthRoleRevokePermissionResponse](ctx, a.s, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
}
