package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// http2Preface starts every HTTP/2 cleartext connection, gRPC included.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// grpcOverheadBytes is what gRPC may receive beyond --max-request-bytes,
// as etcd's.
const grpcOverheadBytes = 512 * 1024

// isTLSScheme reports whether a URL scheme is served over TLS.
func isTLSScheme(scheme string) bool { return scheme == "https" || scheme == "unixs" }

// listen opens a listener for an http, https, unix or unixs URL; a unix URL
// names the socket file by its host and path, as etcd's.
func listen(rawURL string) (net.Listener, *url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("server: listen URL %q: %w", rawURL, err)
	}
	network, addr := "tcp", u.Host
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		network, addr = "unix", u.Host+u.Path
		if err := os.Remove(addr); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("server: listen on %s: %w", rawURL, err)
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("server: listen on %s: %w", rawURL, err)
	}
	return ln, u, nil
}

// The ALPN protocols a TLS listener offers: the client URLs serve gRPC
// over HTTP/2 and HTTP/1.1, the peer URLs HTTP/1.1 only, as etcd's.
var (
	clientProtos = []string{"h2", "http/1.1"}
	peerProtos   = []string{"http/1.1"}
)

// newHTTPServer serves h over HTTP/1.1 and, with http2, over HTTP/2 on
// TLS connections.
func (s *Server) newHTTPServer(h http.Handler, http2 bool) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.lg.Handler(), slog.LevelWarn)}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	if http2 {
		srv.Protocols.SetHTTP2(true)
		srv.HTTP2 = &http.HTTP2Config{
			MaxReceiveBufferPerConnection: 4 << 20,
			MaxReceiveBufferPerStream:     4 << 20,
		}
	}
	return srv
}

// tlsListener wraps ln in TLS with the side's certificates, offering
// protos, when the URL asks for it.
func tlsListener(ln net.Listener, u *url.URL, f *tlsFiles, set TLSSettings, protos []string) net.Listener {
	if !isTLSScheme(u.Scheme) {
		return ln
	}
	return tls.NewListener(ln, f.serverConfig(set, protos))
}

// listenPeers serves the peer URLs over HTTP/1.1: the transport, the
// membership, the forwarded requests and the hashkv of the corruption
// checks.
func (s *Server) listenPeers() error {
	mux := http.NewServeMux()
	mux.Handle("/", s.peerHandler())
	mux.HandleFunc(hashKVPath, s.serveHashKV)
	h := http.Handler(mux)
	for _, raw := range s.cfg.ListenPeerURLs {
		ln, u, err := listen(raw)
		if err != nil {
			return err
		}
		srv := s.newHTTPServer(h, false)
		s.httpSrvs = append(s.httpSrvs, srv)
		go s.serveHTTP(srv, tlsListener(ln, u, s.sec.peerTLS, s.sec.settings, peerProtos), raw)
	}
	return nil
}

