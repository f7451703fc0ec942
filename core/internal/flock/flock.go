// Package flock locks open files against other writers: an exclusive
// flock(2), held for as long as the file stays open, so that two processes
// (or two opens in one process) never write the same file. flock locks are
// apart from the POSIX record locks SQLite takes on its own files, so a
// reader that only uses SQLite still opens a locked database.
//
// Where flock is not available, Lock does nothing: nothing keeps two
// processes from opening the same file there.
//
// SyncDir serves the same stores: a file they create or rename into place
// is durable only once its folder's entries are.
package flock

import (
	"errors"
	"os"
	"path/filepath"
)

// ErrLocked is the error of a Lock on a file another open file holds
// locked.
var ErrLocked = errors.New("locked by another open file")

// OpenLocked opens the file at path for reading and writing, creating it
// (mode 0600: it holds callbacks' data) and its folder (mode 0750) if need
// be, and locks it (see Lock). On failure nothing stays open.
func OpenLocked(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := Lock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// SyncDir makes the entries of the folder dir (a creation, a rename)
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
