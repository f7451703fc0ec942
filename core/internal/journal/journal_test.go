package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// mustOpen opens the journal at path and closes it when the test ends (a
// test may close it before: Close is idempotent), so that a test that
// fails leaves no goroutine behind for the others.
func mustOpen(t testing.TB, path string) *Journal {
	t.Helper()
	return mustOpenWith(t, path, Options{})
}

func mustOpenWith(t testing.TB, path string, o Options) *Journal {
	t.Helper()
	j, err := open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// reopened closes j, failing the test if that fails, and opens its file
// again.
func reopened(t *testing.T, j *Journal) *Journal {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return mustOpen(t, j.path)
}

// pendingAt returns what Pending returns at now, failing the test on an
// error.
func pendingAt(t *testing.T, j *Journal, now time.Time) []Entry {
	t.Helper()
	got, err := j.Pending(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// wantSize checks the number of j's live entries; what says when, or why.
func wantSize(t *testing.T, j *Journal, want int, what string) {
	t.Helper()
	if got := j.Size(); got != int64(want) {
		t.Errorf("size %s: got %d; want %d", what, got, want)
	}
}

// want is what Pending should return for one key.
type want struct {
	deadline  time.Time
	data      string
	delivered [][2]string
}

// check compares Pending's entries with want (key → entry).
func check(t *testing.T, got []Entry, w map[string]want) {
	t.Helper()
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	wantKeys := slices.Sorted(maps.Keys(w))
	if !slices.Equal(slices.Sorted(slices.Values(keys)), wantKeys) {
		t.Fatalf("pending keys: got %v; want %v", keys, wantKeys)
	}
	for i, e := range got {
		we := w[e.Key]
		if !e.Deadline.Equal(we.deadline) || string(e.Data) != we.data {
			t.Errorf("entry %s: got deadline %v, data %q; want %v, %q", e.Key, e.Deadline, e.Data, we.deadline, we.data)
		}
		wd := map[[2]string]bool{}
		for _, d := range we.delivered {
			wd[d] = true
		}
		if !maps.Equal(e.Delivered, wd) {
			t.Errorf("delivered marks of %s: got %v; want %v", e.Key, e.Delivered, wd)
		}
		if i > 0 && got[i-1].Deadline.After(e.Deadline) {
			t.Errorf("pending not ordered by deadline: %s (%v) before %s (%v)", got[i-1].Key, got[i-1].Deadline, e.Key, e.Deadline)
		}
	}
}

// pauser makes the writer stop after its next batch until resume is
// called, so that what is queued meanwhile forms one batch. It needs
// OnBatch left to it.
type pauser struct {
	hold    chan chan struct{}
	entered chan struct{}
}

func newPauser(j *Journal) *pauser {
	p := &pauser{hold: make(chan chan struct{}, 1), entered: make(chan struct{})}
	j.OnBatch = func(int) {
		select {
		case rel := <-p.hold:
			p.entered <- struct{}{}
			<-rel
		default:
		}
	}
	return p
}

// pause appends key and returns once the writer is held after writing it.
func (p *pauser) pause(t *testing.T, j *Journal, key string) (resume func()) {
	t.Helper()
	rel := make(chan struct{})
	p.hold <- rel
	c := j.Append(key, t0.Add(time.Hour), []byte(key))
	waited := make(chan error, 1)
	go func() { waited <- c.Wait(context.Background()) }() // it writes
	<-p.entered
	return func() {
		close(rel)
		if err := <-waited; err != nil {
			t.Error(err)
		}
	}
}

// queued is how many operations wait for the writer.
func queued(j *Journal) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.queue)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// rec is a record as the file format documents it, decoded by the test.
type rec struct {
	kind                 byte
	key, notifier, token string
	deadline             int64
	data                 string
}

// records decodes the journal file at path, failing on anything but whole,
// well-formed records.
func records(t *testing.T, path string) []rec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("ringside journal\x01\x00\x00\x00")) {
		t.Fatalf("header: got %q", b[:min(len(b), 20)])
	}
	b = b[20:]
	str := func(b []byte) (string, []byte) {
		n := binary.LittleEndian.Uint32(b)
		return string(b[4 : 4+n]), b[4+n:]
	}
	var out []rec
	for len(b) > 0 {
		n := binary.LittleEndian.Uint32(b)
		body := b[8 : 8+n]
		if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[4:]) {
			t.Fatalf("record %d: bad CRC", len(out))
		}
		b = b[8+n:]
		r := rec{kind: body[0]}
		r.key, body = str(body[1:])
		switch r.kind {
		case 1:
			r.deadline, r.data = int64(binary.LittleEndian.Uint64(body)), string(body[8:])
		case 2:
			r.notifier, body = str(body)
			r.token, body = str(body)
			if len(body) != 0 {
				t.Fatalf("record %d: %d bytes after the token", len(out), len(body))
			}
		case 3:
		default:
			t.Fatalf("record %d: kind %d", len(out), r.kind)
		}
		out = append(out, r)
	}
	return out
}

func TestAppendDeliveredFinishSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	for i, key := range []string{"a", "b", "c", "old"} {
		dl := t0.Add(time.Duration(i+1) * time.Minute)
		if key == "old" {
			dl = t0.Add(-time.Second)
		}
		if err := j.Append(key, dl, []byte("data-"+key)).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	j.Delivered("a", "ios", "tok1")
	j.Delivered("a", "hook", "")
	j.Finish("b")
	j = reopened(t, j)
	wantSize(t, j, 3, "after reopen (a, c, old)")
	got := pendingAt(t, j, t0)
	if len(got) != 2 || got[0].Key != "a" || got[1].Key != "c" {
		t.Fatalf("pending: got %+v; want a, c (b finished, old expired)", got)
	}
	check(t, got, map[string]want{
		"a": {t0.Add(time.Minute), "data-a", [][2]string{{"ios", "tok1"}, {"hook", ""}}},
		"c": {t0.Add(3 * time.Minute), "data-c", nil},
	})
	wantSize(t, j, 2, "after purge")
}

// Pending orders by deadline and finishes, on disk, what has expired.
func TestPendingOrdersAndPurges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	for _, e := range []struct {
		key string
		dl  time.Duration
	}{{"c", 3 * time.Minute}, {"a", time.Minute}, {"gone", -time.Second}, {"b", 2 * time.Minute}, {"now", 0}} {
		if err := j.Append(e.key, t0.Add(e.dl), []byte(e.key)).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	j.Delivered("gone", "ios", "t")
	got := pendingAt(t, j, t0)
	if keys := []string{got[0].Key, got[1].Key, got[2].Key}; len(got) != 3 || !slices.Equal(keys, []string{"a", "b", "c"}) {
		t.Fatalf("pending: got %v; want a, b, c", keys)
	}
	wantSize(t, j, 3, "after Pending")
	j = reopened(t, j)
	wantSize(t, j, 3, "after reopen (the expired ones finished on disk)")
}

// Appends queued together share one write.
func TestGroupCommit(t *testing.T) {
	j := mustOpen(t, filepath.Join(t.TempDir(), "j.journal"))
	defer j.Close()
	p := newPauser(j)
	var batches atomic.Int64
	onBatch := j.OnBatch
	j.OnBatch = func(n int) { batches.Add(1); onBatch(n) }
	resume := p.pause(t, j, "first")
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := j.Append(fmt.Sprint(i), t0.Add(time.Hour), []byte("x")).Wait(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "the appends to queue", func() bool { return queued(j) == n })
	resume()
	wg.Wait()
	if got := batches.Load(); got != 2 {
		t.Errorf("%d batches for one append and %d queued together; want 2", got, n)
	}
	wantSize(t, j, n+1, "after the batches")
}

