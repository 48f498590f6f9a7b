package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
)

// Defaults, as etcd's.
const (
	DefaultName                = "default"
	DefaultSnapshotCount       = 10000
	DefaultSnapshotCatchUp     = 5000
	DefaultHeartbeatMs         = 100
	DefaultElectionMs          = 1000
	DefaultQuotaBackendBytes   = 2 << 30
	MaxQuotaBackendBytes       = 100 << 30
	DefaultMaxWALs             = 5
	DefaultMaxSnapshots        = 5
	DefaultInitialClusterToken = "etcd-cluster"
	DefaultListenClientURL     = "http://localhost:2379"
	DefaultListenPeerURL       = "http://localhost:2380"
	DefaultMaxRequestBytes     = 1.5 * 1024 * 1024
	DefaultMaxTxnOps           = 128
	DefaultBcryptCost          = 10
	// gRPC keepalive defaults, as etcd's.
	DefaultGRPCKeepAliveMinTime  = 5 * time.Second
	DefaultGRPCKeepAliveInterval = 2 * time.Hour
	DefaultGRPCKeepAliveTimeout  = 20 * time.Second
	// Version is the etcd server version lifeboat reports.
	Version = "3.6.6"
	// ClusterVersion is the cluster version lifeboat reports and stores.
	ClusterVersion = "3.6.0"
	// StorageVersion is written to meta/storageVersion.
	StorageVersion = "3.6.0"
)

// Config is a member's configuration, with etcd's flag names in comments.
type Config struct {
	Name    string // --name
	DataDir string // --data-dir
	WALDir  string // --wal-dir; empty means <data-dir>/member/wal

	ListenClientURLs    []string // --listen-client-urls
	AdvertiseClientURLs []string // --advertise-client-urls
	ListenPeerURLs      []string // --listen-peer-urls
	AdvertisePeerURLs   []string // --initial-advertise-peer-urls
	ListenMetricsURLs   []string // --listen-metrics-urls

	// InitialCluster maps member names to peer URLs (--initial-cluster).
	InitialCluster      map[string][]string
	InitialClusterToken string // --initial-cluster-token
	NewCluster          bool   // --initial-cluster-state new (true) or existing (false)
	ForceNewCluster     bool   // --force-new-cluster
	// StrictReconfigCheck refuses member changes that could break quorum,
	// as etcd's (--strict-reconfig-check; NewConfig turns it on).
	StrictReconfigCheck bool

	SnapshotCount          uint64 // --snapshot-count
	SnapshotCatchUpEntries uint64 // entries kept in the raft log after a snapshot
	HeartbeatMs            uint   // --heartbeat-interval
	ElectionMs             uint   // --election-timeout
	// InitialElectionTickAdvance fast-forwards a member of a larger
	// cluster, at its start, to two ticks short of its election timeout
	// once it reaches its peers (--initial-election-tick-advance, on in
	// NewConfig as in etcd).
	InitialElectionTickAdvance bool
	QuotaBackendBytes          int64 // --quota-backend-bytes
	MaxWALs                    uint  // --max-wals (0 keeps all)
	MaxSnapshots               uint  // --max-snapshots (0 keeps all)
	// LeaseCheckpointInterval is how often the leader persists leases'
	// remaining TTLs, so that a new leader does not extend them
	// (--experimental-lease-checkpoint-interval; 0 means 5 minutes).
	LeaseCheckpointInterval time.Duration

	// ListenClientHTTPURLs serve HTTP alone (--listen-client-http-urls);
	// given any, the client URLs serve gRPC alone.
	ListenClientHTTPURLs []string
	ClientTLSInfo        TLSInfo  // --cert-file, --key-file, --trusted-ca-file, --client-cert-auth, --client-crl-file, --auto-tls
	PeerTLSInfo          TLSInfo  // the same flags with --peer-, and --peer-cert-allowed-cn
	CipherSuites         []string // --cipher-suites (etcd's names)
	TLSMinVersion        string   // --tls-min-version (TLS1.2, TLS1.3)
	TLSMaxVersion        string   // --tls-max-version
	// SelfSignedCertValidity is the validity, in years, of the certificates
	// --auto-tls and --peer-auto-tls make (--self-signed-cert-validity).
	SelfSignedCertValidity uint

	// AutoCompactionMode is periodic or revision (--auto-compaction-mode);
	// AutoCompactionRetention is a duration or hours (periodic) or a
	// number of revisions (revision); "0" or empty disables it
	// (--auto-compaction-retention).
	AutoCompactionMode      string
	AutoCompactionRetention string
	MaxRequestBytes         uint // --max-request-bytes (0: 1.5 MiB)
	MaxTxnOps               uint // --max-txn-ops (0: 128)
	// gRPC keepalive (--grpc-keepalive-min-time, -interval, -timeout; 0
	// disables the enforcement, resp. the server's pings, as etcd) and
	// --max-concurrent-streams (0: unlimited).
	GRPCKeepAliveMinTime  time.Duration
	GRPCKeepAliveInterval time.Duration
	GRPCKeepAliveTimeout  time.Duration
	MaxConcurrentStreams  uint32
	EnablePprof           bool   // --enable-pprof: /debug/pprof on the client URLs
	Metrics               string // --metrics basic or extensive (adds gRPC latency histograms)
	// InitialCorruptCheck compares this member's hashkv with its peers'
	// before serving (--experimental-initial-corrupt-check);
	// CorruptCheckTime is the period of the leader's check of every member
	// (--experimental-corrupt-check-time; 0 disables it).
	InitialCorruptCheck bool
	CorruptCheckTime    time.Duration
	// UnsafeNoFsync skips fsync of the WAL and the backend: a crash may
	// lose acknowledged writes (--unsafe-no-fsync).
	UnsafeNoFsync bool

	// AuthToken is --auth-token: "simple", or
	// "jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>[,ttl=<duration>]".
	AuthToken    string
	AuthTokenTTL uint // --auth-token-ttl: seconds a simple token lives unused
	BcryptCost   uint // --bcrypt-cost

	Logger *slog.Logger
}

