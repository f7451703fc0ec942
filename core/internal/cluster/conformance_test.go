package cluster

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/directory/directorytest"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

var deviceEqual = directorytest.DeviceEqual

func TestConformance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		directorytest.Conformance(t, func(t *testing.T) directory.Store { return openSQLite(t) })
	})
	t.Run("redis", func(t *testing.T) {
		srv := startRedis(t)
		directorytest.Conformance(t, func(t *testing.T) directory.Store { return connect(t, srv, Settings{}).Directory() })
	})
}

// openSQLite opens an embedded directory in a new folder, closed when the
// test ends.
func openSQLite(t testing.TB) *directory.SQLite {
	t.Helper()
	s, err := directory.OpenSQLite(filepath.Join(t.TempDir(), "ringside.db"))
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

func dev(kind, token string, at time.Time) directory.Device {
	return directory.Device{Kind: kind, Token: token, UpdatedAt: at}
}
