package directory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/logtest"
)

// put stores the device (apns, token) of user u of service s, updated at
// t0; an error fails the test.
func put(t *testing.T, s Store, token string) {
	t.Helper()
	if err := s.Put(context.Background(), "s", "u", "apns", token, t0); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls until cond holds, and fails the test if it does not
// within 5 s; what says what was awaited.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantLogs checks the lines logged so far ("LEVEL message").
func wantLogs(t *testing.T, logs *logtest.Buffer, want ...string) {
	t.Helper()
	if got := logs.Lines(); !slices.Equal(got, want) {
		t.Errorf("logs: got %q; want %q", got, want)
	}
}

// watched is a store on a new file at path, whose logs and counted write
// failures the test reads.
type watched struct {
	*SQLite
	path     string
	logs     logtest.Buffer
	failures atomic.Int64
}

// openWatched opens a new directory file in dir with opt, whose Logger
// and WriteFailed it sets to fill the logs and failures returned.
func openWatched(t *testing.T, dir string, opt SQLiteOptions) *watched {
	t.Helper()
	w := &watched{path: filepath.Join(dir, "ringside.db")}
	opt.Logger = w.logs.Logger()
	opt.WriteFailed = func(error) { w.failures.Add(1) }
	w.SQLite = openWith(t, w.path, opt)
	return w
}

// wantNotDurable checks that err, a write's, is ErrNotDurable saying why,
// that Healthy says not durable too, and that failures writes failed so
// far.
func (w *watched) wantNotDurable(t *testing.T, err error, why string, failures int64) {
	t.Helper()
	if !errors.Is(err, ErrNotDurable) || !strings.Contains(err.Error(), why) {
		t.Fatalf("write: got %v; want ErrNotDurable saying %q", err, why)
	}
	if err := w.Healthy(); !errors.Is(err, ErrNotDurable) {
		t.Errorf("healthy: got %v; want ErrNotDurable", err)
	}
	if got := w.failures.Load(); got != failures {
		t.Errorf("write failures counted: got %d; want %d", got, failures)
	}
}

func removeFiles(t *testing.T, path string, suffixes ...string) {
	t.Helper()
	for _, s := range suffixes {
		if err := os.Remove(path + s); err != nil {
			t.Fatal(err)
		}
	}
}

func reopenDevices(t *testing.T, path string) []Device {
	t.Helper()
	s := openWith(t, path, SQLiteOptions{})
	defer s.Close()
	devs, err := s.Lookup(context.Background(), "s", "u")
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

// A write after the file (or its -wal or -shm) was removed lands in a file
// at the path, with every device written before: nothing is lost at the
// next start.
func TestRemovedFileIsRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		removed []string
	}{
		{"file, -wal and -shm", []string{"", "-wal", "-shm"}},
		{"the file only", []string{""}},
		{"the -wal only", []string{"-wal"}},
		{"the -shm only", []string{"-shm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ringside.db")
			s := openWith(t, path, SQLiteOptions{})
			put(t, s, "before")
			removeFiles(t, path, tc.removed...)
			put(t, s, "after")
			if err := s.Healthy(); err != nil {
				t.Errorf("healthy: got %v; want nil", err)
			}
			// The store reads the new file too.
			if got, _ := s.Lookup(context.Background(), "s", "u"); len(got) != 2 {
				t.Errorf("lookup: got %v; want two devices", got)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			want := []Device{{"apns", "after", t0}, {"apns", "before", t0}}
			if got := reopenDevices(t, path); !slices.EqualFunc(got, want, deviceEqual) {
				t.Errorf("after a restart: got %v; want %v", got, want)
			}
		})
	}
}

// The watcher notices a removed file without any write, so a crash before
// the next write loses nothing either; it logs ERROR then INFO.
func TestWatcherRebuildsRemovedFile(t *testing.T) {
	s := openWatched(t, t.TempDir(), SQLiteOptions{CheckEvery: 5 * time.Millisecond})
	put(t, s, "before")
	removeFiles(t, s.path, "", "-wal", "-shm")
	waitFor(t, "rebuilt", func() bool {
		return slices.Contains(s.logs.Lines(), "INFO directory file rebuilt from the open database; no device was lost")
	})
	// Copy the file as a crash would leave it: the open store's -wal is
	// not read by the copy.
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	b, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crashed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := reopenDevices(t, crashed); len(got) != 1 || got[0].Token != "before" {
		t.Errorf("the rebuilt file holds %v; want the device written before the removal", got)
	}
	wantLogs(t, &s.logs,
		"ERROR directory file removed while serving; rebuilding it from the open database",
		"INFO directory file rebuilt from the open database; no device was lost")
}

