package delivery

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestBackoffWait(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		attempt int
		after   time.Duration
		want    time.Duration
	}{
		{1, 0, 50 * time.Millisecond},
		{2, 0, 100 * time.Millisecond},
		{4, 0, 400 * time.Millisecond},
		{10, 0, 500 * time.Millisecond}, // capped at Max before jitter
		{1, 2 * time.Second, 2 * time.Second},
	}
	for _, tc := range tests {
		if got := b.wait(tc.attempt, tc.after, 0.5); got != tc.want {
			t.Errorf("wait(%d, %v): got %v; want %v", tc.attempt, tc.after, got, tc.want)
		}
	}
}

// Retry makes attempts 1, 2, … until one is done, pausing between them as
// Wait says, Retry-After included; it gives up when the next pause would
// end after giveUp, or when ctx ends during a pause.
func TestRetry(t *testing.T) {
	b := Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond}
	jitter := func() float64 { return 1 }
	t.Run("until done", func(t *testing.T) {
		var ns []int
		done := b.Retry(t.Context(), time.Now().Add(time.Minute), time.Now, jitter, func(n int) (bool, time.Duration) {
			ns = append(ns, n)
			return n == 3, 0
		})
		if !done || !slices.Equal(ns, []int{1, 2, 3}) {
			t.Errorf("done %v after attempts %v; want true after 1, 2, 3", done, ns)
		}
	})
	t.Run("pauses as wait says, Retry-After included", func(t *testing.T) {
		var at []time.Time
		b.Retry(t.Context(), time.Now().Add(time.Minute), time.Now, jitter, func(n int) (bool, time.Duration) {
			at = append(at, time.Now())
			if n == 1 {
				return false, 60 * time.Millisecond
			}
			return n == 3, 0
		})
		if len(at) != 3 {
			t.Fatalf("%d attempts; want 3", len(at))
		}
		if gap := at[1].Sub(at[0]); gap < 60*time.Millisecond {
			t.Errorf("pause after a Retry-After of 60ms: %v", gap)
		}
		if gap := at[2].Sub(at[1]); gap < 2*time.Millisecond {
			t.Errorf("pause after attempt 2: %v; want at least wait's 2ms", gap)
		}
	})
	t.Run("gives up before a pause past giveUp", func(t *testing.T) {
		now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		n := 0
		done := b.Retry(t.Context(), now.Add(10*time.Millisecond), clock, jitter, func(int) (bool, time.Duration) {
			n++
			return false, 11 * time.Millisecond
		})
		if done || n != 1 {
			t.Errorf("done %v after %d attempts; want false after 1: the pause would end past giveUp", done, n)
		}
	})
	t.Run("stops when ctx ends during a pause", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		n := 0
		done := b.Retry(ctx, time.Now().Add(time.Minute), time.Now, jitter, func(int) (bool, time.Duration) {
			n++
			time.AfterFunc(20*time.Millisecond, cancel)
			return false, time.Minute - time.Second
		})
		if done || n != 1 {
			t.Errorf("done %v after %d attempts; want false after 1", done, n)
		}
	})
}
