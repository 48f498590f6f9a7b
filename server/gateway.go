package server

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	clientv3 "go.etcd.io/etcd/client/v3"
	electiongw "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb/gw"
	lockgw "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb/gw"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// gateway holds the in-process client side of the member: the gateway's
// connection and the lock and election services' client.
type gateway struct {
	conn *grpc.ClientConn
	self *clientv3.Client
}

// selfAddr names the in-process connection to this member's gRPC server.
const selfAddr = "lifeboat-self:0"

// pipeAddr is the address of the in-process pipe.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return selfAddr }

// dialSelf connects the gateway and the lock and election services to the
// member's own gRPC server through an in-process pipe: no port, no TLS,
// and every call runs the server's interceptors (metrics, auth) as a
// client's would.
func (s *Server) dialSelf() error {
	l := newChanListener(pipeAddr{})
	s.listeners = append(s.listeners, l.Close)
	go func() { _ = s.grpc.Serve(l) }()
	dial := grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		a, b := net.Pipe()
		l.deliver(b)
		return a, nil
	})
	conn, err := grpc.NewClient("passthrough:///"+selfAddr, dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("server: gateway connection: %w", err)
	}
	s.listeners = append(s.listeners, conn.Close)
	s.gw.conn = conn
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"http://" + selfAddr},
		DialOptions: []grpc.DialOption{dial},
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("server: internal client: %w", err)
	}
	s.listeners = append(s.listeners, cli.Close)
	s.gw.self = cli
	return nil
}

// gatewayHandler is etcd's HTTP/JSON gateway (/v3/...), from the generated
// grpc-gateway registrations of every service, with etcd's JSON options
// (proto field names, unset fields left out, unknown fields ignored).
func (s *Server) gatewayHandler() (http.Handler, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
			},
		}),
	)
	ctx := context.Background()
	for _, reg := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		gw.RegisterKVHandler, gw.RegisterWatchHandler, gw.RegisterLeaseHandler, gw.RegisterClusterHandler,
		gw.RegisterMaintenanceHandler, gw.RegisterAuthHandler, lockgw.RegisterLockHandler, electiongw.RegisterElectionHandler,
	} {
		if err := reg(ctx, mux, s.gw.conn); err != nil {
			return nil, fmt.Errorf("server: gateway: %w", err)
		}
	}
	return mux, nil
}

// errGatewayCN is etcd's answer to a gateway request refused by gatewayCN.
const errGatewayCN = "CommonName of client sending a request against gateway will be ignored and not used as expected"

// gatewayCN refuses, as etcd, a gateway request whose verified client
// certificate has a CN when the member takes client certificates
// (--client-cert-auth) and auth is enabled: the gateway calls the member
// through its own connection, so that CN would not be the request's user.
func (s *Server) gatewayCN(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && s.cfg.ClientTLSInfo.ClientCertAuth {
			if a, err := s.auth(); err == nil && a.enabled {
				for _, chain := range r.TLS.VerifiedChains {
					if len(chain) > 0 && chain[0].Subject.CommonName != "" {
						http.Error(w, errGatewayCN, http.StatusBadRequest)
						return
					}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
