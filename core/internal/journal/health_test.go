package journal

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ringside/ringside/core/internal/logtest"
)

// diskFull makes a journal's writes fail with ENOSPC while on, after
// writing half their bytes, as a disk that fills up does.
type diskFull struct{ on atomic.Bool }

func (d *diskFull) writeAt(f *os.File, b []byte, off int64) (int, error) {
	if !d.on.Load() {
		return f.WriteAt(b, off)
	}
	n, _ := f.WriteAt(b[:len(b)/2], off)
	return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// keysOnDisk returns the keys of a journal file's live entries, read from a
// copy of the file as it is on disk now (what a process started after a
// crash would find), sorted.
func keysOnDisk(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the journal on disk: %v", err)
	}
	cp := filepath.Join(t.TempDir(), "copy.journal")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j := mustOpen(t, cp)
	defer j.Close()
	got, err := j.Pending(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	slices.Sort(keys)
	return keys
}

func appendOK(t *testing.T, j *Journal, key string) {
	t.Helper()
	if err := j.Append(key, t0.Add(time.Hour), []byte("data-"+key)).Wait(context.Background()); err != nil {
		t.Fatalf("append %s: %v", key, err)
	}
}

// While writes fail, Healthy says why, every failed write is counted, the
// log says so once a second at most, and the appends' waiters get the
// error; the appends are kept and written when the disk takes writes
// again, by the journal itself (nothing else is written meanwhile), and
// Healthy turns nil. Before, nothing reported the failure but Wait, and
// the appends that failed were never written.
func TestHealthyOnWriteErrors(t *testing.T) {
	o, logs, m := observed()
	disk := &diskFull{}
	clk := &clock{t: t0}
	o.writeAt, o.now, o.checkEvery = disk.writeAt, clk.now, 10*time.Millisecond
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpenWith(t, path, o)
	appendOK(t, j, "before")
	if err := j.Healthy(); err != nil {
		t.Fatalf("healthy before: %v", err)
	}

	disk.on.Store(true)
	ctx := context.Background()
	err := j.Append("a", t0.Add(time.Hour), []byte("secret-a")).Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("append on a full disk: got %v; want no space left on device", err)
	}
	const reason = "journal j.journal: write: no space left on device"
	if err := j.Healthy(); err == nil || err.Error() != reason {
		t.Fatalf("Healthy on a full disk: got %v; want %q", err, reason)
	}
	if v := testutil.ToFloat64(m.JournalWriteErrors); v < 1 {
		t.Errorf("write errors: %v; want ≥ 1", v)
	}
	if err := j.Append("b", t0.Add(time.Hour), []byte("secret-b")).Wait(ctx); err == nil {
		t.Fatal("second append on a full disk: no error")
	}
	j.Delivered("b", "ios", "tok")
	before := testutil.ToFloat64(m.JournalWriteErrors)
	if before < 2 {
		t.Errorf("write errors: %v; want ≥ 2", before)
	}
	lines := logs.Find("journal write failed")
	if len(lines) != 1 || lines[0]["level"] != "ERROR" || lines[0]["error"] != "no space left on device" || lines[0]["file"] != j.path {
		t.Fatalf("write failure log lines: %v; want one ERROR naming the file and the error (the same error again within a second is not logged)", lines)
	}
	// A second later the same error is logged again, with the count of
	// the ones that were not.
	clk.advance(1100 * time.Millisecond)
	if err := j.Append("c", t0.Add(time.Hour), []byte("secret-c")).Wait(ctx); err == nil {
		t.Fatal("third append on a full disk: no error")
	}
	j.Finish("c") // ends before the disk frees: never written
	lines = logs.Find("journal write failed")
	if len(lines) != 2 || lines[1]["repeats_not_logged"].(float64) < 1 {
		t.Fatalf("write failure log lines a second later: %v; want a second one counting the repeats", lines)
	}
	if err := j.Healthy(); err == nil {
		t.Fatal("healthy while writes fail")
	}

	disk.on.Store(false)
	waitFor(t, "Healthy to turn nil by itself", func() bool { return j.Healthy() == nil })
	if l := logs.Find("journal writes succeed again"); len(l) != 1 {
		t.Errorf("recovery log lines: %v; want one", l)
	}
	if strings.Contains(logs.String(), "secret-") {
		t.Error("the log shows record data")
	}
	// On disk now, without a Close: what was accepted while the disk was
	// full, and a half written record nowhere (records fails on one).
	records(t, path)
	if got, want := keysOnDisk(t, path), []string{"a", "b", "before"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries on disk: %v; want %v", got, want)
	}
	j = reopened(t, j)
	got := pendingAt(t, j, t0)
	check(t, got, map[string]want{
		"before": {t0.Add(time.Hour), "data-before", nil},
		"a":      {t0.Add(time.Hour), "secret-a", nil},
		"b":      {t0.Add(time.Hour), "secret-b", [][2]string{{"ios", "tok"}}},
	})
}

