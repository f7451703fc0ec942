// The writer and group commit: the queue of operations, the writer's role
// that writes each batch with one write, the marks that ride along with the
// next batch (or wait at most lingerMarks), and the index updated as
// batches are written.

package journal

import (
	"context"
	"fmt"
	"runtime/pprof"
	"time"
)

const (
	// lingerMarks is how long operations nobody waits for wait for a
	// write to join.
	lingerMarks = 50 * time.Millisecond
	// maxRounds is how many batches a caller holding the writer's role
	// writes before it hands the role to the journal's goroutine.
	maxRounds = 4
)

// opPending is the kind of the operation a Pending call queues; it is
// never written.
const opPending byte = 0xff

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
		_, err = j.writeAt(j.f, b, j.end)
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