// NewConfig returns a configuration with etcd's defaults.
func NewConfig() *Config {
	return &Config{
		Name:                       DefaultName,
		ListenClientURLs:           []string{DefaultListenClientURL},
		AdvertiseClientURLs:        []string{DefaultListenClientURL},
		ListenPeerURLs:             []string{DefaultListenPeerURL},
		AdvertisePeerURLs:          []string{DefaultListenPeerURL},
		InitialClusterToken:        DefaultInitialClusterToken,
		NewCluster:                 true,
		StrictReconfigCheck:        true,
		SnapshotCount:              DefaultSnapshotCount,
		SnapshotCatchUpEntries:     DefaultSnapshotCatchUp,
		HeartbeatMs:                DefaultHeartbeatMs,
		ElectionMs:                 DefaultElectionMs,
		InitialElectionTickAdvance: true,
		QuotaBackendBytes:          DefaultQuotaBackendBytes,
		MaxWALs:                    DefaultMaxWALs,
		MaxSnapshots:               DefaultMaxSnapshots,
		SelfSignedCertValidity:     1,
		MaxRequestBytes:            DefaultMaxRequestBytes,
		MaxTxnOps:                  DefaultMaxTxnOps,
		GRPCKeepAliveMinTime:       DefaultGRPCKeepAliveMinTime,
		GRPCKeepAliveInterval:      DefaultGRPCKeepAliveInterval,
		GRPCKeepAliveTimeout:       DefaultGRPCKeepAliveTimeout,
		MaxConcurrentStreams:       math.MaxUint32,
		Metrics:                    "basic",
		AutoCompactionMode:         "periodic",
		AuthToken:                  "simple",
		AuthTokenTTL:               300,
		BcryptCost:                 DefaultBcryptCost,
	}
}

// ParseInitialCluster parses "n1=http://a:2380,n1=http://b:2380,n2=..."
// into name -> peer URLs.
func ParseInitialCluster(s string) (map[string][]string, error) {
	out := make(map[string][]string)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("initial cluster: %q is not name=peer-url", part)
		}
		if _, err := parsePeerURL(u); err != nil {
			return nil, fmt.Errorf("initial cluster: member %s: %w", name, err)
		}
		out[name] = append(out[name], u)
	}
	if len(out) == 0 {
		return nil, errors.New("initial cluster is empty")
	}
	return out, nil
}

// parseURL checks a client URL: http, https, unix or unixs, with no path
// (a unix URL names its socket by host and path).
func parseURL(s string) (*url.URL, error) {
	return parseSchemeURL(s, "http", "https", "unix", "unixs")
}

// parsePeerURL checks a peer URL: http or https, with no path.
func parsePeerURL(s string) (*url.URL, error) { return parseSchemeURL(s, "http", "https") }

func parseSchemeURL(s string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", s, err)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return nil, fmt.Errorf("URL %q: scheme must be one of %s", s, strings.Join(schemes, ", "))
	}
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		if u.Host+u.Path == "" {
			return nil, fmt.Errorf("URL %q names no socket", s)
		}
		return u, nil
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", s)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("URL %q must not have a path", s)
	}
	return u, nil
}

