package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ringside/ringside/core/internal/flock"
)

// busyTimeout is how long a connection waits for a lock held by another
// connection or process before it reports SQLITE_BUSY.
const busyTimeout = 5 * time.Second

const schema = `CREATE TABLE IF NOT EXISTS devices (
	service_id TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	kind       TEXT NOT NULL,
	token      TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (service_id, user_id, kind, token)
) WITHOUT ROWID`

const (
	sqlLookup = `SELECT kind, token, updated_at FROM devices
		WHERE service_id = ?1 AND user_id = ?2 ORDER BY kind, token`
	sqlPut = `INSERT INTO devices (service_id, user_id, kind, token, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT (service_id, user_id, kind, token) DO UPDATE SET updated_at = excluded.updated_at`
	sqlDelete = `DELETE FROM devices
		WHERE service_id = ?1 AND user_id = ?2 AND kind = ?3 AND token = ?4`
	sqlDeleteUser = `DELETE FROM devices WHERE service_id = ?1 AND user_id = ?2`
	// sqlPrune decides and deletes in one statement: ?5 = 1 means "no
	// provider timestamp, remove unconditionally".
	sqlPrune = `DELETE FROM devices
		WHERE service_id = ?1 AND user_id = ?2 AND kind = ?3 AND token = ?4
		AND (?5 = 1 OR updated_at < ?6)`
)

// SQLite is the embedded Store: one SQLite file in WAL mode, so other
// processes (ringside explain) can open the same file and read while the
// server writes. Writes go through a single connection (SQLite has one
// writer); reads use a pool of read-only connections.
//
// A write is durable only if it reaches the file at the path: SQLite keeps
// writing into a file removed or replaced under it, and those writes are
// gone at the next start. So every write checks, before and after, that the
// file, its -wal and its -shm are still the ones opened (a few stats), and
// OpenSQLiteWith's CheckEvery does it in the background too:
//   - removed (the file, or its -wal or -shm): the open database is copied
//     (VACUUM INTO) to a new file put at the path, and the store reopens
//     it; nothing written before is lost, and the write goes on;
//   - replaced by another file: writes are refused with ErrNotDurable until
//     the file opened is back at the path (or ringside restarts); reads go
//     on from the file opened;
//   - a write fails (disk full, read-only, I/O error): it returns an error
//     wrapping ErrNotDurable, and the store stays not durable until a write
//     (or the background probe) succeeds.
//
// Healthy reports that state without I/O.
type SQLite struct {
	path string // as given
	abs  string
	opt  SQLiteOptions
	log  *slog.Logger

	c      atomic.Pointer[conns] // the open file's connections
	health atomic.Pointer[error] // nil: durable

	// mu serializes writes, checks, rebuilds and Close, and guards:
	mu       sync.Mutex
	files    files // what c opened
	mode     fs.FileMode
	lock     *os.File // the flocked file (Exclusive), or nil
	state    fileState
	fileErr  error // set while state != fileOK
	writeErr error // the last write's failure; nil once one succeeds
	closed   bool
	// After a failed rebuild (a full copy of the database), the next is
	// not tried before retryAt: 1 s, doubling to 30 s.
	retryAt    time.Time
	retryAfter time.Duration

	stopOnce sync.Once
	stop     chan struct{} // closed by Close: ends the watcher
	done     chan struct{} // closed when the watcher ended
}

// conns are the connections and statements of one open file.
type conns struct {
	wdb *sql.DB // one connection: every write
	rdb *sql.DB // read-only pool: Lookup

	lookup, put, del, delUser, prune *sql.Stmt
}

// files are the identities of the directory file and its -wal and -shm
// (nil for one that was absent).
type files struct{ db, wal, shm os.FileInfo }

type fileState int

const (
	fileOK         fileState = iota
	fileReplaced             // another file is at the path
	fileNotRebuilt           // removed, and the rebuild failed
	fileUnknown              // the path cannot be checked
)

var _ Store = (*SQLite)(nil)

// ErrNotDurable is wrapped by the error of a write that did not reach the
// directory file, or was refused because the store is not durable (see
// SQLite).
var ErrNotDurable = errors.New("not durable")

