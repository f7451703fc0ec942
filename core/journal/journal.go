// Package journal records accepted deliveries in an embedded SQLite file so
// that work accepted before a crash is resumed after it. Appends are group
// committed: every caller waiting in the same moment shares one transaction,
// and the caller waits for that commit (the notify_cb answer does), while
// marks of progress (a device delivered, a callback finished) are written
// in the next batch without anyone waiting.
package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ringside/ringside/core/directory"
)

const schema = `
CREATE TABLE IF NOT EXISTS entries (
	key      TEXT PRIMARY KEY,
	deadline INTEGER NOT NULL,
	data     BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivered (
	key      TEXT NOT NULL,
	notifier TEXT NOT NULL,
	token    TEXT NOT NULL,
	PRIMARY KEY (key, notifier, token)
) WITHOUT ROWID;`

// Entry is a journaled callback not finished yet.
type Entry struct {
	Key      string
	Deadline time.Time
	Data     []byte
	// Delivered holds the (notifier, token) pairs delivered already; the
	// token is "" for a notifier without devices.
	Delivered map[[2]string]bool
}

type opKind int

const (
	opAppend opKind = iota
	opDelivered
	opFinish
)

type op struct {
	kind     opKind
	key      string
	deadline int64
	data     []byte
	notifier string
	token    string
	done     chan error // opAppend only
}

// Journal is an open journal file. Its methods are safe for concurrent use.
type Journal struct {
	db    *sql.DB // the one writer connection
	ckpt  *sql.DB // checkpoints, off the commit path
	stmts struct{ insert, delivered, unDeliver, remove *sql.Stmt }
	// marked holds the keys with delivered rows on disk (loop only), so
	// finishing any other key needs no DELETE on that table.
	marked map[string]bool
	ops    chan op
	stop   chan struct{}
	ended  chan struct{}
	size   atomic.Int64
	// OnBatch, if set before the first Append, is called after each commit
	// with the batch size (for metrics and benchmarks).
	OnBatch func(n int)
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("journal closed")

// Open opens or creates the journal file at path.
func Open(path string) (*Journal, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", directory.DSN(abs, false))
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	j := &Journal{db: db, marked: map[string]bool{}, ops: make(chan op, 4096), stop: make(chan struct{}), ended: make(chan struct{})}
	if err := j.init(abs); err != nil {
		j.db.Close()
		if j.ckpt != nil {
			j.ckpt.Close()
		}
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	go j.loop()
	return j, nil
}

func (j *Journal) init(abs string) error {
	// Commits never checkpoint (and fsync) themselves: the loop asks for a
	// passive checkpoint on a second connection, which writers don't wait
	// for.
	if _, err := j.db.Exec(schema + `PRAGMA wal_autocheckpoint = 0;`); err != nil {
		return err
	}
	var err error
	if j.ckpt, err = sql.Open("sqlite", directory.DSN(abs, false)); err != nil {
		return err
	}
	j.ckpt.SetMaxOpenConns(1)
	for _, st := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&j.stmts.insert, `INSERT OR REPLACE INTO entries (key, deadline, data) VALUES (?1, ?2, ?3)`},
		{&j.stmts.delivered, `INSERT OR IGNORE INTO delivered (key, notifier, token) VALUES (?1, ?2, ?3)`},
		{&j.stmts.unDeliver, `DELETE FROM delivered WHERE key = ?1`},
		{&j.stmts.remove, `DELETE FROM entries WHERE key = ?1`},
	} {
		if *st.dst, err = j.db.Prepare(st.sql); err != nil {
			return err
		}
	}
	var n int64
	if err := j.db.QueryRow(`SELECT count(*) FROM entries`).Scan(&n); err != nil {
		return err
	}
	j.size.Store(n)
	rows, err := j.db.Query(`SELECT DISTINCT key FROM delivered`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		j.marked[k] = true
	}
	return rows.Err()
}

// Size is the number of entries not finished.
func (j *Journal) Size() int64 { return j.size.Load() }

// Commit is an Append on its way to the disk.
type Commit struct {
	done    chan error
	ended   <-chan struct{}
	settled bool
	err     error
}

