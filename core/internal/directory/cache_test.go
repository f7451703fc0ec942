package directory

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
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

// countingStore counts the lookups that reach the Store.
type countingStore struct {
	*SQLite
	lookups int
}

func (s *countingStore) Lookup(ctx context.Context, svc, user string) ([]Device, error) {
	s.lookups++
	return s.SQLite.Lookup(ctx, svc, user)
}

func TestCachePreload(t *testing.T) {
	ctx := context.Background()
	file := openTemp(t)
	for _, u := range []string{"u1", "u2"} {
		if err := file.Put(ctx, "s", u, "apns", "tok-"+u, t0); err != nil {
			t.Fatal(err)
		}
	}
	_ = file.Put(ctx, "s", "u1", "fcm", "f-u1", t0)
	store := &countingStore{SQLite: file}
	c := NewCache(store, 10)
	if ok, err := c.Preload(ctx, file); !ok || err != nil {
		t.Fatalf("preload: %v, %v", ok, err)
	}
	if devs, _ := c.Lookup(ctx, "s", "u1"); len(devs) != 2 {
		t.Errorf("u1: got %v", devs)
	}
	if devs, _ := c.Lookup(ctx, "s", "nobody"); devs != nil {
		t.Errorf("unknown user: got %v", devs)
	}
	if store.lookups != 0 {
		t.Errorf("%d lookups reached the file after a complete preload; want 0", store.lookups)
	}
	// A user written after the preload is read from the file once.
	if err := c.Put(ctx, "s", "new", "apns", "tok-new", t0); err != nil {
		t.Fatal(err)
	}
	if devs, _ := c.Lookup(ctx, "s", "new"); len(devs) != 1 {
		t.Errorf("new user: got %v", devs)
	}
	if devs, _ := c.Lookup(ctx, "s", "new"); len(devs) != 1 || store.lookups != 1 {
		t.Errorf("new user again: got %v with %d file lookups; want 1", devs, store.lookups)
	}
	// A directory larger than the cache is not preloaded.
	if ok, _ := NewCache(store, 1).Preload(ctx, file); ok {
		t.Error("preloaded 3 users into a cache of 1")
	}
}

// A user's devices survive packing: several devices, empty kinds, tokens
// longer than one varint byte, the zero time, times before 1970.
func TestPackedDevices(t *testing.T) {
	long := strings.Repeat("ab", 200)
	devs := []Device{
		{Kind: "apns", Token: "0123abcd", UpdatedAt: time.Unix(1700000000, 123456789).UTC()},
		{Kind: "", Token: long},
		{Kind: "phone", Token: "+15005550006", UpdatedAt: time.Unix(-5, 7).UTC()},
	}
	got := pack(devs).devices()
	if !reflect.DeepEqual(got, devs) {
		t.Fatalf("got %+v\nwant %+v", got, devs)
	}
	if d := pack(nil).devices(); d != nil {
		t.Errorf("no devices unpacked as %v", d)
	}
}

// BenchmarkPreloadMemory reports the heap one preloaded user takes.
func BenchmarkPreloadMemory(b *testing.B) {
	const users = 20000
	m := listFunc(func(fn func(string, string, []Device) bool) {
		// Fresh strings for each row, as SQLite's scan makes them.
		for i := range users {
			fn(fmt.Sprint("planet", "kit"), fmt.Sprintf("u%d", i),
				[]Device{{Kind: fmt.Sprint("ap", "ns"), Token: fmt.Sprintf("%064x", i), UpdatedAt: time.Now()}})
		}
	})
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := NewCache(NewMemory(), 0)
		if ok, err := c.Preload(b.Context(), m); !ok || err != nil {
			b.Fatal(ok, err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/users, "B/user")
		runtime.KeepAlive(c)
	}
}

type listFunc func(fn func(string, string, []Device) bool)

func (l listFunc) Each(_ context.Context, fn func(serviceID, userID string, devs []Device) bool) error {
	l(fn)
	return nil
}