func TestAppendAfterClose(t *testing.T) {
	j := mustOpen(t, filepath.Join(t.TempDir(), "j.journal"))
	j.Close()
	if err := j.Append("k", t0, nil).Wait(context.Background()); err != ErrClosed {
		t.Errorf("got %v; want ErrClosed", err)
	}
	if _, err := j.Pending(context.Background(), t0); err != ErrClosed {
		t.Errorf("pending: got %v; want ErrClosed", err)
	}
	j.Delivered("k", "ios", "t") // no effect, no panic
	j.Finish("k")
	if err := j.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// Close writes the appends queued before it; their Wait, called after
// Close, says so. An append after Close fails at once.
func TestWaitAfterClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	p := newPauser(j)
	resume := p.pause(t, j, "hold")
	var commits []*Commit
	for i := range 50 {
		commits = append(commits, j.Append(fmt.Sprint("q", i), t0.Add(time.Hour), []byte("x")))
	}
	closed := make(chan error)
	go func() { closed <- j.Close() }()
	waitFor(t, "Close to begin", func() bool { j.mu.Lock(); defer j.mu.Unlock(); return j.closed })
	if err := j.Append("late", t0.Add(time.Hour), nil).Wait(ctx); err != ErrClosed {
		t.Errorf("append after Close: got %v; want ErrClosed", err)
	}
	resume()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i, c := range commits {
		if err := c.Wait(ctx); err != nil {
			t.Errorf("append %d queued before Close: %v", i, err)
		}
	}
	wantSize(t, mustOpen(t, path), 51, "after reopen")
}

// A key appended and finished in one batch writes nothing; the marks of a
// key finished in their batch are dropped; finishing everything leaves no
// live entry.
func TestSameBatchWritesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	p := newPauser(j)
	if err := j.Append("early", t0.Add(time.Hour), []byte("x")).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	j.Delivered("early", "ios", "t1")
	resume := p.pause(t, j, "sync") // the mark rides with it
	j.Finish("early")
	c := j.Append("same", t0.Add(time.Hour), []byte("x"))
	j.Delivered("same", "hook", "")
	j.Finish("same")
	j.Delivered("sync", "ios", "dropped")
	j.Finish("sync")
	resume()
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range records(t, path) {
		got = append(got, fmt.Sprintf("%d:%s:%s", r.kind, r.key, r.token))
	}
	wantRecs := []string{"1:early:", "2:early:t1", "1:sync:", "3:early:", "3:sync:"}
	if !slices.Equal(got, wantRecs) {
		t.Errorf("records: got %v; want %v", got, wantRecs)
	}
	wantSize(t, mustOpen(t, path), 0, "after finishing everything")
}

// Marks nobody waits for reach the disk without an append to carry them;
// so does an append nobody waits for.
func TestWrittenWithoutWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	defer j.Close()
	if err := j.Append("a", t0.Add(time.Hour), []byte("x")).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	j.Delivered("a", "ios", "t")
	waitFor(t, "the mark on disk", func() bool { return len(records(t, path)) == 2 })
	j.Finish("a")
	waitFor(t, "the finish on disk", func() bool { return len(records(t, path)) == 3 })
	// The writer counts the entries once its write returned: the file can
	// show the finish a moment before Size does.
	waitFor(t, "the size to drop to 0", func() bool { return j.Size() == 0 })
	c := j.Append("b", t0.Add(time.Hour), []byte("x"))
	waitFor(t, "the append on disk", func() bool { return len(records(t, path)) == 4 })
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// crashSteps writes a journal one record per step and returns its bytes,
// the file size after each step (ends[0] is the empty journal) and what
// Pending should return then.
func crashSteps(t *testing.T) (file []byte, ends []int64, states []map[string]want) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	defer j.Close()
	model := map[string]want{}
	snapshot := func() {
		// Pending writes what is queued first: each step is a batch.
		pendingAt(t, j, t0)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, st.Size())
		s := map[string]want{}
		for k, v := range model {
			v.delivered = slices.Clone(v.delivered)
			s[k] = v
		}
		states = append(states, s)
	}
	appendKey := func(key string, dl time.Duration, data string) {
		if err := j.Append(key, t0.Add(dl), []byte(data)).Wait(ctx); err != nil {
			t.Fatal(err)
		}
		model[key] = want{deadline: t0.Add(dl), data: data}
	}
	deliver := func(key, n, tok string) {
		j.Delivered(key, n, tok)
		w := model[key]
		w.delivered = append(w.delivered, [2]string{n, tok})
		model[key] = w
	}
	finish := func(key string) { j.Finish(key); delete(model, key) }
	snapshot()
	for _, step := range []func(){
		func() { appendKey("a", time.Minute, "data-a") },
		func() { appendKey("b", 2*time.Minute, "") },
		func() { deliver("a", "ios", "tok1") },
		func() { deliver("a", "hook", "") },
		func() { finish("b") },
		func() { appendKey("c", 30*time.Second, strings.Repeat("c", 100)) },
		func() { deliver("c", "android", "tok2") },
		func() { deliver("c", "ios", "tok3") },
		func() { finish("a") },
		func() { appendKey("d", time.Hour, "data-d") },
	} {
		step()
		snapshot()
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(file)) != ends[len(ends)-1] {
		t.Fatalf("file of %d bytes; the last step ended at %d", len(file), ends[len(ends)-1])
	}
	return file, ends, states
}

