// Package journal records accepted deliveries in an append-only file so
// that work accepted before a crash is resumed after it.
//
// # File
//
// The file starts with a header, the 16 bytes "ringside journal" and a
// little-endian uint32 format version (1); a file with another header is
// refused with an error naming it. Records follow, each framed as
//
//	[u32 length][u32 CRC-32C of the rest][u8 kind][fields…]
//
// in little endian, where length counts the bytes after the CRC and a
// string is a u32 length and its bytes. The kinds are append (key,
// deadline in Unix nanoseconds as an int64, then the data up to the end of
// the record), delivered (key, notifier, token) and finish (key). An entry
// lives from its append to its finish; delivered marks belong to the
// entry's current life. Open replays the file into an index of the live
// keys. The index holds keys and the byte counts of their records only, so
// memory does not grow with the data; Pending reads entries back from the
// file (it is meant for the start of a run).
//
// # Torn tails and damage
//
// A record that is not whole and well formed (a short frame, an absurd
// length, a bad CRC, fields that do not fit) is either a torn tail or
// damage. Records carry no sync marker (the format is the one version 1
// always had), so Open looks for whole records after the bad bytes: first
// where the bad record's length says the next one starts (and the length
// after that, and so on), then at every following offset, taking there
// only a whole record followed by another, by the end of the file, or by a
// torn last record, so that bytes that happen to checksum are not taken
// for a record. A whole record is one whose length, kind, fields and
// CRC-32C all agree.
//
// If no whole record follows, the bad bytes are a torn tail, what a crash
// in the middle of a write leaves: they are cut off, so that the file ends
// with the last whole record; that is logged at INFO and is not damage. A
// last record with a bad CRC but its full length is a torn tail too: an
// OS crash can leave exactly that (the length, and part of the body, on
// disk), nothing after it tells it from damage, and losing the last
// writes to an OS crash is the documented cost of not fsyncing each
// batch.
//
// If whole records follow, the bad bytes are damage: Open skips them,
// replays the records after them, and does not fail. Before changing
// anything, it copies the file as it found it to
// path.damaged-<UTC time, 20060102T150405Z> (mode 0600: records hold
// callbacks' data), logs each damaged stretch at ERROR (the file, its
// offset and size in bytes, and the number of records in it when the
// lengths tell, else "uncounted") and adds the records lost to
// Options.Metrics.JournalDamaged (an uncounted stretch counts as one).
// Then it rewrites the file with the live records only (as a compaction
// does), so the next Open finds nothing to report. A lost append is a
// callback not resumed; a lost finish or delivered mark makes a callback,
// or a device, ring again. If the copy cannot be made, nothing is
// rewritten: the damage stays in the file, where every scan skips it, and
// the next Open reports it again.
//
// # Group commit and durability
//
// Operations are queued; whoever holds the writer's role takes every
// operation queued at that moment, encodes it into one buffer and writes
// it with one write(2), then releases the appends' waiters. There is no
// writer goroutine to wake on the hot path: the goroutine that waits for
// an append takes the role if it is free and writes itself, so a lone
// callback costs no context switch. If the role is taken, it waits: the
// holder looks at the queue again after its write and writes what came
// meanwhile (after a few rounds it hands over to the journal's goroutine,
// so that one caller does not write for everybody for long). Appends do
// not linger for company: a write costs microseconds, and the appends
// arriving while one runs share the next. Marks of progress (delivered,
// finish), which nobody waits for, stay queued until the next write or at
// most 50 ms, when the journal's goroutine writes them (so does an append
// nobody waits for). A key appended and finished in the same batch writes
// nothing, and the delivered marks of a key finished in its batch are
// dropped. A batch is safe against a process crash once its write
// returned; nothing is fsynced per batch, so an OS crash may lose the last
// batches. Close fsyncs.
//
// # When writes fail
//
// A write that fails (a full disk, a read-only file system) is cut off
// the file and counted in Options.Metrics.JournalWriteErrors; it is logged
// at ERROR, an error repeated within a second once (the next line counts
// the repeats). The appends' waiters get the error from Commit.Wait, and
// Healthy returns it ("journal ringside.journal: write: no space left on
// device") until a write succeeds. The batch's operations are not
// dropped: they are kept, in their order, and written before the next
// batch, by the next writer or by the journal's goroutine, which tries
// again once a second. Memory stays bounded: the appends kept hold at most
// 16 MiB of records; an append that would pass that is dropped (logged at
// ERROR), and so are its marks: its callback is delivered but not
// crash-safe. A finish drops its entry's append and marks from what is
// kept. Until written, what is kept is lost to a crash, and to Close if
// the disk is still full then (Close returns the error and logs how many
// operations were lost). When nothing is kept but writes have failed,
// the journal's goroutine probes the disk once a second (a page of zeros
// written past the end and cut off again), so Healthy turns nil by itself
// once the disk frees, even with no callbacks.
//
// # The file removed or replaced
//
// Once a second, and at Close, the journal's goroutine checks that path
// still names the open file (device and inode). If the file was removed
// (or its folder), or replaced, the journal's writes reach a file no
// restart will find: that is logged at ERROR, Healthy says so ("journal
// ringside.journal: file removed while serving"), and a compaction writes
// the live entries, those appended since the removal included, to a new
// file at path (the folder made again if need be); once it is in place
// Healthy turns nil. A file put in its place is renamed aside first
// (path.replaced-<UTC time>), unless another process holds it locked as
// its journal: then it is left alone and Healthy stays non-nil until that
// process closes it. Until the new file is in place, a crash loses what
// was written since the removal.
//
// # Compaction
//
// When the file passes 8 MiB and less than half of it is live, a
// background goroutine copies the records of the entries live at that
// point (as they are, checksums included; the index knows where they are,
// so it reads nothing else) into path+".tmp" and fsyncs it, while appends
// go on to the old file. The writer then copies the records written
// meanwhile to the new file, renames it over path and carries on there
// (the directory is fsynced in the background): appends wait only for
// that copy of a few milliseconds' worth of records and a rename. A
// compaction that fails is logged at ERROR and tried again once the file
// has grown by another 8 MiB.
//
// The file is locked (flock) while open, so two processes never write the
// same journal. The journal's goroutines carry the profiler label
// ringside.journal=<path>.
package journal

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringside/ringside/core/internal/flock"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// Entry is a journaled callback not finished yet.
type Entry struct {
	Key      string
	Deadline time.Time
	Data     []byte
	// Delivered holds the (notifier, token) pairs delivered already; the
	// token is "" for a notifier without devices.
	Delivered map[[2]string]bool
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("journal closed")

const (
	magic     = "ringside journal"
	version   = 1
	headerLen = len(magic) + 4
	// frameLen is the length and CRC in front of every record.
	frameLen = 8
	// maxRecord bounds a record's length: a longer one is a corrupt tail.
	maxRecord = 64 << 20

	// compactSize is the file size past which a mostly dead file is
	// compacted.
	compactSize = 8 << 20
	// lingerMarks is how long operations nobody waits for wait for a
	// write to join.
	lingerMarks = 50 * time.Millisecond
	// maxRounds is how many batches a caller holding the writer's role
	// writes before it hands the role to the journal's goroutine.
	maxRounds = 4
	// checkEvery is how often the journal's goroutine checks that path
	// still names its file and, while writes fail, tries again.
	checkEvery = time.Second
	// maxBacklog bounds the appends kept in memory, by the size of their
	// records, while writes fail.
	maxBacklog = 16 << 20
)

// Record kinds, the first byte of a record; opPending is never written.
const (
	kindAppend    byte = 1
	kindDelivered byte = 2
	kindFinish    byte = 3
	opPending     byte = 0xff
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// op is a queued operation.
type op struct {
	kind     byte
	key      string
	deadline int64
	data     []byte
	notifier string
	token    string
	done     chan error         // kindAppend
	now      int64              // opPending
	reply    chan pendingResult // opPending
}

type pendingResult struct {
	entries []Entry
	err     error
}

// Options are the settings of OpenWith. The zero value is Open's: no
// logs, no metrics.
type Options struct {
	// Logger receives the damage found at open, failed writes (at most
	// once a second for one error repeated), the file's removal and its
	// recovery. Nil: discarded.
	Logger *slog.Logger
	// Metrics, if set, counts the records lost to damage
	// (JournalDamaged) and the failed writes (JournalWriteErrors).
	Metrics *telemetry.Metrics

	// For tests: the size past which to compact (0: compactSize), the
	// clock, how often to check the file (0: checkEvery), the bound of the
	// backlog (0: maxBacklog) and the write of a batch (nil: f.WriteAt).
	compactAt  int64
	now        func() time.Time
	checkEvery time.Duration
	maxBacklog int64
	writeAt    func(f *os.File, b []byte, off int64) (int, error)
}

// Journal is an open journal file. Its methods are safe for concurrent use.
type Journal struct {
	path string
	name string // the file's base name, for Healthy
	size atomic.Int64
	// health is nil while the journal is durable, else why not.
	health atomic.Pointer[error]
	// OnBatch, if set before the first Append, is called after each
	// written batch with its number of operations (for metrics and
	// benchmarks), by the writer of the moment: never twice at once.
	OnBatch func(n int)

	mu     sync.Mutex
	queue  []op // operations not taken by a writer yet
	urgent bool // queue holds an operation somebody waits for
	closed bool
	// linger runs while queue holds operations: the journal's goroutine
	// writes them when it fires, if no writer took them before.
	linger    *time.Timer
	lingering bool

	wake  chan struct{} // the journal's goroutine is to take the writer's role
	stop  chan struct{} // closed by Close
	idle  chan struct{} // closed when the journal's goroutine is gone
	ended chan struct{} // closed when the file is

	log        *slog.Logger
	metrics    *telemetry.Metrics
	now        func() time.Time
	checkEvery time.Duration
	maxBacklog int64
	writeAt    func(f *os.File, b []byte, off int64) (int, error)
	// labels mark the journal's goroutines in profiles (and tests).
	labels context.Context

	// wmu is the writer's role: its holder owns what follows.
	wmu  sync.Mutex
	shut bool
	err  error // of closing the file
	f    *os.File
	end  int64 // where the next record goes
	// live holds where each live key's records are in the file (its
	// bytes are their sum), so a compaction copies them without reading
	// the rest.
	live       map[string][]span
	liveBytes  int64
	spare      []op // the queue's other buffer
	buf        []byte
	lastFinish map[string]int // key → index of its last finish in the batch
	undo       []undo
	compactAt  int64 // the size past which to compact
	retryAt    int64 // after a failed compaction, the size to try again at
	compacting bool
	compacted  chan compaction
	bg         sync.WaitGroup // compaction and directory syncs

	// Durability (see health.go).
	fi         os.FileInfo // of f: is path still f?
	writeErr   error       // why the last write failed, until one succeeds
	fileErr    error       // why path is not f, until it is again
	recoverErr error       // why writing a new file at path failed
	failures   int         // writes failed since the last that succeeded
	dirty      bool        // a failed write may have left bytes past end
	// backlog holds the operations of failed writes still worth writing,
	// written before the next batch; backlogBytes is the size of their
	// records.
	backlog      []op
	backlogBytes int64
	// One limiter per kind of repeated error log.
	logWrite, logBacklog, logFile, logCompact limiter

	// For tests: compactions counts installed compactions; beforeInstall,
	// if set, runs in the compacting goroutine before it hands the new
	// file over.
	compactions   atomic.Int64
	beforeInstall func()
}

// Open opens or creates the journal file at path, with no logs and no
// metrics: OpenWith(path, Options{}).
func Open(path string) (*Journal, error) {
	return OpenWith(path, Options{})
}

// OpenWith opens or creates the journal file at path.
func OpenWith(path string, o Options) (*Journal, error) {
	j, err := open(path, o)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return j, nil
}

func open(path string, o Options) (*Journal, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock.Lock(f); err != nil {
		f.Close()
		if errors.Is(err, flock.ErrLocked) {
			err = errors.New("in use by another process")
		}
		return nil, err
	}
	// What a compaction interrupted by a crash left.
	if err := os.Remove(abs + ".tmp"); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return nil, err
	}
	j := &Journal{
		path:       abs,
		name:       filepath.Base(abs),
		linger:     time.NewTimer(lingerMarks),
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		idle:       make(chan struct{}),
		ended:      make(chan struct{}),
		log:        o.Logger,
		metrics:    o.Metrics,
		now:        o.now,
		checkEvery: cmp.Or(o.checkEvery, checkEvery),
		maxBacklog: cmp.Or(o.maxBacklog, maxBacklog),
		writeAt:    o.writeAt,
		labels:     pprof.WithLabels(context.Background(), pprof.Labels("ringside.journal", abs)),
		f:          f,
		live:       map[string][]span{},
		lastFinish: map[string]int{},
		compactAt:  cmp.Or(o.compactAt, compactSize),
		compacted:  make(chan compaction, 1),
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	if j.now == nil {
		j.now = time.Now
	}
	j.linger.Stop()
	if j.fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, err
	}
	if err := j.load(); err != nil {
		j.f.Close()
		return nil, err
	}
	go j.loop()
	return j, nil
}

// load checks the header, or writes it to a new file, and replays the
// records into the index, cutting off a torn tail.
func (j *Journal) load() error {
	st, err := j.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	hdr := make([]byte, min(size, int64(headerLen)))
	if _, err := j.f.ReadAt(hdr, 0); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	want := binary.LittleEndian.AppendUint32([]byte(magic), version)
	if size < int64(headerLen) {
		// New, or its creation was cut short.
		if !bytes.HasPrefix(want, hdr) {
			return fmt.Errorf("not a ringside journal (it starts with %q)", hdr)
		}
		if err := j.f.Truncate(0); err != nil {
			return err
		}
		if _, err := j.f.WriteAt(want, 0); err != nil {
			return err
		}
		if err := j.f.Sync(); err != nil {
			return err
		}
		j.end = int64(headerLen)
		return syncDir(filepath.Dir(j.path))
	}
	if string(hdr[:len(magic)]) != magic {
		return fmt.Errorf("not a ringside journal (it starts with %q)", hdr[:len(magic)])
	}
	if v := binary.LittleEndian.Uint32(hdr[len(magic):]); v != version {
		return fmt.Errorf("journal format version %d; this ringside reads version %d", v, version)
	}
	s := newScanner(j.f, size)
	for {
		ok, err := s.scan()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		j.index(string(s.rec.key), s.rec.kind, span{s.off, s.end - s.off})
	}
	for _, l := range j.live {
		j.liveBytes += bytesOf(l)
	}
	j.end = s.end
	j.size.Store(int64(len(j.live)))
	if len(s.damage) > 0 && j.repair(s.damage, size) {
		return nil // the file holds the live records, and nothing else
	}
	if s.end < size {
		j.log.Info("journal: cut off a torn tail", "file", j.path, "offset", s.end, "bytes", size-s.end)
		if err := j.f.Truncate(s.end); err != nil {
			return fmt.Errorf("cut off the torn tail: %w", err)
		}
	}
	return nil
}

// Size is the number of entries not finished.
func (j *Journal) Size() int64 { return j.size.Load() }

// Commit is an Append on its way to the disk.
type Commit struct {
	j       *Journal
	done    chan error
	settled bool
	err     error
}

// Wait returns once the append is written (nil) or failed. If nobody is
// writing, it writes the append itself, with whatever else is queued.
func (c *Commit) Wait(ctx context.Context) error {
	if c.settled {
		return c.err
	}
	select {
	case c.err = <-c.done:
		c.settled = true
		return c.err
	default:
	}
	c.j.flush()
	select {
	case c.err = <-c.done:
	case <-c.j.ended:
		// Written by the final batch, or never: look once more.
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
// the result for the write (without Wait, it is written within 50 ms).
// The journal keeps data until it is written: the caller must not change
// it.
func (j *Journal) Append(key string, deadline time.Time, data []byte) *Commit {
	c := &Commit{j: j, done: make(chan error, 1)}
	if n := 1 + 4 + len(key) + 8 + len(data); n > maxRecord {
		c.settled, c.err = true, fmt.Errorf("journal: record of %d bytes; the most is %d", n, maxRecord)
		return c
	}
	if !j.enqueue(op{kind: kindAppend, key: key, deadline: deadline.UnixNano(), data: data, done: c.done}, true) {
		c.settled, c.err = true, ErrClosed
	}
	return c
}

// Delivered records that notifier delivered to token (or "" for a notifier
// without devices) for the entry key. It does not wait for the disk.
func (j *Journal) Delivered(key, notifier, token string) {
	j.enqueue(op{kind: kindDelivered, key: key, notifier: notifier, token: token}, false)
}

// Finish removes the entry key: every delivery of it has ended. It does not
// wait for the disk.
func (j *Journal) Finish(key string) {
	j.enqueue(op{kind: kindFinish, key: key}, false)
}

// enqueue queues o, unless the journal is closed, and starts the linger
// timer if it is not running. An urgent operation is one somebody waits
// for.
func (j *Journal) enqueue(o op, urgent bool) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return false
	}
	j.queue = append(j.queue, o)
	j.urgent = j.urgent || urgent
	if !j.lingering {
		j.lingering = true
		j.linger.Reset(lingerMarks)
	}
	return true
}

// hasUrgent says whether an operation somebody waits for is queued.
func (j *Journal) hasUrgent() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.urgent
}

