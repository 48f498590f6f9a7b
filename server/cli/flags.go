package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/lifeboat-dev/lifeboat/server"
	"github.com/lifeboat-dev/lifeboat/server/lease"
)

// memberOptions holds the member flags, named as etcd's.
type memberOptions struct {
	name                string
	dataDir             string
	walDir              string
	listenClientURLs    []string
	advertiseClientURLs []string
	listenPeerURLs      []string
	advertisePeerURLs   []string
	listenMetricsURLs   []string
	initialCluster      string
	initialClusterToken string
	initialClusterState string
	snapshotCount       uint64
	heartbeatMs         uint
	electionMs          uint
	tickAdvance         bool
	quotaBackendBytes   int64
	maxWALs             uint
	maxSnapshots        uint
	forceNewCluster     bool
	strictReconfigCheck bool
	leaseCheckpoint     time.Duration
	logLevel            string

	listenClientHTTPURLs   []string
	clientTLS, peerTLS     server.TLSInfo
	cipherSuites           []string
	tlsMinVersion          string
	tlsMaxVersion          string
	selfSignedCertValidity uint

	configFile              string
	autoCompactionMode      string
	autoCompactionRetention string
	maxRequestBytes         uint
	maxTxnOps               uint
	grpcKeepAliveMinTime    time.Duration
	grpcKeepAliveInterval   time.Duration
	grpcKeepAliveTimeout    time.Duration
	maxConcurrentStreams    uint32
	enablePprof             bool
	metrics                 string
	logger                  string
	logOutputs              []string
	logFormat               string
	initialCorruptCheck     bool
	corruptCheckTime        time.Duration
	unsafeNoFsync           bool
	authToken               string
	authTokenTTL            uint
	bcryptCost              uint
	v2Deprecation           string
}

func newMemberOptions() *memberOptions { return &memberOptions{} }

