package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// http2Preface starts every HTTP/2 cleartext connection, gRPC included.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Request limits, as etcd's defaults.
const (
	maxRequestBytes   = 1.5 * 1024 * 1024
	grpcOverheadBytes = 512 * 1024
)

// listen opens a TCP listener for an http:// URL.
func listen(rawURL string) (net.Listener, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("server: listen URL %q: %w", rawURL, err)
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", rawURL, err)
	}
	return ln, nil
}

func newHTTPServer(h http.Handler, h2c bool) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	if h2c {
		srv.Protocols.SetUnencryptedHTTP2(true)
		srv.HTTP2 = &http.HTTP2Config{
			MaxReceiveBufferPerConnection: 4 << 20,
			MaxReceiveBufferPerStream:     4 << 20,
		}
	}
	return srv
}

// listenPeers serves the peer URLs: the transport and the membership.
func (s *Server) listenPeers() error {
	h := s.peerHandler()
	for _, u := range s.cfg.ListenPeerURLs {
		ln, err := listen(u)
		if err != nil {
			return err
		}
		srv := newHTTPServer(h, true)
		s.httpSrvs = append(s.httpSrvs, srv)
		go s.serveHTTP(srv, ln, u)
	}
	return nil
}

// listenClients serves gRPC and HTTP (/health, /version, /metrics) on each
// client URL, told apart by the HTTP/2 preface, and HTTP on the metrics URLs.
func (s *Server) listenClients() error {
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(int(maxRequestBytes+grpcOverheadBytes)),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: false}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
		grpc.ChainUnaryInterceptor(s.m.unaryInterceptor, s.learnerUnaryInterceptor),
		grpc.ChainStreamInterceptor(s.m.streamInterceptor, s.learnerStreamInterceptor),
	)
	etcdserverpb.RegisterKVServer(s.grpc, &kvServer{s: s})
	etcdserverpb.RegisterWatchServer(s.grpc, &watchServer{s: s})
	etcdserverpb.RegisterLeaseServer(s.grpc, &leaseServer{s: s})
	etcdserverpb.RegisterClusterServer(s.grpc, &clusterServer{s: s})
	etcdserverpb.RegisterMaintenanceServer(s.grpc, &maintenanceServer{s: s})
	etcdserverpb.RegisterAuthServer(s.grpc, &authServer{s: s})

	h := s.httpHandler()
	for _, u := range s.cfg.ListenClientURLs {
		ln, err := listen(u)
		if err != nil {
			return err
		}
		grpcL, httpL := newChanListener(ln.Addr()), newChanListener(ln.Addr())
		s.listeners = append(s.listeners, ln.Close, grpcL.Close, httpL.Close)
		srv := newHTTPServer(h, false)
		s.httpSrvs = append(s.httpSrvs, srv)
		go s.splitConns(ln, grpcL, httpL)
		go func() {
			if err := s.grpc.Serve(grpcL); err != nil && !errors.Is(err, net.ErrClosed) {
				s.lg.Warn("gRPC server stopped", "url", u, "error", err)
			}
		}()
		go s.serveHTTP(srv, httpL, u)
	}
	for _, u := range s.cfg.ListenMetricsURLs {
		ln, err := listen(u)
		if err != nil {
			return err
		}
		srv := newHTTPServer(h, false)
		s.httpSrvs = append(s.httpSrvs, srv)
		go s.serveHTTP(srv, ln, u)
	}
	return nil
}

func (s *Server) serveHTTP(srv *http.Server, ln net.Listener, u string) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		s.lg.Warn("HTTP server stopped", "url", u, "error", err)
	}
}

// splitConns sends each accepted connection to gRPC if it starts with the
// HTTP/2 preface, else to the HTTP server.
func (s *Server) splitConns(ln net.Listener, grpcL, httpL *chanListener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			pc, isH2, err := sniff(c)
			if err != nil {
				c.Close()
				return
			}
			if isH2 {
				grpcL.deliver(pc)
			} else {
				httpL.deliver(pc)
			}
		}()
	}
}

// sniff reads just enough of c to tell HTTP/2 from HTTP/1 and returns a
// connection that replays what it read.
func sniff(c net.Conn) (net.Conn, bool, error) {
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, false, err
	}
	buf := make([]byte, 0, len(http2Preface))
	isH2 := true
	for len(buf) < len(http2Preface) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if !bytes.HasPrefix([]byte(http2Preface), buf) {
			isH2 = false
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, false, err
	}
	return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(buf), c)}, isH2, nil
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

// httpHandler serves /health, /version and /metrics as etcd does.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health", s.serveHealth)
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"etcdserver": Version, "etcdcluster": ClusterVersion})
	})
	return mux
}

// serveHealth answers {"health":"true","reason":""} when the member has a
// leader, no alarm, and can serve a linearizable read (serializable with
// ?serializable=true).
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	type health struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	unhealthy := func(reason string) { writeJSON(w, http.StatusServiceUnavailable, health{"false", reason}) }
	if as := s.alarms.list(); len(as) > 0 {
		unhealthy(fmt.Sprintf("ALARM %s", as[0].Alarm))
		return
	}
	if s.lead.Load() == 0 {
		unhealthy("RAFT NO LEADER")
		return
	}
	if r.URL.Query().Get("serializable") != "true" {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := s.linearizableReadNotify(ctx); err != nil {
			unhealthy("QGET ERROR: " + err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, health{"true", ""})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