// Pending returns the entries whose deadline is after now, ordered by
// deadline, and removes the others. It writes what is queued first, and
// reads the file while appends wait: it is meant for the start of a run.
func (j *Journal) Pending(ctx context.Context, now time.Time) ([]Entry, error) {
	reply := make(chan pendingResult, 1)
	if !j.enqueue(op{kind: opPending, now: now.UnixNano(), reply: reply}, true) {
		return nil, ErrClosed
	}
	j.flush()
	select {
	case r := <-reply:
		return r.entries, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close writes what is queued, fsyncs and closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	first := !j.closed
	j.closed = true
	j.mu.Unlock()
	if first {
		close(j.stop)
	}
	<-j.idle
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if !j.shut {
		j.flushLocked()
		// If path lost the file, what was written since is in the old
		// file only: write a new one (and wait for it).
		j.checkFile()
		if j.compacting {
			_ = j.install(<-j.compacted)
		}
		j.bg.Wait()
		var lost error
		if len(j.backlog) > 0 {
			lost = fmt.Errorf("journal: %d operations not written: %w", len(j.backlog), j.writeErr)
			j.log.Error("journal closed with operations it could not write", "file", j.path, "operations", len(j.backlog), "error", j.writeErr)
		}
		j.err = errors.Join(lost, j.f.Sync(), j.f.Close())
		j.shut = true
		closed := error(ErrClosed)
		j.health.Store(&closed)
		close(j.ended)
	}
	return j.err
}

// loop is the journal's goroutine: it writes what lingered, installs
// compactions and takes the writer's role when handed it, until Close.
func (j *Journal) loop() {
	defer close(j.idle)
	pprof.SetGoroutineLabels(j.labels)
	tick := time.NewTicker(j.checkEvery)
	defer tick.Stop()
	for {
		select {
		case <-j.wake:
			j.flush()
		case <-j.linger.C:
			j.wmu.Lock()
			j.flushLocked()
			j.release()
		case c := <-j.compacted:
			j.wmu.Lock()
			_ = j.install(c)
			j.release()
		case <-tick.C:
			j.wmu.Lock()
			j.check()
			j.release()
		case <-j.stop:
			return
		}
	}
}

// flush writes what is queued if the writer's role is free; if not, its
// holder will.
func (j *Journal) flush() {
	if j.wmu.TryLock() {
		j.flushLocked()
		j.release()
	}
}

// release gives up the writer's role. Callers that found it taken
// meanwhile count on its holder: while urgent operations are queued, it
// takes the role again and writes them, or after maxRounds hands the role
// to the journal's goroutine.
func (j *Journal) release() {
	for round := 1; ; round++ {
		j.wmu.Unlock()
		if !j.hasUrgent() {
			return
		}
		if round == maxRounds {
			select {
			case j.wake <- struct{}{}:
			default: // it has been told already
			}
			return
		}
		if !j.wmu.TryLock() {
			return // the new holder will
		}
		j.flushLocked()
	}
}

// flushLocked writes the queued operations as one batch; the caller holds
// the writer's role.
func (j *Journal) flushLocked() {
	if j.shut {
		return
	}
	j.mu.Lock()
	batch := j.queue
	j.queue, j.urgent = j.spare[:0], false
	if j.lingering {
		// After Stop, the timer's channel yields nothing stale.
		j.lingering = false
		j.linger.Stop()
	}
	j.mu.Unlock()
	if len(j.backlog) > 0 {
		// What failed to be written before goes first, in its order.
		all := append(j.backlog, batch...)
		j.backlog, j.backlogBytes = nil, 0
		j.commit(all)
	} else {
		j.commit(batch)
	}
	clear(batch) // let the data go
	if cap(batch) > 1<<14 {
		batch = nil
	}
	j.spare = batch
	if !j.compacting && j.end >= max(j.compactAt, j.retryAt) && 2*j.liveBytes < j.end {
		j.compact()
	}
}

// commit writes batch and tells the waiters. If the write fails, what is
// worth writing still is kept for the next batch.
func (j *Journal) commit(batch []op) {
	if len(batch) == 0 {
		return
	}
	err := j.write(batch)
	if err != nil {
		j.retain(batch)
	}
	n := 0
	for _, o := range batch {
		switch o.kind {
		case kindAppend:
			if o.done != nil { // nil: told already, when it first failed
				o.done <- err
			}
		case opPending:
			entries, err := j.pending(o.now)
			o.reply <- pendingResult{entries, err}
			continue
		}
		n++
	}
	if err == nil && n > 0 && j.OnBatch != nil {
		j.OnBatch(n)
	}
}

// undo is how to restore the index entry of key if a write fails.
type undo struct {
	key   string
	spans []span
	live  bool
}

// write encodes batch into one buffer and writes it, updating the index.
// A key appended and finished in the batch writes nothing; neither do the
// marks of a key finished in the batch, nor the marks and finish of a key
// not live.
func (j *Journal) write(batch []op) error {
	if len(j.lastFinish) > 1024 {
		j.lastFinish = map[string]int{} // clear would walk the big table each time
	} else {
		clear(j.lastFinish)
	}
	if len(batch) > 1 {
		for i, o := range batch {
			if o.kind == kindFinish {
				j.lastFinish[o.key] = i
			}
		}
	}
	b, undos, liveBytes := j.buf[:0], j.undo[:0], j.liveBytes
	for i, o := range batch {
		if o.kind == opPending {
			continue
		}
		if f, ok := j.lastFinish[o.key]; ok && f > i {
			continue // append or mark of a key finished later in the batch
		}
		prev, live := j.live[o.key]
		if o.kind != kindAppend && !live {
			continue
		}
		start := len(b)
		b = appendRecord(b, &o)
		n := int64(len(b) - start)
		if n-frameLen > maxRecord {
			b = b[:start]
			continue
		}
		undos = append(undos, undo{o.key, prev, live})
		// Where the record will be once the batch is written at j.end.
		if j.index(o.key, o.kind, span{j.end + int64(start), n}) {
			liveBytes += n
		} else {
			liveBytes -= bytesOf(prev)
		}
	}
	var err error
	if len(b) > 0 {
		if j.writeAt != nil {
			_, err = j.writeAt(j.f, b, j.end)
		} else {
			_, err = j.f.WriteAt(b, j.end)
		}
		if err != nil {
			// Leave no half record for later ones to hide behind (or cut
			// it after the next write, if this fails too).
			j.dirty = j.f.Truncate(j.end) != nil
			for i := len(undos) - 1; i >= 0; i-- {
				if u := undos[i]; u.live {
					j.live[u.key] = u.spans
				} else {
					delete(j.live, u.key)
				}
			}
			j.failed(err)
			err = fmt.Errorf("journal: write: %w", err)
		} else {
			j.end += int64(len(b))
			j.liveBytes = liveBytes
			if j.writeErr != nil || j.dirty {
				j.succeeded()
			}
		}
	}
	clear(undos)
	j.undo = undos[:0]
	if cap(b) <= 1<<20 {
		j.buf = b[:0]
	} else {
		j.buf = nil
	}
	j.size.Store(int64(len(j.live)))
	return err
}

// appendRecord appends the record of o to b.
func appendRecord(b []byte, o *op) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, o.kind)
	b = appendString(b, o.key)
	switch o.kind {
	case kindAppend:
		b = binary.LittleEndian.AppendUint64(b, uint64(o.deadline))
		b = append(b, o.data...)
	case kindDelivered:
		b = appendString(b, o.notifier)
		b = appendString(b, o.token)
	}
	body := b[start+frameLen:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// pending reads the live entries back from the file and finishes those
// whose deadline is not after now.
func (j *Journal) pending(now int64) ([]Entry, error) {
	type pend struct {
		Entry
		deadline int64
	}
	byKey := map[string]*pend{}
	s := newScanner(j.f, j.end)
	for {
		ok, err := s.scan()
		if err != nil {
			return nil, fmt.Errorf("journal: read: %w", err)
		}
		if !ok {
			break
		}
		r := &s.rec
		switch r.kind {
		case kindAppend:
			e := byKey[string(r.key)]
			if e == nil {
				e = &pend{Entry: Entry{Key: string(r.key), Delivered: map[[2]string]bool{}}}
				byKey[e.Key] = e
			}
			e.deadline, e.Data = r.deadline, bytes.Clone(r.data)
			e.Deadline = time.Unix(0, r.deadline)
		case kindDelivered:
			if e := byKey[string(r.key)]; e != nil {
				e.Delivered[[2]string{string(r.notifier), string(r.token)}] = true
			}
		case kindFinish:
			delete(byKey, string(r.key))
		}
	}
	var live []*pend
	var expired []op
	for _, e := range byKey {
		if e.deadline <= now {
			expired = append(expired, op{kind: kindFinish, key: e.Key})
			continue
		}
		live = append(live, e)
	}
	if len(expired) > 0 {
		if err := j.write(expired); err != nil {
			return nil, fmt.Errorf("journal: purge: %w", err)
		}
	}
	slices.SortFunc(live, func(a, b *pend) int {
		return cmp.Or(cmp.Compare(a.deadline, b.deadline), cmp.Compare(a.Key, b.Key))
	})
	out := make([]Entry, len(live))
	for i, e := range live {
		out[i] = e.Entry
	}
	return out, nil
}

// span is where a record lies in the file.
type span struct{ off, n int64 }

// index adds the record at sp of kind for key to the index, and reports
// whether key is live after it: an append makes it live (a key appended
// again keeps its earlier records, as Pending does), a mark adds to a live
// key, a finish ends it.
func (j *Journal) index(key string, kind byte, sp span) bool {
	l, live := j.live[key]
	switch {
	case kind == kindFinish:
		delete(j.live, key)
		return false
	case kind == kindAppend || live:
		j.live[key] = append(l, sp)
		return true
	}
	return false
}

// bytesOf is the size of the records at l.
func bytesOf(l []span) int64 {
	var n int64
	for _, sp := range l {
		n += sp.n
	}
	return n
}

// compaction is the new file a compaction made: the live records of the
// old file up to upto, size bytes with the header.
type compaction struct {
	tmp  *os.File
	size int64
	upto int64
	// moved maps the offset of each copied record to its offset in tmp.
	moved map[int64]int64
	err   error
}

// compact starts a compaction of the file as it is now.
func (j *Journal) compact() {
	j.compacting = true
	src, upto := j.f, j.end
	var spans []span
	for _, l := range j.live {
		spans = append(spans, l...)
	}
	j.bg.Add(1)
	go func() {
		defer j.bg.Done()
		pprof.SetGoroutineLabels(j.labels)
		c := j.rewrite(src, upto, spans)
		if j.beforeInstall != nil {
			j.beforeInstall()
		}
		j.compacted <- c
	}()
}

// rewrite writes the records at spans of src (those of the entries live
// at upto, from the index: no need to read the rest) into a new file,
// path+".tmp", and fsyncs it. It runs beside the writer, which only
// appends to src meanwhile.
func (j *Journal) rewrite(src *os.File, upto int64, spans []span) compaction {
	c := compaction{upto: upto}
	tmpPath := j.path + ".tmp"
	// The folder too may have been removed underneath.
	if err := os.MkdirAll(filepath.Dir(tmpPath), 0o750); err != nil {
		c.err = fmt.Errorf("journal: compact: %w", err)
		return c
	}
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		c.err = fmt.Errorf("journal: compact: %w", err)
		return c
	}
	c.err = func() error {
		if err := flock.Lock(tmp); err != nil {
			return err
		}
		slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.off, b.off) })
		// Copied as they are, neighbours in one read.
		w := bufio.NewWriterSize(tmp, 256<<10)
		_, _ = w.WriteString(magic)
		_, _ = w.Write(binary.LittleEndian.AppendUint32(nil, version))
		c.size = int64(headerLen)
		c.moved = make(map[int64]int64, len(spans))
		var buf []byte
		for i := 0; i < len(spans); {
			run := spans[i]
			c.moved[run.off] = c.size
			for i++; i < len(spans) && spans[i].off == run.off+run.n; i++ {
				c.moved[spans[i].off] = c.size + run.n
				run.n += spans[i].n
			}
			buf = slices.Grow(buf[:0], int(run.n))[:run.n]
			if _, err := src.ReadAt(buf, run.off); err != nil {
				return err
			}
			_, _ = w.Write(buf)
			c.size += run.n
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return tmp.Sync()
	}()
	if c.err != nil {
		tmp.Close()
		_ = os.Remove(tmpPath)
		c.err = fmt.Errorf("journal: compact: %w", c.err)
		return c
	}
	c.tmp = tmp
	return c
}

