package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func open(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestAppendDeliveredFinishSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	j := open(t, path)
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
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = open(t, path)
	defer j.Close()
	if got := j.Size(); got != 3 {
		t.Errorf("size after reopen: got %d; want 3 (a, c, old)", got)
	}
	got, err := j.Pending(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "a" || got[1].Key != "c" {
		t.Fatalf("pending: got %+v; want a, c (b finished, old expired)", got)
	}
	if string(got[0].Data) != "data-a" || !got[0].Deadline.Equal(t0.Add(time.Minute)) {
		t.Errorf("entry a: got %+v", got[0])
	}
	if !got[0].Delivered[[2]string{"ios", "tok1"}] || !got[0].Delivered[[2]string{"hook", ""}] || len(got[0].Delivered) != 2 {
		t.Errorf("delivered marks of a: got %v", got[0].Delivered)
	}
	if len(got[1].Delivered) != 0 {
		t.Errorf("delivered marks of c: got %v", got[1].Delivered)
	}
	if got := j.Size(); got != 2 {
		t.Errorf("size after purge: got %d; want 2", got)
	}
}

// Concurrent appends share transactions.
func TestGroupCommit(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"))
	defer j.Close()
	var mu sync.Mutex
	batches := 0
	j.OnBatch = func(int) { mu.Lock(); batches++; mu.Unlock() }
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.Append(fmt.Sprint(i), t0.Add(time.Hour), []byte("x")).Wait(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if batches >= n {
		t.Errorf("%d commits for %d appends: no grouping", batches, n)
	}
	if j.Size() != n {
		t.Errorf("size: got %d; want %d", j.Size(), n)
	}
}

func TestAppendAfterClose(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.db"))
	j.Close()
	if err := j.Append("k", t0, nil).Wait(context.Background()); err != ErrClosed {
		t.Errorf("got %v; want ErrClosed", err)
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "j.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	data := make([]byte, 600)
	var n sync.Mutex
	i := 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Lock()
			i++
			k := fmt.Sprint(i)
			n.Unlock()
			if err := j.Append(k, t0.Add(time.Hour), data).Wait(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Finishing a key removes its delivered marks, whether they were written
// in an earlier batch or are still queued with the finish.
func TestFinishLeavesNoRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	j := open(t, path)
	if err := j.Append("early", t0.Add(time.Hour), []byte("x")).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	j.Delivered("early", "ios", "t1")
	// Force a commit between the mark and the finish.
	if err := j.Append("sync", t0.Add(time.Hour), []byte("x")).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	j.Finish("early")
	c := j.Append("same", t0.Add(time.Hour), []byte("x"))
	j.Delivered("same", "hook", "")
	j.Finish("same")
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	j.Finish("sync")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, path)
	defer j.Close()
	var entries, marks int
	if err := j.db.QueryRow(`SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM delivered)`).Scan(&entries, &marks); err != nil {
		t.Fatal(err)
	}
	if entries != 0 || marks != 0 || j.Size() != 0 {
		t.Errorf("after finishing everything: %d entries, %d delivered rows, size %d; want none", entries, marks, j.Size())
	}
}
