package robustness

import (
	"strings"
	"testing"
)

// TestRobustnessCatchesBug shows that the suite can fail: lifeboat built
// with a deliberate bug (server/bug_localread.go: linearizable reads
// served locally, without ReadIndex) must show linearizability anomalies
// when a follower is cut off and keeps answering reads.
func TestRobustnessCatchesBug(t *testing.T) {
	sc := scenarioNamed(t, "partition-minority")
	var got []Anomaly
	r := runScenarioWith(t, buggySystem, sc, *flagDuration, func(a Anomaly) { got = append(got, a) })
	t.Logf("%d operations, %d anomalies", r.ops, r.anomalies)
	for _, a := range got {
		if a.Check == "linearizable" {
			t.Logf("caught, as it must be:\n%v", firstLines(a.Message, 16))
			return
		}
	}
	t.Fatalf("the checker did not catch stale linearizable reads (%d anomalies: %v)", len(got), got)
}

func scenarioNamed(t *testing.T, name string) scenario {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc
		}
	}
	t.Fatalf("no scenario %s", name)
	return scenario{}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}
