package combine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every item is sent exactly once, in batches no larger than Max, never two
// sends at once, and items queued during a send share a later one.
func TestSender(t *testing.T) {
	var inSend, overlaps atomic.Int32
	var mu sync.Mutex
	seen := map[int]int{}
	batches := 0
	s := &Sender[int]{Max: 16, Send: func(b []int) error {
		if inSend.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inSend.Add(-1)
		if len(b) == 0 || len(b) > 16 {
			t.Errorf("batch of %d", len(b))
		}
		mu.Lock()
		batches++
		for _, v := range b {
			seen[v]++
		}
		mu.Unlock()
		time.Sleep(50 * time.Microsecond)
		return nil
	}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				if err := s.Add(g*1000 + i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != 4000 {
		t.Fatalf("%d distinct items sent; want 4000", len(seen))
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("item %d sent %d times", v, n)
		}
	}
	if overlaps.Load() != 0 {
		t.Errorf("%d sends overlapped", overlaps.Load())
	}
	if batches >= 4000 {
		t.Errorf("%d sends for 4000 items: nothing was batched", batches)
	}
}

// A failed send is reported to the caller that sent, and later items are
// still sent.
func TestSenderError(t *testing.T) {
	fail := errors.New("broken")
	var sent []int
	s := &Sender[int]{Send: func(b []int) error {
		sent = append(sent, b...)
		if b[0] == 1 {
			return fail
		}
		return nil
	}}
	if err := s.Add(1); !errors.Is(err, fail) {
		t.Fatalf("Add: %v; want the send error", err)
	}
	if err := s.Add(2); err != nil {
		t.Fatalf("Add after a failure: %v", err)
	}
	if len(sent) != 2 || sent[1] != 2 {
		t.Fatalf("sent %v", sent)
	}
}

// A batch stays within MaxBytes (by Size), but always holds at least one
// item, however large.
func TestSenderMaxBytes(t *testing.T) {
	var batches [][]int
	s := &Sender[int]{Max: 100, MaxBytes: 10, Size: func(v int) int { return v }, Send: func(b []int) error {
		batches = append(batches, append([]int(nil), b...))
		return nil
	}}
	// Queue while "sending", so that everything goes out in one Add.
	s.sending = true
	for _, v := range []int{3, 3, 3, 3, 20, 1, 9, 1} {
		if err := s.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	s.sending = false
	if err := s.Add(2); err != nil {
		t.Fatal(err)
	}
	want := [][]int{{3, 3, 3}, {3}, {20}, {1, 9}, {1, 2}}
	if fmt.Sprint(batches) != fmt.Sprint(want) {
		t.Errorf("batches %v; want %v", batches, want)
	}
}