// listenClients serves gRPC and HTTP (/health, /version, /metrics) on each
// client URL, and HTTP alone on the client HTTP and metrics URLs. On a
// cleartext URL gRPC and HTTP are told apart by the HTTP/2 preface; on a TLS
// URL one HTTP/2 server takes both and hands gRPC requests (by content
// type) to the gRPC server, as etcd does. Given --listen-client-http-urls,
// the client URLs serve gRPC alone.
func (s *Server) listenClients() error {
	if s.cfg.InitialCorruptCheck {
		if err := s.initialCorruptCheck(); err != nil {
			return err
		}
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(s.cfg.MaxRequestBytes + grpcOverheadBytes)),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams),
		grpc.ChainUnaryInterceptor(s.m.unaryInterceptor, s.learnerUnaryInterceptor, s.authUnaryInterceptor),
		grpc.ChainStreamInterceptor(s.m.streamInterceptor, s.learnerStreamInterceptor, s.authStreamInterceptor),
		grpc.StatsHandler(grpcBytes{s.m}),
	}
	if s.cfg.GRPCKeepAliveMinTime > 0 {
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: s.cfg.GRPCKeepAliveMinTime, PermitWithoutStream: false}))
	}
	if s.cfg.GRPCKeepAliveInterval > 0 && s.cfg.GRPCKeepAliveTimeout > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{Time: s.cfg.GRPCKeepAliveInterval, Timeout: s.cfg.GRPCKeepAliveTimeout}))
	}
	s.grpc = grpc.NewServer(opts...)
	etcdserverpb.RegisterKVServer(s.grpc, &kvServer{s: s})
	etcdserverpb.RegisterWatchServer(s.grpc, &watchServer{s: s})
	etcdserverpb.RegisterLeaseServer(s.grpc, &leaseServer{s: s})
	etcdserverpb.RegisterClusterServer(s.grpc, &clusterServer{s: s})
	etcdserverpb.RegisterMaintenanceServer(s.grpc, &maintenanceServer{s: s})
	etcdserverpb.RegisterAuthServer(s.grpc, &authServer{s: s})
	v3lockpb.RegisterLockServer(s.grpc, &lockServer{s: s})
	v3electionpb.RegisterElectionServer(s.grpc, &electionServer{s: s})
	if err := s.dialSelf(); err != nil {
		return err
	}
	h, err := s.httpHandler()
	if err != nil {
		return err
	}
	httpToo := len(s.cfg.ListenClientHTTPURLs) == 0
	var th http.Handler = grpcOnly(s.grpc)
	if httpToo {
		th = grpcOr(s.grpc, h)
	}
	for _, g := range groupByAddress(s.cfg.ListenClientURLs) {
		raw := g.urls[0]
		ln, u, err := listen(raw)
		if err != nil {
			return err
		}
		if g.secure && !g.plain {
			srv := s.newHTTPServer(th, true)
			s.httpSrvs = append(s.httpSrvs, srv)
			go s.serveHTTP(srv, tlsListener(ln, u, s.sec.clientTLS, s.sec.settings, clientProtos), raw)
			continue
		}
		grpcL, httpL := newChanListener(ln.Addr()), newChanListener(ln.Addr())
		s.listeners = append(s.listeners, ln.Close, grpcL.Close, httpL.Close)
		var tlsL *chanListener
		if g.secure {
			// http and https on one port, as etcd: TLS connections are
			// told apart by their first byte.
			tlsL = newChanListener(ln.Addr())
			s.listeners = append(s.listeners, tlsL.Close)
			srv := s.newHTTPServer(th, true)
			s.httpSrvs = append(s.httpSrvs, srv)
			go s.serveHTTP(srv, tls.NewListener(tlsL, s.sec.clientTLS.serverConfig(s.sec.settings, clientProtos)), raw)
		}
		go s.splitConns(ln, grpcL, httpL, tlsL)
		go func() {
			if err := s.grpc.Serve(grpcL); err != nil && !errors.Is(err, net.ErrClosed) {
				s.lg.Warn("gRPC server stopped", "url", raw, "error", err)
			}
		}()
		if httpToo {
			srv := s.newHTTPServer(h, true)
			s.httpSrvs = append(s.httpSrvs, srv)
			go s.serveHTTP(srv, httpL, raw)
		} else {
			httpL.Close()
		}
	}
	for _, raw := range append(append([]string(nil), s.cfg.ListenClientHTTPURLs...), s.cfg.ListenMetricsURLs...) {
		ln, u, err := listen(raw)
		if err != nil {
			return err
		}
		srv := s.newHTTPServer(h, true)
		s.httpSrvs = append(s.httpSrvs, srv)
		go s.serveHTTP(srv, tlsListener(ln, u, s.sec.clientTLS, s.sec.settings, clientProtos), raw)
	}
	return nil
}

func isGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// grpcOr sends gRPC requests to g and the rest to h.
func grpcOr(g *grpc.Server, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isGRPC(r) {
			g.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// grpcOnly serves gRPC requests and refuses the rest.
func grpcOnly(g *grpc.Server) http.Handler {
	return grpcOr(g, http.NotFoundHandler())
}

func (s *Server) serveHTTP(srv *http.Server, ln net.Listener, u string) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		s.lg.Warn("HTTP server stopped", "url", u, "error", err)
	}
}

// addressGroup is the client URLs that share one listening address.
type addressGroup struct {
	urls          []string
	plain, secure bool
}

// groupByAddress groups URLs by host:port (or socket path), in order: one
// address may serve http and https at once.
func groupByAddress(urls []string) []*addressGroup {
	var out []*addressGroup
	byAddr := map[string]*addressGroup{}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			// listen reports it.
			out = append(out, &addressGroup{urls: []string{raw}, plain: true})
			continue
		}
		addr := u.Host + u.Path
		g := byAddr[addr]
		if g == nil {
			g = &addressGroup{}
			byAddr[addr] = g
			out = append(out, g)
		}
		g.urls = append(g.urls, raw)
		if isTLSScheme(u.Scheme) {
			g.secure = true
		} else {
			g.plain = true
		}
	}
	return out
}

// tlsRecordHandshake is the first byte of a TLS connection.
const tlsRecordHandshake = 0x16

// splitConns sends each accepted connection to tlsL if it starts a TLS
// handshake (when tlsL is set), else to gRPC if it starts with the HTTP/2
// preface, else to the HTTP server.
func (s *Server) splitConns(ln net.Listener, grpcL, httpL, tlsL *chanListener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			pc, isH2, isTLS, err := sniff(c)
			if err != nil {
				c.Close()
				return
			}
			switch {
			case isTLS && tlsL != nil:
				tlsL.deliver(pc)
			case isTLS:
				pc.Close()
			case isH2:
				grpcL.deliver(pc)
			default:
				httpL.deliver(pc)
			}
		}()
	}
}

// sniff reads just enough of c to tell a TLS handshake, HTTP/2 and HTTP/1
// apart and returns a connection that replays what it read.
func sniff(c net.Conn) (net.Conn, bool, bool, error) {
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, false, false, err
	}
	buf := make([]byte, 0, len(http2Preface))
	isH2, isTLS := true, false
	for len(buf) < len(http2Preface) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > 0 && buf[0] == tlsRecordHandshake {
			isH2, isTLS = false, true
			break
		}
		if !bytes.HasPrefix([]byte(http2Preface), buf) {
			isH2 = false
			break
		}
		if err != nil {
			return nil, false, false, err
		}
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, false, false, err
	}
	return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(buf), c)}, isH2, isTLS, nil
}

type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a listener fed by splitConns.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// httpHandler serves etcd's gateway (/v3/), /health, /livez, /readyz,
// /version, /metrics and /debug/vars as etcd does, and /debug/pprof with
// --enable-pprof.
func (s *Server) httpHandler() (http.Handler, error) {
	gwh, err := s.gatewayHandler()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v3/", s.gatewayCN(gwh))
	s.installHealth(mux)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.Handle("/debug/vars", expvar.Handler())
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"etcdserver": Version, "etcdcluster": ClusterVersion})
	})
	return mux, nil
}

// getJSON decodes the JSON answer (at most limit bytes) to GET path from
// the first of urls (a member's peer URLs) that answers 200.
func getJSON[T any](ctx context.Context, client *http.Client, urls []string, path string, limit int64) (T, error) {
	var errs []error
	for _, u := range urls {
		var out T
		target := strings.TrimSuffix(u, "/") + path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(&out)
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			errs = append(errs, fmt.Errorf("GET %s: %s", target, resp.Status))
		case err != nil:
			errs = append(errs, fmt.Errorf("GET %s: decode: %w", target, err))
		default:
			return out, nil
		}
	}
	var zero T
	return zero, errors.Join(errs...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
