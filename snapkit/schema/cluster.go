package schema

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Keys of the cluster bucket.
var (
	ClusterVersionKey = []byte("clusterVersion")
	DowngradeKey      = []byte("downgrade")
)

// DowngradeInfo is the JSON stored in cluster/downgrade.
type DowngradeInfo struct {
	// TargetVersion is the version being downgraded to; "" when none.
	TargetVersion string `json:"target-version"`
	// Enabled reports whether a downgrade is in progress.
	Enabled bool `json:"enabled"`
}

// ClusterVersion returns cluster/clusterVersion ("3.6.0"), or "" if absent.
// A value that is not a semantic version is an error.
func ClusterVersion(tx *bolt.Tx) (string, error) {
	return readVersion(tx, ClusterBucket, ClusterVersionKey)
}

// SetClusterVersion writes cluster/clusterVersion.
func SetClusterVersion(tx *bolt.Tx, version string) error {
	return put(tx, ClusterBucket, ClusterVersionKey, []byte(version))
}

// Downgrade returns cluster/downgrade, and false if it is absent.
func Downgrade(tx *bolt.Tx) (DowngradeInfo, bool, error) {
	v := get(tx, ClusterBucket, DowngradeKey)
	if v == nil {
		return DowngradeInfo{}, false, nil
	}
	var d DowngradeInfo
	if err := json.Unmarshal(v, &d); err != nil {
		return DowngradeInfo{}, false, badValue(ClusterBucket, DowngradeKey, "%v", err)
	}
	return d, true, nil
}

// SetDowngrade writes d as JSON into cluster/downgrade.
func SetDowngrade(tx *bolt.Tx, d DowngradeInfo) error {
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("schema: marshal downgrade: %w", err)
	}
	return put(tx, ClusterBucket, DowngradeKey, v)
}
