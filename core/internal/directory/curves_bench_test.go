package directory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkDirectorySize is the directory as it grows: n users, one apns
// device each, in a SQLite file. For each n:
//   - preload: the cache of every user (NewCache with room for all n) read
//     from the file, as serve does at start; B/user is the heap the cache
//     holds after GC, ns/user the preload's time;
//   - cache: a lookup of a random user in that preloaded cache;
//   - sqlite: a lookup of a random user in the file, uncached;
//   - cache-default-max (n above the default bound): serve's cache,
//     NewCache(file, 0), whose 100,000 users cannot hold the file, so
//     Preload refuses and lookups of random users mostly miss to SQLite.
//
// RINGSIDE_BENCH_USERS (a comma-separated list of sizes) measures other
// sizes instead: ten million users take two minutes with -count=1 (a
// minute of it the preload) and 3.2 GiB of RSS at the peak under
// GOMEMLIMIT=3500MiB.
func BenchmarkDirectorySize(b *testing.B) {
	sizes := []int{10_000, 100_000, 1_000_000}
	if v := os.Getenv("RINGSIDE_BENCH_USERS"); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("RINGSIDE_BENCH_USERS: %q is not a positive number", f)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			s := openTemp(b)
			fillUsers(b, s, n)
			ids := randomUsers(n, 1<<16)
			ctx := context.Background()
			var full *Cache
			b.Run("preload", func(b *testing.B) {
				var perUser float64
				for b.Loop() {
					full = nil
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					c := NewCache(s, n)
					if ok, err := c.Preload(ctx, s); !ok || err != nil {
						b.Fatal(ok, err)
					}
					runtime.GC()
					runtime.ReadMemStats(&after)
					perUser = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
					full = c
				}
				b.ReportMetric(perUser, "B/user")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/user")
			})
			if full == nil {
				b.Fatal("no preloaded cache")
			}
			b.Run("cache", func(b *testing.B) { lookupRandom(b, full, ids) })
			full = nil
			runtime.GC()
			b.Run("sqlite", func(b *testing.B) { lookupRandom(b, s, ids) })
			if n > 100_000 {
				b.Run("cache-default-max", func(b *testing.B) {
					c := NewCache(s, 0)
					if ok, err := c.Preload(ctx, s); ok || err != nil {
						b.Fatalf("preload of %d users into the default cache: %v, %v; want false, nil", n, ok, err)
					}
					lookupRandom(b, c, ids)
				})
			}
		})
	}
}

// lookupRandom looks the users of ids up in turn, each expected to have
// one device.
func lookupRandom(b *testing.B, s Store, ids []string) {
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		devs, err := s.Lookup(ctx, "planetkit", ids[i&(len(ids)-1)])
		if err != nil || len(devs) != 1 {
			b.Fatalf("got %d devices, %v; want 1, nil", len(devs), err)
		}
		i++
	}
}

// fillUsers writes users u0 … u(n-1) of planetkit, one apns device each,
// in one transaction.
func fillUsers(b *testing.B, s *SQLite, n int) {
	b.Helper()
	tx, err := s.c.Load().wdb.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt, err := tx.Prepare(`INSERT INTO devices (service_id, user_id, kind, token, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)`)
	if err != nil {
		b.Fatal(err)
	}
	at := UnixNano(t0)
	for i := range n {
		if _, err := stmt.Exec("planetkit", fmt.Sprintf("u%d", i), "apns", fmt.Sprintf("%064x", i), at); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// randomUsers returns k (a power of two) user IDs drawn at random from
// u0 … u(n-1), with a fixed seed.
func randomUsers(n, k int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, k)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", r.IntN(n))
	}
	return ids
}