// install puts the file of a compaction in place: it copies there the
// records written since, renames it over path and carries on in it. A
// compaction that failed is tried again once the file has grown some more
// (or at the next check, if path does not name the file).
func (j *Journal) install(c compaction) error {
	j.compacting = false
	err := c.err
	tmpPath := j.path + ".tmp"
	if err == nil {
		_, err = io.Copy(io.NewOffsetWriter(c.tmp, c.size), io.NewSectionReader(j.f, c.upto, j.end-c.upto))
		if err == nil && j.fileErr != nil {
			// Path lost the file: another may have come meanwhile.
			err = j.makeRoom()
		}
		if err == nil {
			err = os.Rename(tmpPath, j.path)
		}
		if err != nil {
			c.tmp.Close()
			_ = os.Remove(tmpPath)
			err = fmt.Errorf("journal: compact: %w", err)
		}
	}
	if err != nil {
		j.retryAt = j.end + j.compactAt
		j.compactFailed(err)
		return err
	}
	fi, err := c.tmp.Stat()
	if err != nil {
		fi = nil // SameFile says no: the next check looks again
	}
	old := j.f
	j.f, j.fi, j.end = c.tmp, fi, c.size+j.end-c.upto
	// The index follows the records: those copied by the compaction are
	// where it put them, those written since moved with the tail.
	for _, l := range j.live {
		for i, sp := range l {
			if sp.off >= c.upto {
				l[i].off = sp.off - c.upto + c.size
			} else {
				l[i].off = c.moved[sp.off]
			}
		}
	}
	_ = old.Close()
	j.compactions.Add(1)
	j.bg.Add(1)
	go func() {
		defer j.bg.Done()
		pprof.SetGoroutineLabels(j.labels)
		_ = syncDir(filepath.Dir(j.path))
	}()
	if j.fileErr != nil {
		j.checkFile()
	}
	return nil
}

// syncDir makes a directory's entries (a creation, a rename) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