// ErrLocked is wrapped by the error of an Exclusive open of a file that
// another store holds: another ringside serves it.
var ErrLocked = errors.New("another ringside process holds it")

// SQLiteOptions configures OpenSQLiteWith; the zero value opens the file as
// OpenSQLite does.
type SQLiteOptions struct {
	// Exclusive holds an exclusive lock (flock) on the file while the store
	// is open: another Exclusive open of it fails with ErrLocked. Plain
	// opens (ringside explain) are not kept out. ringside serve opens its
	// directory so, with or without a journal.
	Exclusive bool
	// CheckEvery, when positive, checks the file (and rebuilds it, see
	// SQLite) from a goroutine every interval, and, while the last write
	// failed, probes with a small write so the store turns durable again
	// once the disk has room. Close ends the goroutine.
	CheckEvery time.Duration
	// WriteFailed, when set, is called for each write that failed or was
	// refused because the store was not durable (a metric counts them).
	WriteFailed func(err error)
	// Logger logs changes of durability and rebuilds; nil discards.
	Logger *slog.Logger
}

// OpenSQLite opens, or creates, the directory file at path, creating its
// parent folder if needed. Several processes may open the same file.
func OpenSQLite(path string) (*SQLite, error) {
	return OpenSQLiteWith(path, SQLiteOptions{})
}

// OpenSQLiteWith is OpenSQLite with options.
func OpenSQLiteWith(path string, opt SQLiteOptions) (*SQLite, error) {
	s, err := openSQLite(path, opt)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", path, err)
	}
	return s, nil
}

func openSQLite(path string, opt SQLiteOptions) (_ *SQLite, err error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("create folder: %w", err)
	}
	s := &SQLite{path: path, abs: abs, opt: opt, log: opt.Logger, mode: 0o600}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opt.Exclusive {
		// Locked before SQLite touches the file. The descriptor stays open
		// until after SQLite's own are closed: closing any descriptor of a
		// file drops the process's POSIX locks on it, SQLite's included.
		f, err := flock.OpenLocked(abs)
		if errors.Is(err, flock.ErrLocked) {
			return nil, fmt.Errorf("%w (an exclusive lock on %s): stop it, or give this one another directory path", ErrLocked, abs)
		}
		if err != nil {
			return nil, err
		}
		s.lock = f
	}
	c, err := openConns(abs)
	if err != nil {
		if s.lock != nil {
			s.lock.Close()
		}
		return nil, err
	}
	s.c.Store(c)
	if s.files, err = s.stat(); err == nil && s.files.db == nil {
		err = fs.ErrNotExist
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	s.mode = s.files.db.Mode().Perm()
	if opt.CheckEvery > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.watch(opt.CheckEvery)
	}
	return s, nil
}

// openConns opens the file at abs: the writer (which sets WAL mode, kept
// in the file, before any reader opens), the read pool and the statements.
func openConns(abs string) (_ *conns, err error) {
	c := &conns{}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	c.wdb, err = sql.Open("sqlite", DSN(abs, false))
	if err != nil {
		return nil, err
	}
	c.wdb.SetMaxOpenConns(1)
	c.wdb.SetMaxIdleConns(1)
	c.wdb.SetConnMaxIdleTime(0)
	c.wdb.SetConnMaxLifetime(0)
	ctx := context.Background()
	if _, err := c.wdb.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	var mode string
	if err := c.wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("read journal mode: %w", err)
	}
	if mode != "wal" {
		return nil, fmt.Errorf("journal mode is %q, want wal", mode)
	}

	// Pure-Go SQLite reads are CPU-bound: one connection per P is enough
	// (the serve path reads through directory.Cache, so misses only).
	readers := max(2, runtime.GOMAXPROCS(0))
	c.rdb, err = sql.Open("sqlite", DSN(abs, true))
	if err != nil {
		return nil, err
	}
	c.rdb.SetMaxOpenConns(readers)
	c.rdb.SetMaxIdleConns(readers)
	c.rdb.SetConnMaxIdleTime(0)
	c.rdb.SetConnMaxLifetime(0)
	// Open the whole pool now: a reader opened later, after the file was
	// removed, would fail until the writer rebuilds it.
	held := make([]*sql.Conn, 0, readers)
	var cerr error
	for range readers {
		hc, err := c.rdb.Conn(ctx)
		if err != nil {
			cerr = err
			break
		}
		held = append(held, hc)
	}
	for _, hc := range held {
		hc.Close() // back to the pool, open
	}
	if cerr != nil {
		return nil, fmt.Errorf("open reader: %w", cerr)
	}

	for _, p := range []struct {
		db   *sql.DB
		dst  **sql.Stmt
		stmt string
	}{
		{c.rdb, &c.lookup, sqlLookup},
		{c.wdb, &c.put, sqlPut},
		{c.wdb, &c.del, sqlDelete},
		{c.wdb, &c.delUser, sqlDeleteUser},
		{c.wdb, &c.prune, sqlPrune},
	} {
		if *p.dst, err = p.db.PrepareContext(ctx, p.stmt); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	return c, nil
}

