// Package freeport picks TCP ports on 127.0.0.1 for servers that tests and
// tools start, often as separate processes that listen a moment later. The
// ports come from below Linux's ephemeral range (32768 and up): a port the
// kernel hands out for port 0 lies in that range, and any client's source
// port can take it between the pick and the server's listen.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

const low, high = 10000, 32768 // [low, high)

var (
	mu     sync.Mutex
	next   = low + rand.IntN(high-low) // processes start apart
	picked = map[int]bool{}
)

// Pick returns n distinct ports, free on 127.0.0.1 when it looked, and not
// returned before by this process.
func Pick(n int) ([]int, error) {
	mu.Lock()
	defer mu.Unlock()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == high-low {
			return nil, errors.New("freeport: no free port below 32768 on 127.0.0.1")
		}
		p := next
		next++
		if next == high {
			next = low
		}
		if picked[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		picked[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// One is Pick(1) for a test: a failure stops it.
func One(t interface {
	Helper()
	Fatalf(string, ...any)
}) int {
	t.Helper()
	ps, err := Pick(1)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return ps[0]
}
