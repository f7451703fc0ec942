package directory_test

import (
	"path/filepath"
	"testing"

	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/directory/directorytest"
)

// Every embedded store passes the cases every directory.Store must.
func TestStore(t *testing.T) {
	for _, impl := range []struct {
		name string
		open func(t *testing.T) directory.Store
	}{
		{"memory", func(t *testing.T) directory.Store { return directory.NewMemory() }},
		{"sqlite", func(t *testing.T) directory.Store { return openTemp(t) }},
		{"cache over sqlite", func(t *testing.T) directory.Store { return directory.NewCache(openTemp(t), 3) }},
	} {
		t.Run(impl.name, func(t *testing.T) { directorytest.Conformance(t, impl.open) })
	}
}

// openTemp opens a store in a new folder (and subfolders), closed when the
// test ends.
func openTemp(t *testing.T) *directory.SQLite {
	t.Helper()
	s, err := directory.OpenSQLite(filepath.Join(t.TempDir(), "sub", "dir", "ringside.db"))
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
