package directory

import (
	"context"
	"testing"
)

// The cache answers from memory until a write through it drops the entry.
func TestCacheServesAndInvalidates(t *testing.T) {
	ctx := context.Background()
	base := NewMemory()
	c := NewCache(base, 2)
	if err := c.Put(ctx, "s", "u", "apns", "a1", t0); err != nil {
		t.Fatal(err)
	}
	if devs, _ := c.Lookup(ctx, "s", "u"); len(devs) != 1 {
		t.Fatalf("got %v", devs)
	}
	// A write behind the cache's back is not seen: the entry is cached.
	_ = base.Put(ctx, "s", "u", "apns", "behind", t0)
	if devs, _ := c.Lookup(ctx, "s", "u"); len(devs) != 1 {
		t.Fatalf("cached lookup: got %v; want the cached single device", devs)
	}
	// A write through the cache is.
	_ = c.Put(ctx, "s", "u", "fcm", "f1", t0)
	if devs, _ := c.Lookup(ctx, "s", "u"); len(devs) != 3 {
		t.Fatalf("after Put: got %v; want 3 devices", devs)
	}
	if _, err := c.Prune(ctx, "s", "u", "fcm", "f1", t0.Add(1)); err != nil {
		t.Fatal(err)
	}
	if devs, _ := c.Lookup(ctx, "s", "u"); len(devs) != 2 {
		t.Fatalf("after Prune: got %v", devs)
	}
	// Bounded: a third user evicts one.
	c.Lookup(ctx, "s", "v")
	c.Lookup(ctx, "s", "w")
	c.mu.RLock()
	n := len(c.users)
	c.mu.RUnlock()
	if n > 2 {
		t.Errorf("cache holds %d users; max 2", n)
	}
}
