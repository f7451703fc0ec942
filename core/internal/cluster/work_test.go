package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/cluster/redistest"
)

// Two replicas claiming the same key at the same instant: exactly one
// wins, each time; a key claimed is free again after the window or once
// forgotten.
func TestDedupAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	var replicas [2]*Dedup
	for i := range replicas {
		c, err := Connect(ctx, Settings{Addresses: []string{srv.Addr()}, KeyPrefix: "t:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		replicas[i] = c.Dedup()
	}
	for i := range 200 {
		k := [16]byte{byte(i), byte(i >> 8), 1}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, d := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := d.Claim(ctx, k, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("key %d: %d replicas won the claim; want exactly 1", i, n)
		}
	}
	k := [16]byte{9}
	if ok, _ := replicas[0].Claim(ctx, k, 50*time.Millisecond); !ok {
		t.Fatal("first claim lost")
	}
	if ok, _ := replicas[1].Claim(ctx, k, 50*time.Millisecond); ok {
		t.Fatal("a second claim inside the window won")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ok, _ := replicas[1].Claim(ctx, k, time.Minute); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim did not expire after its window")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := replicas[1].Forget(ctx, k); err != nil {
		t.Fatal(err)
	}
	if ok, _ := replicas[0].Claim(ctx, k, time.Minute); !ok {
		t.Error("a forgotten claim is still held")
	}
}

// A prefix keeps deployments apart: the same key claimed under two
// prefixes wins under each.
func TestDedupPrefixes(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	k := [16]byte{7}
	for _, prefix := range []string{"a:", "b:"} {
		c, err := Connect(ctx, Settings{Addresses: []string{srv.Addr()}, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if ok, err := c.Dedup().Claim(ctx, k, time.Minute); !ok || err != nil {
			t.Errorf("prefix %s: got %v, %v; want a win", prefix, ok, err)
		}
	}
}

// A Redis that is gone is an error, never a false "duplicate".
func TestDedupRedisGone(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	c, err := Connect(ctx, Settings{Addresses: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv.Stop()
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	ok, err := c.Dedup().Claim(cctx, [16]byte{1}, time.Minute)
	if err == nil || ok {
		t.Errorf("got %v, %v; want an error and no claim", ok, err)
	}
}
