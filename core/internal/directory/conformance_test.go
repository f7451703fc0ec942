package directory_test

import (
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
		{"sqlite", func(t *testing.T) directory.Store { return directory.OpenTemp(t) }},
		{"cache over sqlite", func(t *testing.T) directory.Store { return directory.NewCache(directory.OpenTemp(t), 3) }},
	} {
		t.Run(impl.name, func(t *testing.T) { directorytest.Conformance(t, impl.open) })
	}
}
