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
	quotaBackendBytes   int64
	maxWALs             uint
	maxSnapshots        uint
	forceNewCluster     bool
	leaseCheckpoint     time.Duration
	logLevel            string

	listenClientHTTPURLs   []string
	clientTLS, peerTLS     server.TLSInfo
	cipherSuites           []string
	tlsMinVersion          string
	tlsMaxVersion          string
	selfSignedCertValidity uint
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
	fs.Int64Var(&o.quotaBackendBytes, "quota-backend-bytes", d.QuotaBackendBytes, "raise the NOSPACE alarm when the backend exceeds this size")
	fs.UintVar(&o.maxWALs, "max-wals", d.MaxWALs, "maximum number of WAL files to retain (0 is unlimited)")
	fs.UintVar(&o.maxSnapshots, "max-snapshots", d.MaxSnapshots, "maximum number of snapshot files to retain (0 is unlimited)")
	fs.DurationVar(&o.leaseCheckpoint, "experimental-lease-checkpoint-interval", lease.DefaultCheckpointInterval, "how often the leader persists leases' remaining TTLs")
	fs.BoolVar(&o.forceNewCluster, "force-new-cluster", false, "force to create a new one-member cluster from this member's data")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringSliceVar(&o.listenClientHTTPURLs, "listen-client-http-urls", nil, "URLs to serve HTTP alone on (the client URLs then serve gRPC alone)")
	addTLSFlags(fs, "", &o.clientTLS)
	addTLSFlags(fs, "peer-", &o.peerTLS)
	fs.StringSliceVar(&o.peerTLS.AllowedCNs, "peer-cert-allowed-cn", nil, "comma-separated common names a peer's client certificate must have one of")
	fs.StringSliceVar(&o.cipherSuites, "cipher-suites", nil, "comma-separated TLS cipher suites for client and peer TLS (default: Go's)")
	fs.StringVar(&o.tlsMinVersion, "tls-min-version", "TLS1.2", "minimum TLS version: TLS1.2 or TLS1.3")
	fs.StringVar(&o.tlsMaxVersion, "tls-max-version", "", "maximum TLS version: TLS1.2 or TLS1.3 (default: the highest)")
	fs.UintVar(&o.selfSignedCertValidity, "self-signed-cert-validity", d.SelfSignedCertValidity, "validity, in years, of the certificates --auto-tls and --peer-auto-tls generate")
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
	c.QuotaBackendBytes = o.quotaBackendBytes
	c.MaxWALs = o.maxWALs
	c.MaxSnapshots = o.maxSnapshots
	c.ForceNewCluster = o.forceNewCluster
	c.LeaseCheckpointInterval = o.leaseCheckpoint
	c.ListenClientHTTPURLs = o.listenClientHTTPURLs
	c.ClientTLSInfo, c.PeerTLSInfo = o.clientTLS, o.peerTLS
	c.CipherSuites = o.cipherSuites
	c.TLSMinVersion, c.TLSMaxVersion = o.tlsMinVersion, o.tlsMaxVersion
	c.SelfSignedCertValidity = o.selfSignedCertValidity
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
