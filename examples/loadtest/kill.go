package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// killRecord is when -kill-plugin killed ringside's serving plugin
// process, and which.
type killRecord struct {
	at  int64 // mono ns; 0: nothing was killed
	pid int
	err error
}

// killResult is how deliveries went on around the kill of the plugin.
type killResult struct {
	PID int `json:"pid"`
	// FirstPushMs is from the kill to the first push that arrived after
	// it (of any callback, retried ones too).
	FirstPushMs float64 `json:"first_push_after_kill_ms"`
	// FirstNewMs is from the kill to the arrival of the first callback
	// sent after the kill: the first delivery the new process serves.
	FirstNewMs float64 `json:"first_new_callback_push_after_kill_ms"`
	// After is the end-to-end latency of the callbacks sent in the
	// second after the kill.
	After pcts `json:"e2e_ms_second_after_kill"`
	// Slow counts the callbacks sent after the kill whose push took
	// over 50 ms, and SlowUntilMs is when the last of them was sent.
	Slow        int     `json:"slow_after_kill"`
	SlowUntilMs float64 `json:"slow_sent_until_ms"`
}

// servingPlugin is the serving plugin process of ringside pid: of its
// children, the oldest (a spare is always younger than the process it
// backs up); 0 when it has none.
func servingPlugin(pid int) int {
	best, bestStart := 0, uint64(math.MaxUint64)
	for _, p := range tree(pid)[1:] {
		f := statFields(p)
		if len(f) < 20 || f[1] != strconv.Itoa(pid) {
			continue
		}
		if s, err := strconv.ParseUint(f[19], 10, 64); err == nil && s < bestStart {
			best, bestStart = p, s
		}
	}
	return best
}

// killPlugin SIGKILLs the serving plugin process of pid after d.
func killPlugin(pid int, d time.Duration, out *killRecord, done chan<- struct{}) {
	defer close(done)
	time.Sleep(d)
	p := servingPlugin(pid)
	if p == 0 {
		out.err = fmt.Errorf("no plugin process of pid %d to kill", pid)
		return
	}
	out.at, out.pid = mono(time.Now()), p
	out.err = syscall.Kill(p, syscall.SIGKILL)
}

// killFigures reads the arrivals around k.
func killFigures(k killRecord, sched []int64, arrivals func(i int) int64) *killResult {
	r := &killResult{PID: k.pid, FirstPushMs: -1, FirstNewMs: -1}
	var after []time.Duration
	first, firstNew := int64(math.MaxInt64), int64(math.MaxInt64)
	for i, s := range sched {
		a := arrivals(i)
		if a == 0 {
			continue
		}
		if a >= k.at {
			first = min(first, a)
		}
		if s >= k.at {
			firstNew = min(firstNew, a)
			if s < k.at+int64(time.Second) {
				after = append(after, time.Duration(a-s))
			}
			if a-s > int64(50*time.Millisecond) {
				r.Slow++
				r.SlowUntilMs = max(r.SlowUntilMs, float64(s-k.at)/1e6)
			}
		}
	}
	if first != math.MaxInt64 {
		r.FirstPushMs = float64(first-k.at) / 1e6
	}
	if firstNew != math.MaxInt64 {
		r.FirstNewMs = float64(firstNew-k.at) / 1e6
	}
	slices.Sort(after)
	r.After = percentiles(after)
	return r
}

func (r *killResult) print(w io.Writer) {
	fmt.Fprintf(w, "  plugin %d SIGKILLed: first push after it %.1f ms; first push of a callback sent after it %.1f ms; e2e of the second after it p50 %.3f p99 %.3f max %.3f ms (n=%d); over 50 ms: %d, sent until %.1f ms after it\n",
		r.PID, r.FirstPushMs, r.FirstNewMs, r.After.P50, r.After.P99, r.After.Max, r.After.N, r.Slow, r.SlowUntilMs)
}