// reopen opens a journal holding b and checks it yields want, that its
// torn tail is gone (the file is size bytes) and that it goes on working.
func reopen(t *testing.T, path string, b []byte, size int64, w map[string]want) {
	t.Helper()
	ctx := context.Background()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o, _, m := observed()
	j, err := OpenWith(path, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	// A torn tail is no damage.
	if aside := quarantined(t, path); len(aside) != 0 {
		t.Errorf("kept aside: %v; want nothing for a torn tail", aside)
	}
	if v := testutil.ToFloat64(m.JournalDamaged); v != 0 {
		t.Errorf("damaged records: %v; want 0 for a torn tail", v)
	}
	wantSize(t, j, len(w), "at open")
	check(t, pendingAt(t, j, t0), w)
	if st, err := os.Stat(path); err != nil || st.Size() != size {
		t.Errorf("file after open: %v, %v; want %d bytes", st.Size(), err, size)
	}
	// What is written next is found next time.
	if err := j.Append("next", t0.Add(time.Hour), []byte("n")).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	j = reopened(t, j)
	wantSize(t, j, len(w)+1, "after an append and reopening")
}

// A crash may leave any prefix of the file: Open succeeds and yields the
// entries of the whole records.
func TestCrashAtEveryLength(t *testing.T) {
	file, ends, states := crashSteps(t)
	dir := t.TempDir()
	for n := 0; n <= len(file); n++ {
		step := 0
		for step+1 < len(ends) && ends[step+1] <= int64(n) {
			step++
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			reopen(t, filepath.Join(dir, fmt.Sprint(n)), file[:n], ends[step], states[step])
		})
	}
}

// A damaged last record, or garbage after the last one, is cut off.
func TestCorruptTail(t *testing.T) {
	file, ends, states := crashSteps(t)
	dir := t.TempDir()
	last := len(ends) - 1
	for i := ends[last-1]; i < ends[last]; i++ {
		b := bytes.Clone(file)
		b[i] ^= 0x5a
		t.Run(fmt.Sprint("flip", i), func(t *testing.T) {
			reopen(t, filepath.Join(dir, fmt.Sprint(i)), b, ends[last-1], states[last-1])
		})
	}
	for name, tail := range map[string][]byte{
		"absurd length": {0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 1},
		"zeros":         make([]byte, 4096),
		"short frame":   {12, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			reopen(t, filepath.Join(dir, name), append(bytes.Clone(file), tail...), ends[last], states[last])
		})
	}
}

// A file that is not a journal is refused, named, and left as it is.
func TestForeignFileRefused(t *testing.T) {
	for _, tc := range []struct {
		name, content, err string
	}{
		{"sqlite", "SQLite format 3\x00" + strings.Repeat("\x00", 100), "not a ringside journal"},
		{"short", "abc", "not a ringside journal"},
		{"version", "ringside journal\x02\x00\x00\x00", "format version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ringside.journal")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := Open(path)
			if err == nil {
				j.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error: got %q; want it to name %s and say %q", err, path, tc.err)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Errorf("the file was changed")
			}
		})
	}
}