func (c *conns) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{c.lookup, c.put, c.del, c.delUser, c.prune} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, db := range []*sql.DB{c.rdb, c.wdb} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// DSN returns the modernc.org/sqlite data source name for the absolute
// path abs: a file: URI (so any byte in the path is escaped) with the
// connection pragmas (WAL, busy timeout, synchronous=NORMAL); readOnly opens
// it read-only (never creating it) and query-only.
func DSN(abs string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous(NORMAL)")
	// 1 MiB of page cache per connection (SQLite's default is 2,000 pages,
	// ~8 MiB): lookups go through an in-memory cache, the journal's pages
	// are written once and read only at start.
	q.Add("_pragma", "cache_size(-1024)")
	if readOnly {
		// mode=ro: a reader never creates the file, not even one removed
		// while serving (the writer rebuilds it; see SQLite).
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// Path returns the path OpenSQLite was given.
func (s *SQLite) Path() string { return s.path }

// Healthy returns nil while the store is durable, else why not (an error
// wrapping ErrNotDurable). It does no I/O: writes and the CheckEvery
// goroutine keep the answer current.
func (s *SQLite) Healthy() error {
	if p := s.health.Load(); p != nil {
		return *p
	}
	return nil
}

// Lookup implements Store.
func (s *SQLite) Lookup(ctx context.Context, serviceID, userID string) ([]Device, error) {
	c := s.c.Load()
	devs, err := c.lookupDevices(ctx, serviceID, userID)
	if err != nil && s.c.Load() != c {
		// The file was rebuilt and c closed meanwhile: read the new one.
		return s.c.Load().lookupDevices(ctx, serviceID, userID)
	}
	return devs, err
}

func (c *conns) lookupDevices(ctx context.Context, serviceID, userID string) ([]Device, error) {
	rows, err := c.lookup.QueryContext(ctx, serviceID, userID)
	if err != nil {
		return nil, fmt.Errorf("lookup devices: %w", err)
	}
	defer rows.Close()
	var devs []Device
	for rows.Next() {
		var d Device
		var ns int64
		if err := rows.Scan(&d.Kind, &d.Token, &ns); err != nil {
			return nil, fmt.Errorf("lookup devices: %w", err)
		}
		d.UpdatedAt = time.Unix(0, ns).UTC()
		if devs == nil {
			devs = make([]Device, 0, 4)
		}
		devs = append(devs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lookup devices: %w", err)
	}
	return devs, nil
}

// Each calls fn for every user's devices, ordered by service, user, kind
// and token, until fn returns false. It reads a snapshot of the file.
func (s *SQLite) Each(ctx context.Context, fn func(serviceID, userID string, devs []Device) bool) error {
	rows, err := s.c.Load().rdb.QueryContext(ctx, `SELECT service_id, user_id, kind, token, updated_at FROM devices
		ORDER BY service_id, user_id, kind, token`)
	if err != nil {
		return fmt.Errorf("read devices: %w", err)
	}
	defer rows.Close()
	var svc, user string
	var devs []Device
	for rows.Next() {
		var s2, u2 string
		var d Device
		var ns int64
		if err := rows.Scan(&s2, &u2, &d.Kind, &d.Token, &ns); err != nil {
			return fmt.Errorf("read devices: %w", err)
		}
		d.UpdatedAt = time.Unix(0, ns).UTC()
		if (s2 != svc || u2 != user) && devs != nil {
			if !fn(svc, user, devs) {
				return nil
			}
			devs = nil
		}
		svc, user = s2, u2
		devs = append(devs, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read devices: %w", err)
	}
	if devs != nil {
		fn(svc, user, devs)
	}
	return nil
}

// Put implements Store.
func (s *SQLite) Put(ctx context.Context, serviceID, userID, kind, token string, now time.Time) error {
	_, err := s.write(ctx, "put device", func(c *conns) *sql.Stmt { return c.put }, serviceID, userID, kind, token, UnixNano(now))
	return err
}

// Delete implements Store.
func (s *SQLite) Delete(ctx context.Context, serviceID, userID, kind, token string) error {
	n, err := s.write(ctx, "delete device", func(c *conns) *sql.Stmt { return c.del }, serviceID, userID, kind, token)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteUser implements Store.
func (s *SQLite) DeleteUser(ctx context.Context, serviceID, userID string) error {
	_, err := s.write(ctx, "delete user", func(c *conns) *sql.Stmt { return c.delUser }, serviceID, userID)
	return err
}

// Prune implements Store. The check and the removal are one statement, so
// a Put racing with Prune is never lost.
func (s *SQLite) Prune(ctx context.Context, serviceID, userID, kind, token string, goneAt time.Time) (bool, error) {
	always := 0
	if goneAt.IsZero() {
		always = 1
	}
	n, err := s.write(ctx, "prune device", func(c *conns) *sql.Stmt { return c.prune },
		serviceID, userID, kind, token, always, UnixNano(goneAt))
	return n > 0, err
}

// write runs one write statement and returns the rows it changed. The
// file is checked before (a write into a removed or replaced file would be
// lost) and after (it may have gone while the statement ran; a removed one
// is rebuilt from the open database, this write included).
func (s *SQLite) write(ctx context.Context, what string, stmt func(*conns) *sql.Stmt, args ...any) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("%s: directory %s is closed", what, s.abs)
	}
	if err := s.checkLocked(); err != nil {
		return 0, s.failed(fmt.Errorf("%s: %w", what, err))
	}
	res, err := stmt(s.c.Load()).ExecContext(ctx, args...)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		if ctx.Err() != nil { // canceled: the caller's doing, not the file's
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		s.setWriteErr(fmt.Errorf("directory %s %w: write failed: %w", s.abs, ErrNotDurable, err))
		return 0, s.failed(fmt.Errorf("%s: %w", what, s.writeErr))
	}
	if err := s.checkLocked(); err != nil {
		return 0, s.failed(fmt.Errorf("%s: %w", what, err))
	}
	s.setWriteErr(nil)
	return n, nil
}

func (s *SQLite) failed(err error) error {
	if s.opt.WriteFailed != nil {
		s.opt.WriteFailed(err)
	}
	return err
}

// stat returns the identities of the file, its -wal and its -shm now; a
// missing one is nil, and any other failure is an error.
func (s *SQLite) stat() (files, error) {
	var f files
	for _, p := range []struct {
		dst    *os.FileInfo
		suffix string
	}{{&f.db, ""}, {&f.wal, "-wal"}, {&f.shm, "-shm"}} {
		fi, err := os.Stat(s.abs + p.suffix)
		switch {
		case err == nil:
			*p.dst = fi
		case !errors.Is(err, fs.ErrNotExist):
			return files{}, err
		}
	}
	return f, nil
}

// same reports whether now is the file opened as was; a file absent at
// open (was nil) is not checked.
func same(was, now os.FileInfo) bool {
	return was == nil || now != nil && os.SameFile(was, now)
}

// checkLocked compares the files at the path with those opened, rebuilds
// a removed one, and returns the file's durability error (nil when fine).
// s.mu is held.
func (s *SQLite) checkLocked() error {
	now, err := s.stat()
	switch {
	case err != nil:
		s.setFileState(fileUnknown, fmt.Errorf("directory %s %w: cannot check the file: %w", s.abs, ErrNotDurable, err))
	case now.db != nil && !os.SameFile(s.files.db, now.db):
		s.setFileState(fileReplaced, fmt.Errorf("directory %s %w: the file was replaced by another while serving; "+
			"writes are refused until it is moved back or ringside restarts (and reads the new one)", s.abs, ErrNotDurable))
	case now.db == nil || !same(s.files.wal, now.wal) || !same(s.files.shm, now.shm):
		if s.state == fileNotRebuilt && time.Now().Before(s.retryAt) {
			break // still not rebuilt; fileErr says why
		}
		if s.state != fileNotRebuilt {
			s.log.Error("directory file removed while serving; rebuilding it from the open database",
				"path", s.abs, "missing", missing(s.abs, now))
		}
		if err := s.rebuildLocked(now.db == nil); err != nil {
			s.retryAfter = min(max(2*s.retryAfter, time.Second), 30*time.Second)
			s.retryAt = time.Now().Add(s.retryAfter)
			s.setFileState(fileNotRebuilt, fmt.Errorf("directory %s %w: the file was removed while serving and could not be rebuilt: %w",
				s.abs, ErrNotDurable, err))
			break
		}
		s.retryAfter = 0
		s.log.Info("directory file rebuilt from the open database; no device was lost", "path", s.abs)
		s.state, s.fileErr = fileOK, nil
		s.publish()
	default:
		s.setFileState(fileOK, nil)
	}
	return s.fileErr
}

// missing names the files of now that are gone or not the ones opened.
func missing(abs string, now files) string {
	base := filepath.Base(abs)
	var names []string
	if now.db == nil {
		names = append(names, base)
	}
	if now.wal == nil {
		names = append(names, base+"-wal")
	}
	if now.shm == nil {
		names = append(names, base+"-shm")
	}
	if len(names) == 0 {
		return "(replaced -wal or -shm)"
	}
	return strings.Join(names, ", ")
}

// rebuildLocked copies the open database to a new file at the path and
// moves the store onto it. dbGone: the file itself is gone (else only its
// -wal or -shm is, and the file at the path is the one opened). Readers go
// on meanwhile; s.mu is held.
func (s *SQLite) rebuildLocked(dbGone bool) (err error) {
	old := s.c.Load()
	tmp := s.abs + ".rebuild"
	clean := func() {
		for _, p := range []string{tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"} {
			_ = os.Remove(p)
		}
	}
	clean()
	defer func() {
		if err != nil {
			clean()
		}
	}()
	if err := os.MkdirAll(filepath.Dir(s.abs), 0o750); err != nil {
		return fmt.Errorf("create folder: %w", err)
	}
	if _, err := old.wdb.Exec("VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("copy the open database: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	if s.opt.Exclusive {
		if err := flock.Lock(f); err != nil {
			return err
		}
	}
	if err := f.Chmod(s.mode); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync the copy: %w", err)
	}
	// A -wal left at the path is the removed file's: a connection opening
	// the copy would replay it into the copy.
	for _, p := range []string{s.abs + "-wal", s.abs + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if dbGone {
		// Link, not rename: a file put at the path meanwhile is not ours
		// to overwrite.
		if err := os.Link(tmp, s.abs); err != nil {
			return err
		}
		_ = os.Remove(tmp)
	} else if err := os.Rename(tmp, s.abs); err != nil {
		return err
	}
	if err := flock.SyncDir(filepath.Dir(s.abs)); err != nil {
		s.log.Warn("directory folder not synced after the rebuild", "path", s.abs, "error", err)
	}
	c, err := openConns(s.abs)
	var now files
	if err == nil {
		if now, err = s.stat(); err == nil && now.db == nil {
			err = fs.ErrNotExist
		}
		if err != nil {
			c.close()
		}
	}
	if err != nil {
		// Leave the path as it was found, so the next check tries again.
		if placed, serr := os.Stat(s.abs); serr == nil {
			if fi, ferr := f.Stat(); ferr == nil && os.SameFile(placed, fi) {
				for _, p := range []string{s.abs, s.abs + "-wal", s.abs + "-shm"} {
					_ = os.Remove(p)
				}
			}
		}
		return fmt.Errorf("open the copy: %w", err)
	}
	s.c.Store(c)
	s.files = now
	// The old file is gone from the path, so closing its connections
	// neither checkpoints into it nor deletes the new -wal and -shm.
	if err := old.close(); err != nil {
		s.log.Warn("closing the removed directory file", "path", s.abs, "error", err)
	}
	if s.lock != nil {
		s.lock.Close()
	}
	if s.opt.Exclusive {
		s.lock, keep = f, true
	}
	return nil
}

// setFileState records the file's state, logging a change. s.mu is held.
func (s *SQLite) setFileState(st fileState, err error) {
	if st != s.state {
		switch st {
		case fileOK:
			s.log.Info("directory file is the one opened again; writes are accepted", "path", s.abs)
		case fileReplaced:
			s.log.Error("directory file replaced while serving; writes are refused until it is moved back or ringside restarts",
				"path", s.abs)
		case fileNotRebuilt:
			s.log.Error("directory file could not be rebuilt; retrying, and refusing writes meanwhile", "path", s.abs, "error", err)
		default:
			s.log.Error("directory file cannot be checked; refusing writes", "path", s.abs, "error", err)
		}
	}
	s.state, s.fileErr = st, err
	s.publish()
}

// setWriteErr records the last write's outcome, logging a change. s.mu is
// held.
func (s *SQLite) setWriteErr(err error) {
	switch {
	case err != nil && s.writeErr == nil:
		s.log.Error("directory write failed; not durable until a write succeeds", "path", s.abs, "error", err)
	case err == nil && s.writeErr != nil:
		s.log.Info("directory writes succeed again", "path", s.abs)
	}
	s.writeErr = err
	s.publish()
}

func (s *SQLite) publish() {
	err := s.fileErr
	if err == nil {
		err = s.writeErr
	}
	if err == nil {
		s.health.Store(nil)
		return
	}
	s.health.Store(&err)
}

// watch checks the file every interval until Close.
func (s *SQLite) watch(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if !s.closed && s.checkLocked() == nil && s.writeErr != nil {
			s.probeLocked()
		}
		s.mu.Unlock()
	}
}

// probeLocked learns whether writes would succeed again: the folder takes
// a probeBytes file (so a disk with only a few pages free, which a write
// may still reuse, is not taken for one with room), and the database a
// one-page transaction (user_version written back unchanged). s.mu is held.
func (s *SQLite) probeLocked() {
	if err := probeSpace(s.abs + ".probe"); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), busyTimeout)
	defer cancel()
	wdb := s.c.Load().wdb
	var v int64
	err := wdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	if err == nil {
		_, err = wdb.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	}
	if err == nil {
		s.setWriteErr(nil)
	}
}

// probeBytes is the room the probe asks of the folder: many writes' worth
// (a write adds a few 4 KiB pages to the -wal).
const probeBytes = 256 << 10

var probeBlock [32 << 10]byte

// probeSpace writes probeBytes to a new file at path, syncs and removes it.
func probeSpace(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	for n := 0; n < probeBytes && err == nil; n += len(probeBlock) {
		_, err = f.Write(probeBlock[:])
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close implements Store. It is safe to call more than once.
func (s *SQLite) Close() error {
	if s.stop != nil {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.c.Load().close()
	if s.lock != nil {
		if lerr := s.lock.Close(); lerr != nil && err == nil {
			err = lerr
		}
		s.lock = nil
	}
	if err != nil {
		return fmt.Errorf("close directory %s: %w", s.path, err)
	}
	return nil
}

// UnixNano is t in Unix nanoseconds, clamped to the int64 range (years
// 1678 to 2262) instead of overflowing: how a directory stores updated_at.
func UnixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)
