// Compaction: the live records copied to a new file in the background,
// and the new file put in place of the old.

package journal

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"

	"github.com/ringside/ringside/core/internal/flock"
)

// compactSize is the file size past which a mostly dead file is
// compacted.
const compactSize = 8 << 20

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
	src, upto, spans := j.f, j.end, j.liveSpans()
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
		_, _ = w.Write(header())
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
		_ = flock.SyncDir(filepath.Dir(j.path))
	}()
	if j.fileErr != nil {
		j.checkFile()
	}
	return nil
}