func (o *memberOptions) addFlags(fs *pflag.FlagSet) {
	d := server.NewConfig()
	fs.StringVar(&o.name, "name", d.Name, "human-readable name for this member")
	fs.StringVar(&o.dataDir, "data-dir", "", `path to the data directory (default "<name>.etcd")`)
	fs.StringVar(&o.walDir, "wal-dir", "", "path to a dedicated WAL directory")
	fs.StringSliceVar(&o.listenClientURLs, "listen-client-urls", d.ListenClientURLs, "URLs to listen on for client traffic")
	fs.StringSliceVar(&o.advertiseClientURLs, "advertise-client-urls", d.AdvertiseClientURLs, "client URLs to advertise to the cluster")
	fs.StringSliceVar(&o.listenPeerURLs, "listen-peer-urls", d.ListenPeerURLs, "URLs to listen on for peer traffic")
	fs.StringSliceVar(&o.advertisePeerURLs, "initial-advertise-peer-urls", d.AdvertisePeerURLs, "this member's peer URLs to advertise to the cluster")
	fs.StringSliceVar(&o.listenMetricsURLs, "listen-metrics-urls", nil, "extra URLs to serve /metrics and /health on")
	fs.StringVar(&o.initialCluster, "initial-cluster", "", `initial cluster configuration for bootstrapping (default "<name>=<initial-advertise-peer-urls>")`)
	fs.StringVar(&o.initialClusterToken, "initial-cluster-token", d.InitialClusterToken, "initial cluster token, mixed into member and cluster IDs")
	fs.StringVar(&o.initialClusterState, "initial-cluster-state", "new", "initial cluster state: new or existing")
	fs.Uint64Var(&o.snapshotCount, "snapshot-count", d.SnapshotCount, "number of committed transactions that trigger a snapshot to disk")
	fs.UintVar(&o.heartbeatMs, "heartbeat-interval", d.HeartbeatMs, "time (in milliseconds) of a heartbeat interval")
	fs.UintVar(&o.electionMs, "election-timeout", d.ElectionMs, "time (in milliseconds) for an election to timeout")
	fs.BoolVar(&o.tickAdvance, "initial-election-tick-advance", d.InitialElectionTickAdvance, "whether to fast-forward the initial election ticks on boot for faster election")
	fs.Int64Var(&o.quotaBackendBytes, "quota-backend-bytes", d.QuotaBackendBytes, "raise the NOSPACE alarm when the backend exceeds this size")
	fs.UintVar(&o.maxWALs, "max-wals", d.MaxWALs, "maximum number of WAL files to retain (0 is unlimited)")
	fs.UintVar(&o.maxSnapshots, "max-snapshots", d.MaxSnapshots, "maximum number of snapshot files to retain (0 is unlimited)")
	fs.DurationVar(&o.leaseCheckpoint, "experimental-lease-checkpoint-interval", lease.DefaultCheckpointInterval, "how often the leader persists leases' remaining TTLs")
	fs.BoolVar(&o.forceNewCluster, "force-new-cluster", false, "force to create a new one-member cluster from this member's data")
	fs.BoolVar(&o.strictReconfigCheck, "strict-reconfig-check", d.StrictReconfigCheck, "reject reconfiguration requests that would cause quorum loss")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringSliceVar(&o.listenClientHTTPURLs, "listen-client-http-urls", nil, "URLs to serve HTTP alone on (the client URLs then serve gRPC alone)")
	addTLSFlags(fs, "", &o.clientTLS)
	addTLSFlags(fs, "peer-", &o.peerTLS)
	fs.StringSliceVar(&o.peerTLS.AllowedCNs, "peer-cert-allowed-cn", nil, "comma-separated common names a peer's client certificate must have one of")
	fs.StringSliceVar(&o.peerTLS.AllowedHostnames, "peer-cert-allowed-hostname", nil, "comma-separated host names a peer's client certificate must be valid for one of")
	fs.StringSliceVar(&o.cipherSuites, "cipher-suites", nil, "comma-separated TLS cipher suites for client and peer TLS (default: Go's)")
	fs.StringVar(&o.tlsMinVersion, "tls-min-version", "TLS1.2", "minimum TLS version: TLS1.2 or TLS1.3")
	fs.StringVar(&o.tlsMaxVersion, "tls-max-version", "", "maximum TLS version: TLS1.2 or TLS1.3 (default: the highest)")
	fs.UintVar(&o.selfSignedCertValidity, "self-signed-cert-validity", d.SelfSignedCertValidity, "validity, in years, of the certificates --auto-tls and --peer-auto-tls generate")

	fs.StringVar(&o.configFile, "config-file", "", "path to an etcd YAML configuration file (its keys are the flag names); other flags and ETCD_* variables are then ignored")
	fs.StringVar(&o.autoCompactionMode, "auto-compaction-mode", d.AutoCompactionMode, "interpret --auto-compaction-retention as 'periodic' (a duration or hours) or 'revision' (revisions)")
	fs.StringVar(&o.autoCompactionRetention, "auto-compaction-retention", "0", "auto compaction retention for the mvcc key value store; 0 disables auto compaction")
	fs.UintVar(&o.maxRequestBytes, "max-request-bytes", d.MaxRequestBytes, "maximum client request size in bytes the server will accept")
	fs.UintVar(&o.maxTxnOps, "max-txn-ops", d.MaxTxnOps, "maximum number of operations permitted in a transaction")
	fs.DurationVar(&o.grpcKeepAliveMinTime, "grpc-keepalive-min-time", d.GRPCKeepAliveMinTime, "minimum interval a client should wait before pinging the server")
	fs.DurationVar(&o.grpcKeepAliveInterval, "grpc-keepalive-interval", d.GRPCKeepAliveInterval, "frequency of server-to-client pings to check if a connection is alive (0 to disable)")
	fs.DurationVar(&o.grpcKeepAliveTimeout, "grpc-keepalive-timeout", d.GRPCKeepAliveTimeout, "additional duration of wait before closing a non-responsive connection (0 to disable)")
	fs.Uint32Var(&o.maxConcurrentStreams, "max-concurrent-streams", d.MaxConcurrentStreams, "maximum concurrent streams each client can open at a time")
	fs.BoolVar(&o.enablePprof, "enable-pprof", false, "enable runtime profiling data via HTTP server at /debug/pprof/")
	fs.StringVar(&o.metrics, "metrics", d.Metrics, "set level of detail for exported metrics: basic or extensive")
	fs.StringVar(&o.logger, "logger", "zap", "the logger: zap (the only one etcd 3.6 has; lifeboat writes zap's JSON shape)")
	fs.StringSliceVar(&o.logOutputs, "log-outputs", []string{"default"}, "where to write logs: default (stderr), stderr, stdout, or file paths")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or console")
	fs.BoolVar(&o.initialCorruptCheck, "experimental-initial-corrupt-check", false, "check this member's data against its peers' before serving clients")
	fs.DurationVar(&o.corruptCheckTime, "experimental-corrupt-check-time", 0, "period of the leader's corruption check of every member (0 disables it); deprecated in etcd 3.6 for --corrupt-check-time")
	fs.DurationVar(&o.corruptCheckTime, "corrupt-check-time", 0, "period of the leader's corruption check of every member (0 disables it)")
	fs.BoolVar(&o.unsafeNoFsync, "unsafe-no-fsync", false, "disables fsync, unsafe, will cause data loss")
	fs.StringVar(&o.authToken, "auth-token", d.AuthToken, "auth token type and options: simple, or jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>[,ttl=<duration>]")
	fs.UintVar(&o.authTokenTTL, "auth-token-ttl", d.AuthTokenTTL, "the lifetime in seconds of a simple auth token after its last use")
	fs.UintVar(&o.bcryptCost, "bcrypt-cost", d.BcryptCost, "bcrypt cost factor for auth password hashing (4 to 31)")
	fs.StringVar(&o.v2Deprecation, "v2-deprecation", "write-only", "accepted and ignored with etcd 3.6's warning: the v2 store is write-only, as etcd enforces")
}

