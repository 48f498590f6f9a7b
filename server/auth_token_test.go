package server

import (
	"context"
	"testing"
	"time"
)

// TestSimpleTokenLife checks a simple token's life: valid once its entry is
// applied, refused once past its TTL (and forgotten), gone with its user or
// with auth disabled.
func TestSimpleTokenLife(t *testing.T) {
	tests := []struct {
		name   string
		ttl    time.Duration
		before func(*simpleTokens) // between assign and info
		ok     bool
	}{
		{"in its ttl", time.Hour, nil, true},
		{"past its ttl", -time.Nanosecond, nil, false},
		{"user invalidated", time.Hour, func(tp *simpleTokens) { tp.invalidateUser("alice") }, false},
		{"other user invalidated", time.Hour, func(tp *simpleTokens) { tp.invalidateUser("bob") }, true},
		{"auth disabled", time.Hour, func(tp *simpleTokens) { tp.disable() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newIndexWaiter(7)
			p, err := newTokenProvider("simple", tt.ttl, w.wait)
			if err != nil {
				t.Fatal(err)
			}
			tp := p.(*simpleTokens)
			tok, err := tp.assign("alice", 3, 7, "abc")
			if err != nil {
				t.Fatal(err)
			}
			if tt.before != nil {
				tt.before(tp)
			}
			ai, ok := tp.info(context.Background(), tok, 3)
			if ok != tt.ok {
				t.Fatalf("info(%q) ok = %v, want %v", tok, ok, tt.ok)
			}
			if !ok {
				if _, kept := tp.tokens[tok]; kept {
					t.Fatalf("refused token %q is still kept", tok)
				}
				return
			}
			if ai.user != "alice" || ai.revision != 3 {
				t.Fatalf("info = %+v, want alice at revision 3", *ai)
			}
		})
	}
}

// TestSimpleTokensExpiredAreForgotten: tokens nobody uses again (etcdctl
// authenticates for each command) are dropped by a later assign once
// they have expired, and a token in use is kept.
func TestSimpleTokensExpiredAreForgotten(t *testing.T) {
	p, err := newTokenProvider("simple", time.Hour, newIndexWaiter(100).wait)
	if err != nil {
		t.Fatal(err)
	}
	tp := p.(*simpleTokens)
	for i := range 10 {
		if _, err := tp.assign("alice", 1, uint64(i+1), "abc"); err != nil {
			t.Fatal(err)
		}
	}
	kept, err := tp.assign("bob", 1, 11, "abc")
	if err != nil {
		t.Fatal(err)
	}
	// Two hours on: alice's ten expired unused; bob's was used just now.
	tp.epoch = tp.epoch.Add(-2 * time.Hour)
	tp.tokens[kept].deadline.Store(int64(time.Since(tp.epoch) + time.Hour))
	if _, err := tp.assign("carol", 1, 12, "abc"); err != nil {
		t.Fatal(err)
	}
	if len(tp.tokens) != 2 {
		t.Fatalf("%d tokens held after the sweep, want bob's and carol's", len(tp.tokens))
	}
	if _, ok := tp.info(context.Background(), kept, 1); !ok {
		t.Fatalf("token %q in use was dropped", kept)
	}
}

// TestSimpleTokenWaitsForItsEntry: a token issued at an index this member
// has not applied yet is looked up once it has, and refused if the request
// ends first.
func TestSimpleTokenWaitsForItsEntry(t *testing.T) {
	w := newIndexWaiter(5)
	p, err := newTokenProvider("simple", time.Hour, w.wait)
	if err != nil {
		t.Fatal(err)
	}
	tp := p.(*simpleTokens)
	tok, err := tp.assign("alice", 1, 9, "abc")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := tp.info(ctx, tok, 1); ok {
		t.Fatal("token of an unapplied entry accepted for a canceled request")
	}
	done := make(chan bool)
	go func() {
		_, ok := tp.info(context.Background(), tok, 1)
		done <- ok
	}()
	w.setApplied(9)
	if !<-done {
		t.Fatal("token refused once its entry applied")
	}
	if _, ok := tp.info(context.Background(), "abc.x", 1); ok {
		t.Fatal("malformed token accepted")
	}
}
