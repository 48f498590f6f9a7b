package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// A start that fails (here: the client port is taken) stops what it
// started through the one shutdown, and leaves the data dir free for the
// next start.
func TestFailedStartReleasesTheDataDir(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	putKeys(t, c.client(), "k", 5)
	c.stop(0)

	ln, err := net.Listen("tcp", strings.TrimPrefix(c.cfgs[0].ListenClientURLs[0], "http://"))
	if err != nil {
		t.Skipf("cannot take the client port again: %v", err)
	}
	cfg := c.cfgs[0]
	_, err = New(&cfg)
	ln.Close()
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("start with the client port taken: %v, want address in use", err)
	}
	c.start(0)
	c.waitLeader()
	c.checkKeys(t, 0, "k", 5)
}

// A fatal error and a Stop at the same time shut the member down once;
// both wait for the end.
func TestFailAndStopTogether(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	s := c.srvs[0]
	c.srvs[0] = nil
	boom := errors.New("boom")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.fail(boom)
	}()
	var stopErr error
	go func() {
		defer wg.Done()
		stopErr = s.Stop(context.Background())
	}()
	wg.Wait()
	<-s.Done()
	if stopErr != nil && !errors.Is(stopErr, boom) {
		t.Fatalf("stop: %v", stopErr)
	}
}
