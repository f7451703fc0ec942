// Health: failed writes and their backlog, the file removed or replaced
// while serving, damage found at open, and what Healthy reports.

package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ringside/ringside/core/internal/flock"
)

const (
	// checkEvery is how often the journal's goroutine checks that path
	// still names its file and, while writes fail, tries again.
	checkEvery = time.Second
	// maxBacklog bounds the appends kept in memory, by the size of their
	// records, while writes fail.
	maxBacklog = 16 << 20
)

// Healthy returns nil while what the journal accepts is durable, and an
// error naming the reason while it is not: its last write failed (a full
// disk, a read-only file system…), or its file was removed or replaced and
// is not written again yet. It turns nil by itself once a write succeeds
// again and the file is in place: the journal's goroutine checks both once
// a second. After Close it returns ErrClosed. It is an atomic load.
func (j *Journal) Healthy() error {
	if err := j.health.Load(); err != nil {
		return *err
	}
	return nil
}

// publish makes Healthy return the current reason, the file's first. The
// caller holds the writer's role.
func (j *Journal) publish() {
	err := j.fileErr
	if err != nil && j.recoverErr != nil {
		err = fmt.Errorf("%w; writing a new one failed: %w", err, j.recoverErr)
	}
	if err == nil {
		err = j.writeErr
	}
	if err == nil {
		j.health.Store(nil)
		return
	}
	j.health.Store(&err)
}

// failed counts and logs a failed write. The caller holds the writer's
// role.
func (j *Journal) failed(err error) {
	j.failures++
	if j.metrics != nil {
		j.metrics.JournalWriteErrors.Inc()
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the name
	}
	j.writeErr = fmt.Errorf("journal %s: write: %w", j.name, err)
	j.publish()
	if ok, quiet := j.logWrite.allow(j.now(), j.writeErr.Error()); ok {
		j.log.Error("journal write failed; callbacks accepted meanwhile are not crash-safe until a write succeeds",
			"file", j.path, "error", err, "repeats_not_logged", quiet)
	}
}

// succeeded follows a write that succeeded after a failed one: it cuts
// what the failed one may have left past the end, and says writes work
// again. The caller holds the writer's role.
func (j *Journal) succeeded() {
	if j.dirty {
		j.dirty = j.f.Truncate(j.end) != nil
	}
	if j.writeErr == nil {
		return
	}
	j.log.Warn("journal writes succeed again", "file", j.path, "failed_writes", j.failures, "was", j.writeErr)
	j.writeErr, j.failures = nil, 0
	j.logWrite = limiter{}
	j.publish()
}

// retain keeps in the backlog the operations of a failed batch that are
// still to be written, in their order (the index is as before the batch):
// each append that leaves the backlog within maxBacklog bytes (the others
// are dropped), the marks of the entries it holds or the index knows, the
// finishes of entries the index knows; not what a later finish in the
// batch ends. Marks and finishes are not bounded by maxBacklog but by the
// entries live in flight. The waiters were told of the failure: they are
// not told again.
func (j *Journal) retain(batch []op) {
	last := map[string]int{}
	for i, o := range batch {
		if o.kind == kindFinish {
			last[o.key] = i
		}
	}
	kept := make([]op, 0, len(batch))
	held := map[string]bool{} // appended in the backlog
	var size int64
	dropped := 0
	for i, o := range batch {
		if o.kind == opPending {
			continue
		}
		if f, ok := last[o.key]; ok && f > i {
			continue
		}
		_, onDisk := j.live[o.key]
		n := recordSize(&o)
		switch o.kind {
		case kindAppend:
			if size+n > j.maxBacklog {
				dropped++
				held[o.key] = false
				continue
			}
			held[o.key] = true
		case kindDelivered:
			if !onDisk && !held[o.key] {
				continue
			}
		case kindFinish:
			if !onDisk {
				continue
			}
		}
		o.done = nil
		kept = append(kept, o)
		size += n
	}
	j.backlog, j.backlogBytes = kept, size
	if dropped > 0 {
		if ok, quiet := j.logBacklog.allow(j.now(), "backlog full"); ok {
			j.log.Error("journal backlog full: failed appends dropped; their callbacks are delivered but not crash-safe",
				"file", j.path, "dropped", dropped, "backlog_bytes", size, "repeats_not_logged", quiet)
		}
	}
}

// probeLen is the size of the write that tells whether the disk takes
// writes again, when there is nothing to write: a page, so that the room
// left in a partly filled block does not pass for a freed disk.
const probeLen = 4 << 10

