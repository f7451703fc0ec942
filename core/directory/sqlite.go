package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
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
type SQLite struct {
	path string
	wdb  *sql.DB // one connection: every write
	rdb  *sql.DB // read-only pool: Lookup

	lookup, put, del, delUser, prune *sql.Stmt
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens, or creates, the directory file at path, creating its
// parent folder if needed. Several processes may open the same file.
func OpenSQLite(path string) (*SQLite, error) {
	s, err := openSQLite(path)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", path, err)
	}
	return s, nil
}

func openSQLite(path string) (_ *SQLite, err error) {
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
	s := &SQLite{path: path}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	// The writer sets WAL (persistent in the file) before any reader opens.
	s.wdb, err = sql.Open("sqlite", DSN(abs, false))
	if err != nil {
		return nil, err
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxIdleTime(0)
	s.wdb.SetConnMaxLifetime(0)
	ctx := context.Background()
	if _, err := s.wdb.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	var mode string
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("read journal mode: %w", err)
	}
	if mode != "wal" {
		return nil, fmt.Errorf("journal mode is %q, want wal", mode)
	}

	// Pure-Go SQLite reads are CPU-bound: one connection per P is enough
	// (the serve path reads through directory.Cache, so misses only).
	readers := max(2, runtime.GOMAXPROCS(0))
	s.rdb, err = sql.Open("sqlite", DSN(abs, true))
	if err != nil {
		return nil, err
	}
	s.rdb.SetMaxOpenConns(readers)
	s.rdb.SetMaxIdleConns(readers)
	s.rdb.SetConnMaxIdleTime(0)
	s.rdb.SetConnMaxLifetime(0)

	for _, p := range []struct {
		db   *sql.DB
		dst  **sql.Stmt
		stmt string
	}{
		{s.rdb, &s.lookup, sqlLookup},
		{s.wdb, &s.put, sqlPut},
		{s.wdb, &s.del, sqlDelete},
		{s.wdb, &s.delUser, sqlDeleteUser},
		{s.wdb, &s.prune, sqlPrune},
	} {
		if *p.dst, err = p.db.PrepareContext(ctx, p.stmt); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	return s, nil
}

// DSN returns the modernc.org/sqlite data source name for the absolute
// path abs: a file: URI (so any byte in the path is escaped) with the
// connection pragmas (WAL, busy timeout, synchronous=NORMAL); readOnly opens
// it query-only.
func DSN(abs string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous(NORMAL)")
	// 1 MiB of page cache per connection (SQLite's default is 2,000 pages,
	// ~8 MiB): lookups go through an in-memory cache, the journal's pages
	// are written once and read only at start.
	q.Add("_pragma", "cache_size(-1024)")
	if readOnly {
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

// Lookup implements Store.
func (s *SQLite) Lookup(ctx context.Context, serviceID, userID string) ([]Device, error) {
	rows, err := s.lookup.QueryContext(ctx, serviceID, userID)
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
	rows, err := s.rdb.QueryContext(ctx, `SELECT service_id, user_id, kind, token, updated_at FROM devices
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
	if _, err := s.put.ExecContext(ctx, serviceID, userID, kind, token, unixNano(now)); err != nil {
		return fmt.Errorf("put device: %w", err)
	}
	return nil
}

// Delete implements Store.
func (s *SQLite) Delete(ctx context.Context, serviceID, userID, kind, token string) error {
	res, err := s.del.ExecContext(ctx, serviceID, userID, kind, token)
	if err != nil {
		return fmt.Errorf("delete device: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete device: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteUser implements Store.
func (s *SQLite) DeleteUser(ctx context.Context, serviceID, userID string) error {
	if _, err := s.delUser.ExecContext(ctx, serviceID, userID); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// Prune implements Store. The check and the removal are one statement, so
// a Put racing with Prune is never lost.
func (s *SQLite) Prune(ctx context.Context, serviceID, userID, kind, token string, goneAt time.Time) (bool, error) {
	always := 0
	if goneAt.IsZero() {
		always = 1
	}
	res, err := s.prune.ExecContext(ctx, serviceID, userID, kind, token, always, unixNano(goneAt))
	if err != nil {
		return false, fmt.Errorf("prune device: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("prune device: %w", err)
	}
	return n > 0, nil
}

// Close implements Store. It is safe to call more than once.
func (s *SQLite) Close() error {
	var errs []error
	for _, st := range []**sql.Stmt{&s.lookup, &s.put, &s.del, &s.delUser, &s.prune} {
		if *st != nil {
			errs = append(errs, (*st).Close())
			*st = nil
		}
	}
	for _, db := range []**sql.DB{&s.rdb, &s.wdb} {
		if *db != nil {
			errs = append(errs, (*db).Close())
			*db = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close directory %s: %w", s.path, err)
	}
	return nil
}

// unixNano is t in Unix nanoseconds, clamped to the int64 range (years
// 1678 to 2262) instead of overflowing.
func unixNano(t time.Time) int64 {
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
