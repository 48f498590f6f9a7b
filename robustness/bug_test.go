package robustness

import (
	"strings"
	"testing"
	"time"
)

// TestRobustnessCatchesBug shows that the suite can fail: lifeboat built
// with a deliberate bug (server/bug_localread.go: linearizable reads
// served locally, without ReadIndex) must show linearizability anomalies
// when a follower is cut off and keeps answering reads.
func TestRobustnessCatchesBug(t *testing.T) {
	sc := scenarioNamed(t, "partition-minority")
	// A stale read needs a read to land on the cut-off member while it
	// still thinks it leads or follows a live leader: likely in one short
	// run, not certain. Up to three runs, each at least 8 s.
	const runs = 3
	var got []Anomaly
	for run := 1; run <= runs; run++ {
		r := runScenarioWith(t, buggySystem, sc, max(*flagDuration, 8*time.Second), func(a Anomaly) { got = append(got, a) })
		t.Logf("run %d: %d operations, %d anomalies", run, r.ops, r.anomalies)
		for _, a := range got {
			if a.Check == "linearizable" {
				t.Logf("caught, as it must be:\n%v", firstLines(a.Message, 16))
				return
			}
		}
	}
	t.Fatalf("the checker did not catch stale linearizable reads in %d runs (%d anomalies: %v)", runs, len(got), got)
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
