// Package flock locks open files against other writers: an exclusive
// flock(2), held for as long as the file stays open, so that two processes
// (or two opens in one process) never write the same file. flock locks are
// apart from the POSIX record locks SQLite takes on its own files, so a
// reader that only uses SQLite still opens a locked database.
//
// Where flock is not available, Lock does nothing: nothing keeps two
// processes from opening the same file there.
package flock

import "errors"

// ErrLocked is the error of a Lock on a file another open file holds
// locked.
var ErrLocked = errors.New("locked by another open file")