// A journal is open in one place at a time.
func TestOpenTwiceRefused(t *testing.T) {
	switch runtime.GOOS {
	case "darwin", "dragonfly", "freebsd", "linux", "netbsd", "openbsd":
	default:
		t.Skip("no file locks here")
	}
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	if j2, err := Open(path); err == nil || !strings.Contains(err.Error(), "in use") {
		if j2 != nil {
			j2.Close()
		}
		t.Errorf("second open: got %v; want in use", err)
	}
	j.Close()
	mustOpen(t, path).Close()
}

// Records written while a compaction copies the file are carried over to
// the new file.
func TestCompactionKeepsWhatIsWrittenMeanwhile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpenWith(t, path, Options{compactAt: 4 << 10})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	j.beforeInstall = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	model := map[string]want{}
	add := func(key string) {
		t.Helper()
		data := strings.Repeat(key, 20)
		if err := j.Append(key, t0.Add(time.Hour), []byte(data)).Wait(ctx); err != nil {
			t.Fatal(err)
		}
		model[key] = want{deadline: t0.Add(time.Hour), data: data}
	}
	deliver := func(key, tok string) {
		j.Delivered(key, "ios", tok)
		w := model[key]
		w.delivered = append(w.delivered, [2]string{"ios", tok})
		model[key] = w
	}
	flush := func() {
		pendingAt(t, j, t0)
	}
	add("keep1")
	add("keep2")
	deliver("keep1", "before")
	for i := 0; ; i++ {
		add(fmt.Sprint("dead", i))
		j.Finish(fmt.Sprint("dead", i))
		delete(model, fmt.Sprint("dead", i))
		flush()
		select {
		case <-entered:
		default:
			if i > 1000 {
				t.Fatal("no compaction")
			}
			continue
		}
		break
	}
	// The compaction has its copy; these go to the old file's tail.
	add("during")
	deliver("during", "d")
	deliver("keep1", "during")
	j.Finish("keep2")
	delete(model, "keep2")
	flush()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, "the compaction", func() bool { return j.compactions.Load() == 1 })
	add("after")
	deliver("keep1", "after")
	flush()
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if after.Size() >= before.Size() {
		t.Errorf("file of %d bytes after compaction; %d before", after.Size(), before.Size())
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("%s.tmp left: %v", path, err)
	}
	j = mustOpen(t, path)
	defer j.Close()
	check(t, pendingAt(t, j, t0), model)
}

// callbacks runs workers that each append n keys (named after prefix) with
// their marks and finish all but every tenth; it returns what should be
// left.
func callbacks(t *testing.T, j *Journal, prefix string, workers, n int) map[string]want {
	var mu sync.Mutex
	model := map[string]want{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range n {
				key := fmt.Sprintf("%sw%d-%d", prefix, w, i)
				dl := t0.Add(time.Hour + time.Duration(i)*time.Millisecond)
				data := strings.Repeat(key, 10+i%40)
				c := j.Append(key, dl, []byte(data))
				j.Delivered(key, "ios", "t1")
				if err := c.Wait(context.Background()); err != nil {
					t.Error(err)
					return
				}
				if i%10 != 0 {
					j.Finish(key)
					continue
				}
				j.Delivered(key, "hook", "")
				mu.Lock()
				model[key] = want{dl, data, [][2]string{{"ios", "t1"}, {"hook", ""}}}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return model
}

// compactNow starts a compaction of the file as it is, unless one runs
// already, and waits until one more is installed than before: the test
// decides when compactions happen instead of hoping that its load
// triggers them.
func compactNow(t *testing.T, j *Journal) {
	t.Helper()
	j.wmu.Lock()
	before := j.compactions.Load()
	if !j.compacting {
		j.compact()
	}
	j.wmu.Unlock()
	waitFor(t, "the compaction", func() bool { return j.compactions.Load() > before })
}

// Compactions under concurrent appends keep every live entry and its marks;
// a second compaction copies what the index says after the first moved it.
// (Before, this test waited for a second compaction its load had to
// trigger; on a slow run, the first one spanned the whole load and the
// test waited for a write that never came.)
func TestCompactionUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpenWith(t, path, Options{compactAt: 16 << 10})
	model := callbacks(t, j, "a", 4, 400) // compactions may run meanwhile
	compactNow(t, j)
	maps.Copy(model, callbacks(t, j, "b", 4, 200))
	for key, w := range model {
		if strings.HasPrefix(key, "a") {
			j.Delivered(key, "late", "t")
			w.delivered = append(w.delivered, [2]string{"late", "t"})
			model[key] = w
		}
	}
	pendingAt(t, j, t0) // writes the last marks
	compactNow(t, j)
	wantSize(t, j, len(model), "after the compactions")
	j = reopened(t, j)
	check(t, pendingAt(t, j, t0), model)
}

// Every method at once, for the race detector.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpen(t, path)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = j.Size()
			if _, err := j.Pending(ctx, t0); err != nil {
				t.Error(err)
				return
			}
		}
	})
	model := callbacks(t, j, "", 8, 100)
	close(stop)
	readers.Wait()
	j = reopened(t, j)
	check(t, pendingAt(t, j, t0), model)
}

