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
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
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
	f, err := flock.OpenLocked(abs)
	if errors.Is(err, flock.ErrLocked) {
		return nil, errors.New("in use by another process")
	}
	if err != nil {
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
	if j.writeAt == nil {
		j.writeAt = (*os.File).WriteAt
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

// Size is the number of entries not finished.
func (j *Journal) Size() int64 { return j.size.Load() }

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

// liveSpans returns where the records of the live entries are.
func (j *Journal) liveSpans() []span {
	var spans []span
	for _, l := range j.live {
		spans = append(spans, l...)
	}
	return spans
}