// addTLSFlags adds one side's TLS flags; prefix is "" (client) or "peer-".
func addTLSFlags(fs *pflag.FlagSet, prefix string, t *server.TLSInfo) {
	side := "client"
	if prefix != "" {
		side = "peer"
	}
	fs.StringVar(&t.CertFile, prefix+"cert-file", "", "path to the "+side+" server TLS certificate file")
	fs.StringVar(&t.KeyFile, prefix+"key-file", "", "path to the "+side+" server TLS key file")
	fs.StringVar(&t.TrustedCAFile, prefix+"trusted-ca-file", "", "path to the "+side+" server TLS trusted CA file")
	fs.BoolVar(&t.ClientCertAuth, prefix+"client-cert-auth", false, "require and verify client certificates on the "+side+" URLs")
	fs.BoolVar(&t.AutoTLS, prefix+"auto-tls", false, side+" TLS using generated self-signed certificates")
	crl := "client-crl-file"
	if prefix != "" {
		crl = "peer-crl-file"
	}
	fs.StringVar(&t.CRLFile, crl, "", "path to the "+side+" certificate revocation list file")
	fs.StringVar(&t.ClientCertFile, prefix+"client-cert-file", "", "path to the certificate the member presents as a "+side+" client (default: the "+prefix+"cert-file)")
	fs.StringVar(&t.ClientKeyFile, prefix+"client-key-file", "", "path to the key of the "+prefix+"client-cert-file")
}

// config turns the flags into a server configuration.
func (o *memberOptions) config() (*server.Config, error) {
	c := server.NewConfig()
	c.Name = o.name
	c.DataDir = o.dataDir
	c.WALDir = o.walDir
	c.ListenClientURLs = o.listenClientURLs
	c.AdvertiseClientURLs = o.advertiseClientURLs
	c.ListenPeerURLs = o.listenPeerURLs
	c.AdvertisePeerURLs = o.advertisePeerURLs
	c.ListenMetricsURLs = o.listenMetricsURLs
	c.InitialClusterToken = o.initialClusterToken
	switch o.initialClusterState {
	case "new":
		c.NewCluster = true
	case "existing":
		c.NewCluster = false
	default:
		return nil, fmt.Errorf("--initial-cluster-state %q: want new or existing", o.initialClusterState)
	}
	if o.initialCluster != "" {
		ic, err := server.ParseInitialCluster(o.initialCluster)
		if err != nil {
			return nil, fmt.Errorf("--initial-cluster: %w", err)
		}
		c.InitialCluster = ic
	}
	c.SnapshotCount = o.snapshotCount
	c.HeartbeatMs = o.heartbeatMs
	c.ElectionMs = o.electionMs
	c.InitialElectionTickAdvance = o.tickAdvance
	c.QuotaBackendBytes = o.quotaBackendBytes
	c.MaxWALs = o.maxWALs
	c.MaxSnapshots = o.maxSnapshots
	c.ForceNewCluster = o.forceNewCluster
	c.StrictReconfigCheck = o.strictReconfigCheck
	c.LeaseCheckpointInterval = o.leaseCheckpoint
	c.ListenClientHTTPURLs = o.listenClientHTTPURLs
	c.ClientTLSInfo, c.PeerTLSInfo = o.clientTLS, o.peerTLS
	c.CipherSuites = o.cipherSuites
	c.TLSMinVersion, c.TLSMaxVersion = o.tlsMinVersion, o.tlsMaxVersion
	c.SelfSignedCertValidity = o.selfSignedCertValidity
	c.AutoCompactionMode, c.AutoCompactionRetention = o.autoCompactionMode, o.autoCompactionRetention
	c.MaxRequestBytes, c.MaxTxnOps = o.maxRequestBytes, o.maxTxnOps
	c.GRPCKeepAliveMinTime, c.GRPCKeepAliveInterval, c.GRPCKeepAliveTimeout = o.grpcKeepAliveMinTime, o.grpcKeepAliveInterval, o.grpcKeepAliveTimeout
	c.MaxConcurrentStreams = o.maxConcurrentStreams
	c.EnablePprof, c.Metrics = o.enablePprof, o.metrics
	c.InitialCorruptCheck, c.CorruptCheckTime = o.initialCorruptCheck, o.corruptCheckTime
	c.UnsafeNoFsync = o.unsafeNoFsync
	c.AuthToken, c.AuthTokenTTL, c.BcryptCost = o.authToken, o.authTokenTTL, o.bcryptCost
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