// goroutinesOf counts the goroutines labelled as the journal at path's
// (its own goroutine, compactions, directory syncs), so that goroutines of
// other tests' journals do not count.
func goroutinesOf(t *testing.T, path string) int {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	label := fmt.Sprintf("%q:%q", "ringside.journal", abs)
	n := 0
	for _, group := range strings.Split(b.String(), "\n\n") {
		if !strings.Contains(group, label) {
			continue
		}
		var count int
		if _, err := fmt.Sscanf(group, "%d @", &count); err == nil {
			n += count
		}
	}
	return n
}

// Close ends the journal's goroutines, compactions included. Only this
// journal's goroutines count: those of journals other tests left (a test
// that failed) do not make this one fail.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.journal")
	j := mustOpenWith(t, path, Options{compactAt: 1 << 10})
	// The journal's goroutine labels itself when it starts (so do the
	// others): it may not have yet. Those Close waits for have.
	waitFor(t, "a goroutine labelled as the journal's (else the check sees nothing)", func() bool { return goroutinesOf(t, path) > 0 })
	callbacks(t, j, "", 2, 50)
	j.wmu.Lock()
	if !j.compacting {
		j.compact() // one in flight at Close
	}
	j.wmu.Unlock()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if j.compactions.Load() == 0 {
		t.Error("no compaction ran")
	}
	// Close waits for them, but a goroutine that signalled its end may
	// not have returned yet: a bounded wait.
	deadline := time.Now().Add(5 * time.Second)
	for n := goroutinesOf(t, path); n != 0; n = goroutinesOf(t, path) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines of the journal left 5s after Close:\n%s", n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkAppend is one append waited for at a time: the cost of a write.
func BenchmarkAppend(b *testing.B) {
	j := mustOpen(b, filepath.Join(b.TempDir(), "j.journal"))
	defer j.Close()
	data := make([]byte, 600)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if err := j.Append(fmt.Sprint(i), t0.Add(time.Hour), data).Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel is appends from many goroutines, which share
// writes.
func BenchmarkAppendParallel(b *testing.B) { benchParallel(b, false) }

// BenchmarkCallback is a callback's whole life in the journal, from many
// goroutines: an append waited for, a delivered mark, a finish.
func BenchmarkCallback(b *testing.B) { benchParallel(b, true) }

// benchParallel appends from many goroutines and waits for each append;
// with marks, a delivered mark and a finish follow each.
func benchParallel(b *testing.B, marks bool) {
	j := mustOpen(b, filepath.Join(b.TempDir(), "j.journal"))
	defer j.Close()
	data := make([]byte, 600)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := fmt.Sprint(n.Add(1))
			if err := j.Append(k, t0.Add(time.Hour), data).Wait(context.Background()); err != nil {
				b.Fatal(err)
			}
			if marks {
				j.Delivered(k, "ios", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
				j.Finish(k)
			}
		}
	})
}