// check is the journal's goroutine's look, once a second, at what Healthy
// reports: it checks that path still names the file, and while writes
// fail, it tries again: the backlog if there is one, else a probe (zeros
// written past the end and cut off). The caller holds the writer's role.
func (j *Journal) check() {
	if j.shut {
		return
	}
	j.checkFile()
	if len(j.backlog) > 0 {
		j.flushLocked()
		return
	}
	if j.writeErr == nil {
		return
	}
	_, err := j.writeAt(j.f, make([]byte, probeLen), j.end)
	if terr := j.f.Truncate(j.end); terr != nil {
		j.dirty = true
		err = cmpErr(err, terr)
	}
	if err == nil {
		j.succeeded()
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// checkFile checks that path names the journal's file. If it does not
// (removed, replaced, or its folder removed), durability is lost until a
// compaction writes the live entries to a new file at path: it starts one.
// A file at path that another process holds open as its journal is left
// alone (and durability stays lost). The caller holds the writer's role.
func (j *Journal) checkFile() {
	st, err := os.Stat(j.path)
	if err == nil && j.fi != nil && os.SameFile(st, j.fi) {
		if j.fileErr != nil {
			j.log.Warn("journal file written again at its path", "file", j.path)
			j.fileErr, j.recoverErr = nil, nil
			j.logFile = limiter{}
			j.publish()
		}
		return
	}
	what := "file removed while serving"
	switch {
	case err == nil:
		what = "file replaced while serving"
	case !errors.Is(err, fs.ErrNotExist):
		what = fmt.Sprintf("file unreachable while serving (%v)", err)
	}
	if j.fileErr == nil {
		// Logged before Healthy says it, so that whoever sees one finds
		// the other.
		j.log.Error("journal "+what+"; writing its live entries to a new file", "file", j.path)
	}
	j.fileErr = fmt.Errorf("journal %s: %s", j.name, what)
	j.publish()
	if j.compacting {
		return // its rename will put a file in place
	}
	if err := j.makeRoom(); err != nil {
		j.fileErr = fmt.Errorf("journal %s: file replaced while serving by %w", j.name, err)
		j.publish()
		if ok, _ := j.logFile.allow(j.now(), j.fileErr.Error()); ok {
			j.log.Error("journal file replaced by another process's journal; left alone: callbacks are not crash-safe", "file", j.path)
		}
		return
	}
	j.compact()
}

// errOtherJournal is what makeRoom returns when the file at path is
// another process's journal.
var errOtherJournal = errors.New("a journal another process has open")

// makeRoom readies path for the new file a compaction writes when path
// lost the journal's file: a file found there is renamed aside, unless
// another process holds it locked as its journal (errOtherJournal). The
// caller holds the writer's role.
func (j *Journal) makeRoom() error {
	st, err := os.Stat(j.path)
	if err != nil || j.fi != nil && os.SameFile(st, j.fi) {
		return nil // nothing there (or the rename will say), or ours
	}
	if inUse(j.path) {
		return errOtherJournal
	}
	aside := j.path + ".replaced-" + j.now().UTC().Format(stampLayout)
	if os.Rename(j.path, aside) == nil {
		j.log.Error("journal file replaced while serving; the other file is kept aside", "file", j.path, "aside", aside)
	}
	return nil
}

// compactFailed logs a compaction that failed; while path does not name
// the file, the compaction was to put it back, and Healthy says so.
func (j *Journal) compactFailed(err error) {
	if j.fileErr != nil {
		j.recoverErr = unwrapPath(err)
		j.publish()
	}
	if ok, quiet := j.logCompact.allow(j.now(), err.Error()); ok {
		j.log.Error("journal compaction failed", "file", j.path, "error", err, "repeats_not_logged", quiet)
	}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// inUse reports whether another process holds the file at path locked.
func inUse(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return flock.Lock(f) != nil
}

// stampLayout is the UTC time in the names of the files kept aside.
const stampLayout = "20060102T150405Z"

// repair follows a load that found damage in the middle of the file (the
// file was size bytes): it keeps a copy of the file aside, logs each
// damaged stretch, counts the records lost, and rewrites the file with
// the live records only. If the copy cannot be made the file is left as
// it is (its torn tail aside): scanners skip the damage, and the next Open
// finds it again. It reports whether it rewrote the file.
func (j *Journal) repair(dmg []damage, size int64) bool {
	aside, err := j.quarantine(size)
	lost := 0
	for _, d := range dmg {
		attrs := []any{"file", j.path, "offset", d.off, "bytes", d.end - d.off}
		if d.records > 0 {
			attrs = append(attrs, "records", d.records)
			lost += d.records
		} else {
			// Only the bytes are known; at least one record was in them.
			attrs = append(attrs, "records", "uncounted")
			lost++
		}
		if err == nil {
			attrs = append(attrs, "kept_in", aside)
		} else {
			attrs = append(attrs, "kept_in", "", "keep_error", err)
		}
		j.log.Error("journal damaged: records skipped", attrs...)
	}
	if j.metrics != nil {
		j.metrics.JournalDamaged.Add(float64(lost))
	}
	if err != nil {
		return false
	}
	j.compacting = true
	if err := j.install(j.rewrite(j.f, j.end, j.liveSpans())); err != nil {
		j.log.Error("journal damaged: could not rewrite it; the damage stays in the file and is skipped", "file", j.path, "error", err)
		return false
	}
	return true
}

// quarantine copies the first size bytes of the file to path.damaged-<UTC
// time> (-2, -3… if taken), fsynced, and returns its name.
func (j *Journal) quarantine(size int64) (string, error) {
	base := j.path + ".damaged-" + j.now().UTC().Format(stampLayout)
	name := base
	var dst *os.File
	var err error
	for i := 2; ; i++ {
		dst, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			break
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
	if err != nil {
		return "", err
	}
	_, err = io.Copy(dst, io.NewSectionReader(j.f, 0, size))
	err = errors.Join(err, dst.Sync(), dst.Close())
	if err == nil {
		err = flock.SyncDir(filepath.Dir(name))
	}
	if err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// limiter lets one message through at most once a second while it
// repeats, and counts those it held back.
type limiter struct {
	last  string
	at    time.Time
	quiet int
}

// allow reports whether msg is to be logged now, and how many repeats of
// it were not since it last was.
func (l *limiter) allow(now time.Time, msg string) (bool, int) {
	if msg == l.last && now.Sub(l.at) < time.Second {
		l.quiet++
		return false, 0
	}
	quiet := 0
	if msg == l.last {
		quiet = l.quiet
	}
	l.last, l.at, l.quiet = msg, now, 0
	return true, quiet
}
