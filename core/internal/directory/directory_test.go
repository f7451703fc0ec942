package directory

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// openTemp opens a store in a new folder (and subfolders), closed when the
// test ends.
func openTemp(t testing.TB) *SQLite {
	t.Helper()
	return openWith(t, filepath.Join(t.TempDir(), "sub", "dir", "ringside.db"), SQLiteOptions{})
}

// OpenTemp is openTemp for the package's external tests.
var OpenTemp = openTemp

// openWith opens the store at path with opt; it is closed when the test
// ends, if the test did not close it.
func openWith(t testing.TB, path string, opt SQLiteOptions) *SQLite {
	t.Helper()
	s, err := OpenSQLiteWith(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

func deviceEqual(a, b Device) bool {
	return a.Kind == b.Kind && a.Token == b.Token && a.UpdatedAt.Equal(b.UpdatedAt)
}

func BenchmarkLookup(b *testing.B) {
	for _, impl := range []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"sqlite", func(b *testing.B) Store { return openTemp(b) }},
		{"memory", func(b *testing.B) Store { return NewMemory() }},
		{"cache over sqlite", func(b *testing.B) Store { return NewCache(openTemp(b), 0) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.open(b)
			ctx := context.Background()
			for u := range 1000 {
				for _, kind := range []string{"apns", "fcm"} {
					tok := fmt.Sprintf("%064x", u)
					if err := s.Put(ctx, "planetkit", fmt.Sprint(u), kind, tok, t0); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					devs, err := s.Lookup(ctx, "planetkit", "500")
					if err != nil || len(devs) != 2 {
						b.Fatalf("got %d devices, %v; want 2, nil", len(devs), err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						devs, err := s.Lookup(ctx, "planetkit", "500")
						if err != nil || len(devs) != 2 {
							b.Errorf("got %d devices, %v; want 2, nil", len(devs), err)
							return
						}
					}
				})
			})
		})
	}
}
