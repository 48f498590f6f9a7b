package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"
)

// tokenMetadataKey is the gRPC metadata that carries an auth token, as
// etcd's (rpctypes.TokenFieldNameGRPC).
const tokenMetadataKey = "token"

// security is the member's TLS state (and, later, its authentication).
type security struct {
	settings  TLSSettings
	clientTLS *tlsFiles // nil when no client URL is https or unixs
	peerTLS   *tlsFiles // nil when no peer URL is https
	// peerClient is the member's HTTP client for the leader's peer URL
	// (forwarded lease and promote requests).
	peerClient *http.Client
	auth       authStore
}

// setupSecurity loads (or, with --auto-tls, generates) the certificates the
// configured URLs need, so that a missing or broken file fails the start,
// and the auth token provider.
func (s *Server) setupSecurity() error {
	c := s.cfg
	set, err := ParseTLSSettings(c.CipherSuites, c.TLSMinVersion, c.TLSMaxVersion)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.sec.settings = set
	for _, raw := range c.ListenMetricsURLs {
		if u, err := url.Parse(raw); err == nil && isTLSScheme(u.Scheme) && c.ClientTLSInfo.Empty() && !c.ClientTLSInfo.AutoTLS {
			// etcd's message (embed.ErrMissingClientTLSInfoForMetricsURL).
			return errors.New("client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url")
		}
	}
	clientURLs := append(append(append([]string(nil), c.ListenClientURLs...), c.ListenClientHTTPURLs...), c.ListenMetricsURLs...)
	if s.sec.clientTLS, err = s.loadTLS("client", c.ClientTLSInfo, clientURLs, "--cert-file and --key-file"); err != nil {
		return err
	}
	peerURLs := append(append([]string(nil), c.ListenPeerURLs...), c.AdvertisePeerURLs...)
	for _, us := range c.InitialCluster {
		peerURLs = append(peerURLs, us...)
	}
	if s.sec.peerTLS, err = s.loadTLS("peer", c.PeerTLSInfo, peerURLs, "--peer-cert-file and --peer-key-file"); err != nil {
		return err
	}
	s.sec.peerClient = s.peerHTTPClient(0) // the requests' contexts bound them
	if s.sec.auth.tokens, err = newTokenProvider(c.AuthToken, time.Duration(c.AuthTokenTTL)*time.Second,
		func(index uint64) <-chan struct{} { return s.applyWait.wait(index) }); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// loadTLS returns the files of one side, nil if none of its URLs uses TLS
// and no certificate is given.
func (s *Server) loadTLS(side string, info TLSInfo, urls []string, flags string) (*tlsFiles, error) {
	anyTLS := false
	var hosts []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("server: %s URL %q: %w", side, raw, err)
		}
		anyTLS = anyTLS || isTLSScheme(u.Scheme)
		hosts = append(hosts, u.Host)
	}
	if info.Empty() && info.AutoTLS && anyTLS {
		dir := filepath.Join(s.cfg.DataDir, "fixtures", side)
		cert, key, err := selfCert(s.lg, dir, hosts, s.cfg.SelfSignedCertValidity)
		if err != nil {
			return nil, fmt.Errorf("server: %s auto TLS: %w", side, err)
		}
		info.CertFile, info.KeyFile = cert, key
	}
	if info.Empty() {
		if anyTLS {
			return nil, fmt.Errorf("server: %s URLs use TLS but no certificate is given (%s, or auto TLS)", side, flags)
		}
		return nil, nil
	}
	if info.CertFile == "" || info.KeyFile == "" {
		return nil, fmt.Errorf("server: %s TLS needs both %s", side, flags)
	}
	if !anyTLS {
		s.lg.Warn("scheme is HTTP while key and cert files are present; ignoring key and cert files", "side", side, "cert-file", info.CertFile)
		return nil, nil
	}
	return newTLSFiles(info, s.lg.With("side", side))
}

// peerDialTLS is the transport's dialer configuration, nil without peer TLS.
func (s *Server) peerDialTLS() func(host string) *tls.Config {
	if s.sec.peerTLS == nil {
		return nil
	}
	return func(host string) *tls.Config { return s.sec.peerTLS.clientConfig(s.sec.settings, host) }
}

// peerHTTPClient is a client for the peer URLs (joining: the membership;
// forwarded requests), over HTTP/1.1 as the peers serve.
func (s *Server) peerHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if f := s.peerDialTLS(); f != nil {
		d := &net.Dialer{Timeout: timeout}
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return (&tls.Dialer{NetDialer: d, Config: f(host)}).DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Timeout: timeout, Transport: tr}
}
