package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Workload is the kind of request every client issues.
type Workload string

// The workloads. Range workloads read keys written beforehand (see Run).
const (
	// Put writes one key of the key space.
	Put Workload = "put"
	// Range reads one key with a linearizable read (ReadIndex on the server).
	Range Workload = "range"
	// RangeSerializable reads one key from the member's local store.
	RangeSerializable Workload = "range-serializable"
	// Txn is a transaction with a compare on the key's version and a put of it.
	Txn Workload = "txn"
)

// Workloads lists every workload in the order reports show them.
var Workloads = []Workload{Put, Range, RangeSerializable, Txn}

// ParseWorkload accepts a workload name.
func ParseWorkload(s string) (Workload, error) {
	for _, w := range Workloads {
		if string(w) == s {
			return w, nil
		}
	}
	names := make([]string, len(Workloads))
	for i, w := range Workloads {
		names[i] = string(w)
	}
	return "", fmt.Errorf("bench: unknown workload %q (want one of %s)", s, strings.Join(names, ", "))
}

// reads reports whether the workload needs the key space written first.
func (w Workload) reads() bool { return w == Range || w == RangeSerializable }

// Limits on a run, so that a typo cannot start an unbounded one.
const (
	MaxTotal    = 10_000_000
	MaxDuration = time.Hour
	MaxClients  = 10_000
)

// Config describes one run.
type Config struct {
	Endpoints []string // "host:port" or URLs, as clientv3 takes them
	Workload  Workload
	Clients   int // concurrent requesters
	Conns     int // gRPC connections (clientv3.Client) the clients share
	// Total and Duration both bound the run; it stops at the first reached.
	Total    int
	Duration time.Duration
	KeySize  int // bytes per key; keys are zero-padded decimal numbers
	ValSize  int // bytes per value
	KeySpace int // keys are drawn uniformly from [0, KeySpace)
	// RequestTimeout bounds each request; 0 means 10s.
	RequestTimeout time.Duration
	// TLS, if set, connects over TLS; Username and Password, if set,
	// authenticate every connection.
	TLS                *tls.Config
	Username, Password string
	// ServerCPU, if set, is the CPU time the servers have used so far; Run
	// reads it before and after the measured requests for
	// Report.ServerCPUPerRequest.
	ServerCPU func() (time.Duration, error)
}

// DefaultConfig is the put workload at 64 clients on 8 connections.
func DefaultConfig() Config {
	return Config{
		Endpoints: []string{"127.0.0.1:2379"},
		Workload:  Put,
		Clients:   64,
		Conns:     8,
		Total:     10_000,
		Duration:  30 * time.Second,
		KeySize:   8,
		ValSize:   256,
		KeySpace:  100_000,
	}
}

// Validate checks the config and names the first bad field.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("bench: "+format, a...)) }
	if len(c.Endpoints) == 0 {
		bad("no endpoints")
	}
	if _, err := ParseWorkload(string(c.Workload)); err != nil {
		errs = append(errs, err)
	}
	if c.Clients < 1 || c.Clients > MaxClients {
		bad("clients %d out of range [1, %d]", c.Clients, MaxClients)
	}
	if c.Conns < 1 || c.Conns > c.Clients {
		bad("conns %d out of range [1, clients=%d]", c.Conns, c.Clients)
	}
	if c.Total < 1 || c.Total > MaxTotal {
		bad("total %d out of range [1, %d]", c.Total, MaxTotal)
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		bad("duration %v out of range (0, %v]", c.Duration, MaxDuration)
	}
	if c.KeySpace < 1 {
		bad("key space %d must be at least 1", c.KeySpace)
	}
	if digits := len(strconv.Itoa(c.KeySpace - 1)); c.KeySize < digits {
		bad("key size %d cannot hold %d distinct keys (needs %d bytes)", c.KeySize, c.KeySpace, digits)
	}
	if c.ValSize < 0 {
		bad("value size %d is negative", c.ValSize)
	}
	if c.RequestTimeout < 0 {
		bad("request timeout %v is negative", c.RequestTimeout)
	}
	return errors.Join(errs...)
}

// key returns key number n of the key space, zero-padded to KeySize bytes.
func (c Config) key(n int) string {
	return fmt.Sprintf("%0*d", c.KeySize, n)
}
