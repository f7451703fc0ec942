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

// TestOpenLocked: the folder and the file are made (the file private), and
// a second OpenLocked fails with ErrLocked until the first file is closed.
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "f")
	f, err := OpenLocked(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := f.Stat(); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v, %v; want 0600", st.Mode(), err)
	}
	if g, err := OpenLocked(path); !errors.Is(err, ErrLocked) {
		if g != nil {
			g.Close()
		}
		t.Fatalf("second open: got %v; want ErrLocked", err)
	}
	f.Close()
	g, err := OpenLocked(path)
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	g.Close()
}