// Readers keep answering while the file is rebuilt under them.
func TestLookupsDuringRebuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ringside.db")
	s := openWith(t, path, SQLiteOptions{})
	ctx := context.Background()
	put(t, s, "a")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				devs, err := s.Lookup(ctx, "s", "u")
				if err != nil || len(devs) == 0 {
					failed.Store(fmt.Sprintf("lookup: %v %v", devs, err))
					return
				}
			}
		})
	}
	for i := range 10 {
		removeFiles(t, path, "", "-wal", "-shm")
		put(t, s, fmt.Sprint("b", i))
	}
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Error(f)
	}
}

// A file replaced by another is not written: the write is refused, counted
// and logged, reads go on from the file opened, and writes resume once the
// file opened is moved back.
func TestReplacedFileRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	s := openWatched(t, dir, SQLiteOptions{})
	path := s.path
	c := NewCache(s, 0)
	ctx := context.Background()
	put(t, c, "before")
	// Another directory file moved over this one (a restored backup).
	other := filepath.Join(dir, "other.db")
	openWith(t, other, SQLiteOptions{}).Close()
	if err := os.Link(path, filepath.Join(dir, "kept.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}

	s.wantNotDurable(t, c.Put(ctx, "s", "u", "apns", "refused", t0), "replaced", 1)
	if devs, _ := c.Lookup(ctx, "s", "u"); len(devs) != 1 || devs[0].Token != "before" {
		t.Errorf("lookup: got %v; want the device of the file opened, and not the refused one", devs)
	}
	// Pruning is a write like any other.
	_, err := c.Prune(ctx, "s", "u", "apns", "before", time.Time{})
	s.wantNotDurable(t, err, "replaced", 2)
	if devs, _ := c.Lookup(ctx, "s", "u"); len(devs) != 1 {
		t.Errorf("lookup after the refused prune: got %v; want the device kept", devs)
	}

	if err := os.Rename(filepath.Join(dir, "kept.db"), path); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "s", "u", "apns", "back", t0); err != nil {
		t.Errorf("put once the file is back: %v", err)
	}
	if err := s.Healthy(); err != nil {
		t.Errorf("healthy once the file is back: got %v; want nil", err)
	}
	wantLogs(t, &s.logs,
		"ERROR directory file replaced while serving; writes are refused until it is moved back or ringside restarts",
		"INFO directory file is the one opened again; writes are accepted")
}

// A write SQLite cannot make (here: the file may not grow) fails with
// ErrNotDurable, is counted, turns the store not durable, and leaves no
// trace in the cache; the next write that succeeds turns it durable again.
func TestFailedWriteIsNotDurable(t *testing.T) {
	s := openWatched(t, t.TempDir(), SQLiteOptions{})
	c := NewCache(s, 0)
	ctx := context.Background()
	wdb := s.c.Load().wdb
	if _, err := wdb.ExecContext(ctx, "PRAGMA max_page_count = 2"); err != nil {
		t.Fatal(err)
	}
	var full error
	var tok string
	for i := range 100 {
		tok = fmt.Sprintf("%0500d", i)
		if full = c.Put(ctx, "s", "u", "apns", tok, t0); full != nil {
			break
		}
	}
	s.wantNotDurable(t, full, "full", 1)
	devs, err := c.Lookup(ctx, "s", "u")
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(devs, func(d Device) bool { return d.Token == tok }) {
		t.Errorf("the cache claims the device whose write failed")
	}
	if _, err := c.Prune(ctx, "s", "u", "apns", devs[0].Token, time.Time{}); err != nil {
		t.Logf("prune into a full file: %v", err) // a delete may need no new page
	}

	if _, err := wdb.ExecContext(ctx, "PRAGMA max_page_count = 1000"); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "s", "u", "apns", tok, t0); err != nil {
		t.Fatalf("put with room again: %v", err)
	}
	if err := s.Healthy(); err != nil {
		t.Errorf("healthy: got %v; want nil", err)
	}
	wantLogs(t, &s.logs,
		"ERROR directory write failed; not durable until a write succeeds",
		"INFO directory writes succeed again")
}

// mountTmpfs mounts a tmpfs of size at a new folder until the test ends,
// or skips the test saying why it cannot.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes to a new file in dir until the disk is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			return path
		}
	}
}

