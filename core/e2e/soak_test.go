package e2e

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// TestE2ESoak runs ringside for a bounded time at a steady callback rate
// with faults at the fake app server (~1% 503, ~1% 429 with Retry-After: 1)
// and one SIGKILL of the webhook plugin process mid-run, then counts at the
// fake peer — not from ringside's counters — what was sent, accepted,
// delivered, lost and duplicated. No accepted callback whose deadline
// allowed delivery may be lost.
//
// RINGSIDE_SOAK_DURATION (default 20s) and RINGSIDE_SOAK_RATE (callbacks/s,
// default 200) change the load.
func TestE2ESoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped under -short (it runs RINGSIDE_SOAK_DURATION, default 20s)")
	}
	duration := envDuration(t, "RINGSIDE_SOAK_DURATION", 20*time.Second, 0)
	rate := envInt(t, "RINGSIDE_SOAK_RATE", 200)
	const ttl = 60 * time.Second

	var faults503, faults429 atomic.Int64
	app := startWebhook(t, fakes.WebhookOptions{NoBodies: true, Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		switch x := rand.Float64(); {
		case x < 0.01:
			faults503.Add(1)
			return fakes.WebhookAnswer{Status: 503}
		case x < 0.02:
			faults429.Add(1)
			return retryAfter(429, "1")
		}
		return fakes.WebhookAnswer{Status: 200}
	}})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("5s", "info", "")+oneWebhook(app.URL, fmt.Sprintf("ttl    = %q", ttl.String())))
	in := startConfig(t, path)
	appPid := in.waitPluginPid(t, "app", 0, 5*time.Second)

	// Open-loop sender: one callback every 1/rate s, handed to a pool of
	// workers; a tick that finds the pool saturated is counted as skipped.
	type result struct {
		sid  string
		at   time.Time
		code int
		body string
		err  error
		took time.Duration
	}
	jobs := make(chan string, rate)
	results := make(chan result, rate*int(duration/time.Second+10))
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sid := range jobs {
				t0 := time.Now()
				code, body, err := in.call(sid, "2809")
				results <- result{sid: sid, at: t0, code: code, body: body, err: err, took: time.Since(t0)}
			}
		}()
	}
	var sent, skipped int
	var killedAt time.Time
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for now := range tick.C {
		if now.Sub(start) >= duration {
			break
		}
		if killedAt.IsZero() && now.Sub(start) >= duration/2 {
			if err := syscall.Kill(appPid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill plugin %d: %v", appPid, err)
			}
			killedAt = now
		}
		select {
		case jobs <- sidN(0x50a40000, sent):
			sent++
		default:
			skipped++
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	close(results)
	elapsed := time.Since(start)

	accepted := map[string]time.Time{}
	codes := map[string]int{}
	var lat []time.Duration
	for r := range results {
		lat = append(lat, r.took)
		switch {
		case r.err != nil:
			codes["error"]++
		case r.code == 200 && strings.Contains(r.body, `"status":"accepted"`):
			accepted[r.sid] = r.at
			codes["200 accepted"]++
		default:
			codes[fmt.Sprintf("%d %s", r.code, strings.TrimSpace(r.body))]++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })

	// Wait for the deliveries to end: every accepted sid delivered, or its
	// deadline passed.
	deadline := time.Now().Add(45 * time.Second)
	for {
		pending := 0
		for sid, at := range accepted {
			if app.Delivered(sid) == 0 && time.Now().Before(at.Add(ttl)) {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	checked := time.Now()

	// Count at the fake.
	delivered, duplicated, lost, expired, ghosts := 0, 0, 0, 0, 0
	perSID := map[string]int{}
	for _, r := range app.Requests("") {
		if r.Status >= 200 && r.Status < 300 {
			perSID[r.SID]++
		}
	}
	var lostSIDs []string
	for sid, n := range perSID {
		if _, ok := accepted[sid]; !ok {
			ghosts++
			continue
		}
		delivered++
		if n > 1 {
			duplicated++
		}
	}
	for sid, at := range accepted {
		if perSID[sid] > 0 {
			continue
		}
		if checked.Before(at.Add(ttl)) {
			lost++
			lostSIDs = append(lostSIDs, sid)
		} else {
			expired++
		}
	}
	restarts := in.metric(t, `ringside_plugin_restarts_total{notifier="app"}`)
	t.Logf("soak %v at %d/s (ran %v): sent %d (skipped ticks %d) / accepted %d / delivered %d / lost %d / duplicated %d (expired undelivered %d, unknown sids %d)",
		duration, rate, elapsed.Round(time.Millisecond), sent, skipped, len(accepted), delivered, lost, duplicated, expired, ghosts)
	t.Logf("answers %v; latency p50 %v p99 %v max %v; faults injected: 503 ×%d, 429 ×%d; plugin SIGKILLed at %v, restarts counted %v",
		codes, pct(lat, 0.50), pct(lat, 0.99), pct(lat, 1), faults503.Load(), faults429.Load(),
		killedAt.Sub(start).Round(time.Millisecond), restarts)

	if lost != 0 {
		sort.Strings(lostSIDs)
		t.Errorf("%d accepted callbacks lost (deadline allowed, never delivered): %v", lost, lostSIDs[:min(len(lostSIDs), 20)])
	}
	if ghosts != 0 {
		t.Errorf("%d sids delivered that were never accepted", ghosts)
	}
	if len(accepted) < sent*9/10 {
		t.Errorf("only %d of %d callbacks accepted", len(accepted), sent)
	}
	if killedAt.IsZero() || restarts < 1 {
		t.Errorf("the plugin kill did not happen or was not followed by a restart (restarts %v)", restarts)
	}
	if faults503.Load() == 0 || faults429.Load() == 0 {
		t.Errorf("no faults injected (503 ×%d, 429 ×%d): the run proves less than it claims", faults503.Load(), faults429.Load())
	}
	in.waitMetric(t, "ringside_callbacks_in_delivery", 0, 15*time.Second)
	in.waitMetric(t, "ringside_journal_entries", 0, 15*time.Second)
}