// Wait returns once the append is committed (nil) or failed.
func (c *Commit) Wait(ctx context.Context) error {
	if c.settled {
		return c.err
	}
	select {
	case c.err = <-c.done:
	case <-c.ended:
		// Written by the final drain, or never: look once more.
		select {
		case c.err = <-c.done:
		default:
			c.err = ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	c.settled = true
	return c.err
}

// Append queues the record of an accepted callback and returns at once;
// Delivered and Finish calls made after it are written after it. Wait on
// the result for the commit.
func (j *Journal) Append(key string, deadline time.Time, data []byte) *Commit {
	c := &Commit{done: make(chan error, 1), ended: j.ended}
	select {
	case <-j.stop:
		c.settled, c.err = true, ErrClosed
		return c
	default:
	}
	select {
	case j.ops <- op{kind: opAppend, key: key, deadline: deadline.UnixNano(), data: data, done: c.done}:
	case <-j.stop:
		c.settled, c.err = true, ErrClosed
	}
	return c
}

// Delivered records that notifier delivered to token (or "" for a notifier
// without devices) for the entry key. It does not wait for the disk.
func (j *Journal) Delivered(key, notifier, token string) {
	j.send(op{kind: opDelivered, key: key, notifier: notifier, token: token})
}

// Finish removes the entry key: every delivery of it has ended. It does not
// wait for the disk.
func (j *Journal) Finish(key string) {
	j.send(op{kind: opFinish, key: key})
}

func (j *Journal) send(o op) {
	select {
	case j.ops <- o:
	case <-j.stop:
	}
}

// Pending returns the entries whose deadline is after now, and removes the
// others.
func (j *Journal) Pending(ctx context.Context, now time.Time) ([]Entry, error) {
	if _, err := j.db.ExecContext(ctx, `DELETE FROM delivered WHERE key IN (SELECT key FROM entries WHERE deadline <= ?1)`, now.UnixNano()); err != nil {
		return nil, fmt.Errorf("journal: purge: %w", err)
	}
	res, err := j.db.ExecContext(ctx, `DELETE FROM entries WHERE deadline <= ?1`, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("journal: purge: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil {
		j.size.Add(-n)
	}
	rows, err := j.db.QueryContext(ctx, `SELECT key, deadline, data FROM entries ORDER BY deadline`)
	if err != nil {
		return nil, fmt.Errorf("journal: read: %w", err)
	}
	var out []Entry
	byKey := map[string]*Entry{}
	for rows.Next() {
		var e Entry
		var dl int64
		if err := rows.Scan(&e.Key, &dl, &e.Data); err != nil {
			rows.Close()
			return nil, fmt.Errorf("journal: read: %w", err)
		}
		e.Deadline = time.Unix(0, dl)
		e.Delivered = map[[2]string]bool{}
		out = append(out, e)
	}
	rows.Close()
	for i := range out {
		byKey[out[i].Key] = &out[i]
	}
	drows, err := j.db.QueryContext(ctx, `SELECT key, notifier, token FROM delivered`)
	if err != nil {
		return nil, fmt.Errorf("journal: read: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var k, n, t string
		if err := drows.Scan(&k, &n, &t); err != nil {
			return nil, fmt.Errorf("journal: read: %w", err)
		}
		if e := byKey[k]; e != nil {
			e.Delivered[[2]string{n, t}] = true
		}
	}
	return out, drows.Err()
}

// Close writes what is queued and closes the file.
func (j *Journal) Close() error {
	select {
	case <-j.stop:
	default:
		close(j.stop)
	}
	<-j.ended
	_ = j.ckpt.Close()
	return j.db.Close()
}

// loop writes the queued operations, one transaction per batch, until
// Close; it then drains what is left.
func (j *Journal) loop() {
	defer close(j.ended)
	batch := make([]op, 0, maxBatch)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	checkpoint := make(chan struct{}, 1)
	defer close(checkpoint)
	go j.checkpoints(checkpoint)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	lingering, fired := false, false // marks wait for an append; the wait is over
	for {
		select {
		case o := <-j.ops:
			batch = append(batch, o)
		case <-linger.C:
			fired = true
		case <-tick.C:
			select {
			case checkpoint <- struct{}{}:
			default: // one is running
			}
			continue
		case <-j.stop:
			j.drain(batch)
			return
		}
	collect:
		for len(batch) < cap(batch) {
			select {
			case o := <-j.ops:
				batch = append(batch, o)
			default:
				break collect
			}
		}
		// Appends wait up to lingerAppends for more to share their commit
		// (the answers of their callbacks wait; their pushes do not).
		if hasAppend(batch) && len(batch) < cap(batch) {
			batch = j.gather(batch, lingerAppends)
		}
		// Nobody waits for marks and finishes: they ride along with the
		// next append's commit, or go after lingerMarks, so a callback
		// costs about one commit shared with its neighbours, not two.
		if !hasAppend(batch) && len(batch) < cap(batch) && !fired {
			if !lingering {
				lingering = true
				linger.Reset(lingerMarks)
			}
			continue
		}
		if lingering && !fired {
			linger.Stop()
		}
		lingering, fired = false, false
		j.commit(batch)
		batch = batch[:0]
	}
}

// maxBatch bounds the operations of one transaction; lingerMarks is how
// long progress marks wait for an append to share a commit with;
// lingerAppends how long an append waits for others.
const (
	maxBatch      = 1024
	lingerMarks   = 50 * time.Millisecond
	lingerAppends = 500 * time.Microsecond
)

// gather adds to batch the operations arriving within d, up to its capacity.
func (j *Journal) gather(batch []op, d time.Duration) []op {
	t := time.NewTimer(d)
	defer t.Stop()
	for len(batch) < cap(batch) {
		select {
		case o := <-j.ops:
			batch = append(batch, o)
		case <-t.C:
			return batch
		case <-j.stop:
			return batch
		}
	}
	return batch
}

func hasAppend(batch []op) bool {
	for _, o := range batch {
		if o.kind == opAppend {
			return true
		}
	}
	return false
}

// checkpoints copies the WAL into the file when asked, until asked is
// closed. A passive checkpoint never blocks the writer.
func (j *Journal) checkpoints(asked <-chan struct{}) {
	for range asked {
		_, _ = j.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

func (j *Journal) drain(batch []op) {
	for {
		select {
		case o := <-j.ops:
			batch = append(batch, o)
		default:
			if len(batch) > 0 {
				j.commit(batch)
			}
			return
		}
	}
}

func (j *Journal) commit(batch []op) {
	err := j.write(batch)
	for _, o := range batch {
		if o.done != nil {
			o.done <- err
		}
	}
	if err == nil && j.OnBatch != nil {
		j.OnBatch(len(batch))
	}
}

func (j *Journal) write(batch []op) (err error) {
	// A key appended and finished in the same batch needs no write at all;
	// delivered marks of a key finished in the batch are not written.
	appended := map[string]bool{}
	finished := map[string]bool{}
	for _, o := range batch {
		switch o.kind {
		case opAppend:
			appended[o.key] = true
		case opFinish:
			finished[o.key] = true
		}
	}
	tx, err := j.db.Begin()
	if err != nil {
		return fmt.Errorf("journal: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var added, removed int64
	var marked []string
	for _, o := range batch {
		if finished[o.key] && (o.kind != opFinish || appended[o.key]) {
			if o.kind == opAppend {
				added++
				removed++
			}
			continue
		}
		switch o.kind {
		case opAppend:
			if _, err = tx.Stmt(j.stmts.insert).Exec(o.key, o.deadline, o.data); err != nil {
				return fmt.Errorf("journal: append: %w", err)
			}
			added++
		case opDelivered:
			if _, err = tx.Stmt(j.stmts.delivered).Exec(o.key, o.notifier, o.token); err != nil {
				return fmt.Errorf("journal: delivered: %w", err)
			}
			marked = append(marked, o.key)
		case opFinish:
			if j.marked[o.key] {
				if _, err = tx.Stmt(j.stmts.unDeliver).Exec(o.key); err != nil {
					return fmt.Errorf("journal: finish: %w", err)
				}
			}
			res, e := tx.Stmt(j.stmts.remove).Exec(o.key)
			if e != nil {
				return fmt.Errorf("journal: finish: %w", e)
			}
			n, _ := res.RowsAffected()
			removed += n
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("journal: commit: %w", err)
	}
	for _, k := range marked {
		j.marked[k] = true
	}
	for k := range finished {
		delete(j.marked, k)
	}
	j.size.Add(added - removed)
	return nil
}
