package bench

import (
	"os"
	"runtime"
	"testing"
)

// TestProcessCPUGrows reads this process's CPU time from /proc while it
// spins: the reading grows.
func TestProcessCPUGrows(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process CPU times are read from /proc")
	}
	if !cpuMeasured() {
		t.Fatal("cpuMeasured is false on Linux")
	}
	start, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for range 1_000_000 {
		now, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now > start {
			return
		}
		for i := range 10_000 {
			x += i
		}
	}
	t.Fatalf("CPU time stayed at %v (%d)", start, x)
}

func TestCPURounds(t *testing.T) {
	tests := []struct {
		name       string
		cpu        []float64
		wantRounds []float64
		wantMedian float64
	}{
		{"not measured", []float64{0, 0}, nil, 0},
		{"odd", []float64{30, 10, 20}, []float64{30, 10, 20}, 20},
		{"a round under the resolution", []float64{0, 40, 20}, []float64{40, 20}, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reps []*Report
			for _, c := range tt.cpu {
				reps = append(reps, &Report{ServerCPUPerRequest: c})
			}
			rounds, med := cpuRounds(reps)
			if med != tt.wantMedian || len(rounds) != len(tt.wantRounds) {
				t.Fatalf("cpuRounds = %v, %v; want %v, %v", rounds, med, tt.wantRounds, tt.wantMedian)
			}
			for i := range rounds {
				if rounds[i] != tt.wantRounds[i] {
					t.Fatalf("cpuRounds = %v, want %v", rounds, tt.wantRounds)
				}
			}
		})
	}
}