// With nothing left to write (the appends that failed have finished),
// Healthy still turns nil once the disk takes writes again: the journal
// probes it, and the probe leaves nothing in the file and counts no error.
func TestHealthyProbe(t *testing.T) {
	o, _, m := observed()
	disk := &diskFull{}
	o.writeAt, o.checkEvery = disk.writeAt, 5*time.Millisecond
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpenWith(t, path, o)
	appendOK(t, j, "before")
	disk.on.Store(true)
	if err := j.Append("a", t0.Add(time.Hour), []byte("x")).Wait(context.Background()); err == nil {
		t.Fatal("append on a full disk: no error")
	}
	j.Finish("a")
	waitFor(t, "the backlog to empty", func() bool {
		j.wmu.Lock()
		defer j.wmu.Unlock()
		return len(j.backlog) == 0 && queued(j) == 0
	})
	errs := testutil.ToFloat64(m.JournalWriteErrors)
	time.Sleep(50 * time.Millisecond) // probes fail meanwhile
	if err := j.Healthy(); err == nil {
		t.Fatal("healthy while the disk is full")
	}
	if v := testutil.ToFloat64(m.JournalWriteErrors); v != errs {
		t.Errorf("write errors went from %v to %v with nothing to write: probes are no journal writes", errs, v)
	}
	disk.on.Store(false)
	waitFor(t, "Healthy to turn nil by itself", func() bool { return j.Healthy() == nil })
	if got := records(t, path); len(got) != 1 || got[0].key != "before" {
		t.Errorf("records: %+v; want the one before the disk filled", got)
	}
}

// While writes fail, the operations kept for later hold at most maxBacklog
// bytes of appends and the marks that follow them; the appends past it are
// dropped, logged, and not written later, nor are their marks.
func TestBacklogBounded(t *testing.T) {
	o, logs, _ := observed()
	disk := &diskFull{}
	o.writeAt, o.checkEvery, o.maxBacklog = disk.writeAt, time.Hour, 1000
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpenWith(t, path, o)
	disk.on.Store(true)
	data := strings.Repeat("x", 100)
	for i := range 20 {
		key := fmt.Sprintf("k%02d", i)
		if err := j.Append(key, t0.Add(time.Hour), []byte(data)).Wait(context.Background()); err == nil {
			t.Fatalf("append %s: no error", key)
		}
		j.Delivered(key, "ios", "t")
	}
	j.wmu.Lock()
	n, size := len(j.backlog), j.backlogBytes
	j.wmu.Unlock()
	// Appends are kept while the backlog, marks included, stays within
	// the bound; the marks of the entries kept are kept.
	rec := recordSize(&op{kind: kindAppend, key: "k00", data: []byte(data)})
	mark := recordSize(&op{kind: kindDelivered, key: "k00", notifier: "ios", token: "t"})
	kept := 0
	for b := int64(0); b+rec <= 1000; b += rec + mark {
		kept++
	}
	if kept == 0 || kept >= 20 || n != 2*kept {
		t.Fatalf("backlog of %d operations; want %d appends and their marks", n, kept)
	}
	if size > 1000 {
		t.Errorf("backlog of %d bytes; the most is 1000", size)
	}
	if l := logs.Find("backlog full"); len(l) != 1 || l[0]["level"] != "ERROR" {
		t.Errorf("backlog full log lines: %v; want one ERROR", l)
	}
	disk.on.Store(false)
	appendOK(t, j, "after")
	j.wmu.Lock()
	if len(j.backlog) != 0 {
		t.Errorf("backlog after a write succeeded: %d operations", len(j.backlog))
	}
	j.wmu.Unlock()
	var want []string
	for i := range kept {
		want = append(want, fmt.Sprintf("k%02d", i))
	}
	want = append(want, "after")
	if got := keysOnDisk(t, path); fmt.Sprint(got) != fmt.Sprint(slices.Sorted(slices.Values(want))) {
		t.Errorf("entries on disk: %v; want %v (backlog held %d operations)", got, want, n)
	}
}

// holdInstall makes the journal's compactions wait before they hand their
// file over, until the returned function is called.
func holdInstall(j *Journal) (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	j.wmu.Lock()
	j.beforeInstall = func() { <-ch }
	j.wmu.Unlock()
	return func() { once.Do(func() { close(ch) }) }
}

