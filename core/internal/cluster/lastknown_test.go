package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/cluster/redistest"
)

// While Redis is away, a user this replica looked up is answered from
// memory, at once when the background check says Redis is down; a user
// never looked up fails; a write through the replica forgets the user.
func TestLastKnownServesThroughAnOutage(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	c, err := Connect(ctx, Settings{Addresses: []string{srv.Addr()}, KeyPrefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var up atomic.Bool
	up.Store(true)
	d := NewLastKnown(c.Directory(), 2, up.Load)
	now := time.Now()
	for _, u := range []string{"alice", "bob"} {
		if err := d.Put(ctx, "svc", u, "apns", "tok-"+u, now); err != nil {
			t.Fatal(err)
		}
		if devs, err := d.Lookup(ctx, "svc", u); err != nil || len(devs) != 1 {
			t.Fatalf("lookup %s: %v, %v", u, devs, err)
		}
	}
	srv.Stop()

	// Redis gone, not yet noticed: the lookup fails, memory answers.
	lctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	devs, err := d.Lookup(lctx, "svc", "alice")
	cancel()
	if err != nil || len(devs) != 1 || devs[0].Token != "tok-alice" {
		t.Errorf("alice during the outage: %v, %v; want her last known device", devs, err)
	}
	// Noticed: memory answers without trying Redis.
	up.Store(false)
	start := time.Now()
	if devs, err := d.Lookup(ctx, "svc", "bob"); err != nil || len(devs) != 1 {
		t.Errorf("bob during the outage: %v, %v", devs, err)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("a lookup known to be in memory took %v while Redis is down", took)
	}
	// Never looked up: no answer to give.
	lctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	if _, err := d.Lookup(lctx, "svc", "carol"); err == nil {
		t.Error("a user never looked up was answered during the outage")
	}
	cancel()
	// A write through this replica (failing here) forgets the user.
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_ = d.Delete(wctx, "svc", "alice", "apns", "tok-alice")
	cancel()
	if _, ok := d.last(userHash("svc", "alice")); ok {
		t.Error("alice is still remembered after a write through this replica")
	}
}

// The memory is bounded.
func TestLastKnownBounded(t *testing.T) {
	l := NewLastKnown(nil, 3, nil)
	for i := range 10 {
		l.remember(userHash("s", string(rune('a'+i))), nil)
	}
	if n := len(l.users); n != 3 {
		t.Errorf("%d users remembered; want at most 3", n)
	}
}
