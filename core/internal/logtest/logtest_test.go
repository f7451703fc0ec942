package logtest

import (
	"slices"
	"sync"
	"testing"
)

// TestBuffer: records written from many goroutines are all read back,
// whole, and found by message.
func TestBuffer(t *testing.T) {
	var b Buffer
	log := b.Logger()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				log.Info("written", "n", 1)
			}
		})
	}
	wg.Wait()
	log.Debug("a debug line")
	log.Error("the end", "file", "f")
	_, _ = b.Write([]byte("not JSON\n"))
	if n := len(b.Records()); n != 402 {
		t.Errorf("records: got %d; want 402", n)
	}
	if got := b.Find("end"); len(got) != 1 || got[0]["file"] != "f" {
		t.Errorf("find: got %v", got)
	}
	if got := b.Lines(); !slices.Equal(got[400:], []string{"DEBUG a debug line", "ERROR the end"}) {
		t.Errorf("lines: got %q", got[400:])
	}
}