// Validate fills derived defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Name == "" {
		return errors.New("config: --name is empty")
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
	}
	if c.LeaseCheckpointInterval < 0 {
		return fmt.Errorf("config: --experimental-lease-checkpoint-interval %v is negative", c.LeaseCheckpointInterval)
	}
	for _, f := range []struct {
		flag  string
		urls  []string
		parse func(string) (*url.URL, error)
	}{
		{"--listen-client-urls", c.ListenClientURLs, parseURL},
		{"--listen-client-http-urls", c.ListenClientHTTPURLs, parseURL},
		{"--advertise-client-urls", c.AdvertiseClientURLs, parseURL},
		{"--listen-peer-urls", c.ListenPeerURLs, parsePeerURL},
		{"--initial-advertise-peer-urls", c.AdvertisePeerURLs, parsePeerURL},
		{"--listen-metrics-urls", c.ListenMetricsURLs, parseURL},
	} {
		for _, u := range f.urls {
			if _, err := f.parse(u); err != nil {
				return fmt.Errorf("config: %s: %w", f.flag, err)
			}
		}
	}
	if _, err := ParseTLSSettings(c.CipherSuites, c.TLSMinVersion, c.TLSMaxVersion); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(c.ClientTLSInfo.AllowedCNs) > 0 || len(c.ClientTLSInfo.AllowedHostnames) > 0 {
		return errors.New("config: allowed CNs and host names apply to peer TLS only (--peer-cert-allowed-cn, --peer-cert-allowed-hostname)")
	}
	if len(c.PeerTLSInfo.AllowedCNs) > 0 && len(c.PeerTLSInfo.AllowedHostnames) > 0 {
		return errors.New("config: --peer-cert-allowed-cn and --peer-cert-allowed-hostname are mutually exclusive")
	}
	if len(c.ListenClientURLs) == 0 || len(c.ListenPeerURLs) == 0 {
		return errors.New("config: --listen-client-urls and --listen-peer-urls must not be empty")
	}
	if len(c.AdvertisePeerURLs) == 0 {
		return errors.New("config: --initial-advertise-peer-urls is empty")
	}
	if c.InitialCluster == nil {
		c.InitialCluster = map[string][]string{c.Name: c.AdvertisePeerURLs}
	}
	if got, ok := c.InitialCluster[c.Name]; !ok {
		return fmt.Errorf("config: --initial-cluster has no member named %q (--name)", c.Name)
	} else if !sameURLs(got, c.AdvertisePeerURLs) {
		return fmt.Errorf("config: --initial-cluster has %s=%s but --initial-advertise-peer-urls is %s",
			c.Name, strings.Join(got, ","), strings.Join(c.AdvertisePeerURLs, ","))
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.SnapshotCatchUpEntries == 0 {
		c.SnapshotCatchUpEntries = DefaultSnapshotCatchUp
	}
	if c.HeartbeatMs == 0 || c.ElectionMs < 5*c.HeartbeatMs {
		return fmt.Errorf("config: --election-timeout (%d ms) must be at least 5 times --heartbeat-interval (%d ms)", c.ElectionMs, c.HeartbeatMs)
	}
	if c.QuotaBackendBytes == 0 {
		c.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	if c.QuotaBackendBytes < 0 || c.QuotaBackendBytes > MaxQuotaBackendBytes {
		return fmt.Errorf("config: --quota-backend-bytes %d is outside (0, %d]", c.QuotaBackendBytes, int64(MaxQuotaBackendBytes))
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxTxnOps == 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = math.MaxUint32
	}
	switch c.Metrics {
	case "":
		c.Metrics = "basic"
	case "basic", "extensive":
	default:
		return fmt.Errorf("config: --metrics %q: want basic or extensive", c.Metrics)
	}
	if _, err := c.compaction(); err != nil {
		return err
	}
	if c.AuthToken == "" {
		c.AuthToken = "simple"
	}
	if _, _, err := parseAuthToken(c.AuthToken); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = DefaultBcryptCost
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		return fmt.Errorf("config: --bcrypt-cost %d is outside [4, 31]", c.BcryptCost)
	}
	if c.AuthTokenTTL == 0 {
		c.AuthTokenTTL = 300
	}
	if c.CorruptCheckTime < 0 {
		return fmt.Errorf("config: --experimental-corrupt-check-time %v is negative", c.CorruptCheckTime)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func sameURLs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if strings.TrimSuffix(x[i], "/") != strings.TrimSuffix(y[i], "/") {
			return false
		}
	}
	return true
}

// Layout is the data dir's layout, with --wal-dir.
func (c *Config) Layout() datadir.Layout { return datadir.New(c.DataDir, c.WALDir) }

func (c *Config) tickInterval() time.Duration {
	return time.Duration(c.HeartbeatMs) * time.Millisecond
}

func (c *Config) electionTicks() int { return int(c.ElectionMs / c.HeartbeatMs) }
