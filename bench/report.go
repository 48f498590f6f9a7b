package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one run. Latencies are in milliseconds.
type Report struct {
	Workload   Workload `json:"workload"`
	Endpoints  []string `json:"endpoints"`
	Clients    int      `json:"clients"`
	Conns      int      `json:"conns"`
	KeySize    int      `json:"key_size"`
	ValSize    int      `json:"val_size"`
	KeySpace   int      `json:"key_space"`
	Requests   int      `json:"requests"` // that succeeded
	Errors     int      `json:"errors"`
	FirstError string   `json:"first_error,omitempty"`
	// Stopped says which bound ended the run: "total", "duration" or "canceled".
	Stopped    string  `json:"stopped"`
	ElapsedSec float64 `json:"elapsed_s"`
	Throughput float64 `json:"ops_per_s"`
	Latency    Latency `json:"latency_ms"`
	// ServerCPUPerRequest is the servers' CPU time (user and system, every
	// member) per successful request in microseconds, while the requests
	// ran; 0 when not measured (Config.ServerCPU) or under the 10 ms
	// resolution of /proc.
	ServerCPUPerRequest float64 `json:"server_cpu_us_per_request,omitempty"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func newReport(cfg Config, res *result) *Report {
	r := &Report{
		Workload:   cfg.Workload,
		Endpoints:  cfg.Endpoints,
		Clients:    cfg.Clients,
		Conns:      cfg.Conns,
		KeySize:    cfg.KeySize,
		ValSize:    cfg.ValSize,
		KeySpace:   cfg.KeySpace,
		Requests:   res.ok(),
		Errors:     res.errors,
		Stopped:    res.stopped,
		ElapsedSec: res.elapsed.Seconds(),
		Latency:    distribution(res.latencies),
	}
	if res.firstErr != nil {
		r.FirstError = res.firstErr.Error()
	}
	if res.elapsed > 0 {
		r.Throughput = float64(res.ok()) / res.elapsed.Seconds()
	}
	return r
}

// distribution sorts lats in place and summarizes them; percentiles are by
// nearest rank.
func distribution(lats []time.Duration) Latency {
	if len(lats) == 0 {
		return Latency{}
	}
	slices.Sort(lats)
	var sum time.Duration
	for _, l := range lats {
		sum += l
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lats)))) - 1
		return ms(lats[max(i, 0)])
	}
	return Latency{
		Mean: ms(sum / time.Duration(len(lats))),
		P50:  rank(0.50),
		P90:  rank(0.90),
		P99:  rank(0.99),
		Max:  ms(lats[len(lats)-1]),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteTable writes one row per report.
func WriteTable(w io.Writer, reports []*Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "WORKLOAD\tCLIENTS\tCONNS\tREQUESTS\tERRORS\tSTOPPED\tELAPSED\tOPS/S\tP50 ms\tP90 ms\tP99 ms\tMAX ms\t")
	for _, r := range reports {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%.2fs\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
			r.Workload, r.Clients, r.Conns, r.Requests, r.Errors, r.Stopped, r.ElapsedSec,
			r.Throughput, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	}
	for _, r := range reports {
		if r.FirstError != "" {
			fmt.Fprintf(tw, "%s at %d clients: %d errors, first: %s\n", r.Workload, r.Clients, r.Errors, strings.TrimSpace(r.FirstError))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: writing table: %w", err)
	}
	return nil
}
