// Package alerts holds backupd's Prometheus alerting rules; its test checks
// them with promtool.
package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lifeboat-dev/lifeboat/backupd/internal/objstoretest"
)

// promtool is installed by .ci/object-stores beside the object stores.
func promtool(t *testing.T) string {
	p := filepath.Join(objstoretest.BinDir(), "promtool")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("LIFEBOAT_STORES") == "require" {
			t.Fatalf("promtool not installed (run .ci/object-stores): %v", err)
		}
		t.Skipf("promtool not installed (run .ci/object-stores): %v", err)
	}
	return p
}

// The rules parse (promtool check rules) and fire as the unit test says
// (promtool test rules).
func TestAlertRules(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", "backupd.rules.yml"}, {"test", "rules", "backupd.rules.test.yml"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