// watched opens the journal at path, with a captured log, whose goroutine
// checks the file every checkEvery, and appends the entry "a".
func watched(t *testing.T, path string, checkEvery time.Duration) (*Journal, *logtest.Buffer) {
	t.Helper()
	o, logs, _ := observed()
	o.checkEvery = checkEvery
	j := mustOpenWith(t, path, o)
	appendOK(t, j, "a")
	return j, logs
}

// A journal file removed while serving is noticed: Healthy says so, the
// log says so, and the live entries, with those appended meanwhile, are
// written to a new file at the path, which a crash then leaves behind.
// Before, the journal went on writing to the removed file: everything
// accepted after the removal was lost to a crash, in silence.
func TestFileRemovedUnderneath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.journal")
	j, logs := watched(t, path, 5*time.Millisecond)
	appendOK(t, j, "gone")
	j.Finish("gone")
	release := holdInstall(j)
	defer release()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Healthy to report the removal", func() bool { return j.Healthy() != nil })
	if err := j.Healthy(); err.Error() != "journal j.journal: file removed while serving" {
		t.Errorf("Healthy: got %q", err)
	}
	if l := logs.Find("file removed while serving"); len(l) != 1 || l[0]["level"] != "ERROR" || l[0]["file"] != j.path {
		t.Errorf("removal log lines: %v; want one ERROR naming the file", l)
	}
	appendOK(t, j, "b") // to the removed file, and carried over
	release()
	waitFor(t, "Healthy to turn nil", func() bool { return j.Healthy() == nil })
	appendOK(t, j, "c")
	if got, want := keysOnDisk(t, path), []string{"a", "b", "c"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries on disk: %v; want %v", got, want)
	}
	if l := logs.Find("written again"); len(l) != 1 {
		t.Errorf("recovery log lines: %v; want one", l)
	}
}

// The folder removed with the file: both are made again.
func TestFolderRemovedUnderneath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "j.journal")
	j, _ := watched(t, path, 5*time.Millisecond)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	appendOK(t, j, "b")
	waitFor(t, "the file at its path again", func() bool {
		_, err := os.Stat(path)
		return err == nil && j.Healthy() == nil
	})
	if got, want := keysOnDisk(t, path), []string{"a", "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries on disk: %v; want %v", got, want)
	}
}

// A file put in the journal's place is kept aside and the journal written
// again; one that another process holds open as its journal is left alone,
// and Healthy says so until it is closed.
func TestFileReplacedUnderneath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.journal")
	j, logs := watched(t, path, 5*time.Millisecond)

	// A second journal at the path, as another ringside would open, while
	// the compaction that is to write the file again runs: it must not
	// rename its file over the other.
	release := holdInstall(j)
	defer release()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Healthy to report the removal", func() bool { return j.Healthy() != nil })
	other := mustOpen(t, path)
	appendOK(t, other, "theirs")
	release()
	waitFor(t, "Healthy to report the other journal", func() bool {
		err := j.Healthy()
		return err != nil && strings.Contains(err.Error(), "another process")
	})
	appendOK(t, j, "b")
	if got := keysOnDisk(t, path); fmt.Sprint(got) != "[theirs]" {
		t.Fatalf("the other journal holds %v; want [theirs]: it was replaced", got)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Healthy to turn nil", func() bool { return j.Healthy() == nil })
	if got, want := keysOnDisk(t, path), []string{"a", "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries on disk: %v; want %v", got, want)
	}
	aside, err := filepath.Glob(path + ".replaced-*")
	if err != nil || len(aside) != 1 {
		t.Fatalf("kept aside: %v, %v; want the other file", aside, err)
	}
	if got := keysOnDisk(t, aside[0]); fmt.Sprint(got) != "[theirs]" {
		t.Errorf("the file kept aside holds %v; want [theirs]", got)
	}
	if l := logs.Find("kept aside"); len(l) != 1 || l[0]["aside"] != aside[0] {
		t.Errorf("log lines: %v; want one naming %s", l, aside[0])
	}
}

// Close writes a new file if the journal's was removed and no check has
// noticed yet.
func TestCloseAfterRemoval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.journal")
	j, _ := watched(t, path, time.Hour)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	appendOK(t, j, "b")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := keysOnDisk(t, path), []string{"a", "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries on disk: %v; want %v", got, want)
	}
	if err := j.Healthy(); err != ErrClosed {
		t.Errorf("Healthy after Close: %v; want ErrClosed", err)
	}
}
