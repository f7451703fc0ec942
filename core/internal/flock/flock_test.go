//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package flock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLock: a second open of a locked file cannot lock it until the first
// is closed.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	first, second := open(), open()
	if err := Lock(first); err != nil {
		t.Fatal(err)
	}
	if err := Lock(second); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: got %v; want ErrLocked", err)
	}
	first.Close()
	if err := Lock(second); err != nil {
		t.Fatalf("lock after the first closed: %v", err)
	}
}