// On a full disk writes fail and the store is not durable; once room is
// freed, the watcher's probe turns it durable again with no write needed.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	s := openWatched(t, dir, SQLiteOptions{CheckEvery: 10 * time.Millisecond})
	ctx := context.Background()
	filler := fill(t, dir)
	var ok []string
	var werr error
	for i := range 1000 {
		tok := fmt.Sprintf("%0500d", i)
		if werr = s.Put(ctx, "s", "u", "apns", tok, t0); werr != nil {
			break
		}
		ok = append(ok, tok)
	}
	if !errors.Is(werr, ErrNotDurable) {
		t.Fatalf("put on a full disk: got %v; want ErrNotDurable", werr)
	}
	time.Sleep(100 * time.Millisecond) // several probes
	if err := s.Healthy(); !errors.Is(err, ErrNotDurable) {
		t.Errorf("healthy on a full disk: got %v; want ErrNotDurable", err)
	}
	if s.failures.Load() == 0 {
		t.Error("no write failure counted")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "durable after room was freed", func() bool { return s.Healthy() == nil })
	put(t, s, "later")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := reopenDevices(t, s.path)
	for _, tok := range append(ok, "later") {
		if !slices.ContainsFunc(got, func(d Device) bool { return d.Token == tok }) {
			t.Errorf("device %s… written with success is lost", tok[:8])
		}
	}
}

// A second Exclusive open of a file fails, naming the file, even after the
// file was rebuilt; plain opens (explain) still work.
func TestExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ringside.db")
	a := openWith(t, path, SQLiteOptions{Exclusive: true})
	check := func(when string) {
		t.Helper()
		b, err := OpenSQLiteWith(path, SQLiteOptions{Exclusive: true})
		if err == nil {
			b.Close()
			t.Fatalf("%s: second exclusive open: got nil error; want ErrLocked", when)
		}
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another ringside") {
			t.Errorf("%s: got %q; want ErrLocked naming %s", when, err, path)
		}
		r := openWith(t, path, SQLiteOptions{})
		if _, err := r.Lookup(context.Background(), "s", "u"); err != nil {
			t.Errorf("%s: plain lookup: %v", when, err)
		}
		r.Close()
	}
	check("at start")
	removeFiles(t, path, "", "-wal", "-shm")
	put(t, a, "t")
	check("after a rebuild")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	openWith(t, path, SQLiteOptions{Exclusive: true}).Close()
}

// Close ends the watcher and may be called twice, concurrently.
func TestCloseEndsWatcher(t *testing.T) {
	s, err := OpenSQLiteWith(filepath.Join(t.TempDir(), "ringside.db"), SQLiteOptions{CheckEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	select {
	case <-s.done:
	default:
		t.Error("watcher still running after Close")
	}
	if err := s.Put(context.Background(), "s", "u", "k", "t", t0); err == nil {
		t.Error("put after close: got nil error")
	}
}

// A rebuild that fails leaves the store not durable, refuses writes, and
// is retried with a backoff (one ERROR, not one per attempt) until it
// succeeds.
func TestRebuildFailsThenSucceeds(t *testing.T) {
	s := openWatched(t, t.TempDir(), SQLiteOptions{CheckEvery: 10 * time.Millisecond})
	path := s.path
	ctx := context.Background()
	put(t, s, "before")
	// A folder where the copy goes: the copy cannot be made.
	if err := os.MkdirAll(filepath.Join(path+".rebuild", "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	removeFiles(t, path, "", "-wal", "-shm")
	for range 3 {
		err := s.Put(ctx, "s", "u", "apns", "refused", t0)
		if !errors.Is(err, ErrNotDurable) || !strings.Contains(err.Error(), "could not be rebuilt") {
			t.Fatalf("put: got %v; want ErrNotDurable, not rebuilt", err)
		}
	}
	if err := s.Healthy(); !errors.Is(err, ErrNotDurable) {
		t.Errorf("healthy: got %v; want ErrNotDurable", err)
	}
	if err := os.RemoveAll(path + ".rebuild"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rebuilt after the obstacle went", func() bool { return s.Healthy() == nil })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reopenDevices(t, path); len(got) != 1 || got[0].Token != "before" {
		t.Errorf("after a restart: got %v; want the device written before, not the refused one", got)
	}
	wantLogs(t, &s.logs,
		"ERROR directory file removed while serving; rebuilding it from the open database",
		"ERROR directory file could not be rebuilt; retrying, and refusing writes meanwhile",
		"INFO directory file rebuilt from the open database; no device was lost")
}
