package e2e

// End-to-end tests of the delivery guarantees through the real binary:
// dedup, host-owned retries, fallback after delivery, plugin crashes, the
// journal across a SIGKILL, backpressure, reloads and shutdown. Every
// count is taken at the fake peers or from /metrics, and every wait is a
// poll with a deadline.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// ---------------------------------------------------------------------------
// Dedup.

// A repeated (sid, to_service_id, to_user_id) inside dedup_window is a
// duplicate and rings nothing; another callee of the same sid is not; a
// rejected callback is not recorded; after the window the key is new again;
// within a callback each device (kind, token) rings once even when two
// notifiers deliver that kind.
func TestE2EDedup(t *testing.T) {
	app := startWebhook(t, fakes.WebhookOptions{})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "debug", "")+`
delivery {
  dedup_window = "3s"
}
`+consolePluginBlock(consolePlugin(t))+webhookNotifier("app", app.URL)+`
notifier "desk1" {
  plugin = "console"
  prefix = "one"
}
notifier "desk2" {
  plugin = "console"
  prefix = "two"
}
`+routeTo("all", "", "app", "desk1", "desk2"))
	in := startConfig(t, path)
	tokens := []string{"aaaaaa-console-token", "bbbbbb-console-token"}
	for _, tok := range tokens {
		if code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/2809/console/"+tok, nil); code != 204 {
			t.Fatalf("PUT device: %d %s", code, body)
		}
	}

	a, b := sidN(0xdedd0001, 1), sidN(0xdedd0001, 2)
	start := time.Now()
	in.accept(t, a, "2809")
	code, body, err := in.call(a, "2809")
	if err != nil || code != 200 || !strings.Contains(body, `"status":"duplicate"`) {
		t.Fatalf("repeat inside the window: got %d %s %v; want 200 duplicate", code, body, err)
	}
	in.accept(t, a, "7777") // another callee: another key
	if time.Since(start) >= 3*time.Second {
		t.Fatal("the callbacks took longer than the dedup window; the test proves nothing")
	}
	// A rejected callback (no from_user_id) is not recorded.
	q := strings.Replace(query(b, "2809"), "from_user_id=9286&", "", 1)
	if code, _, body := do(t, "GET", in.notifyURL+"?"+q, nil); code != 400 {
		t.Fatalf("invalid callback: got %d %s; want 400", code, body)
	}
	in.accept(t, b, "2809")

	in.waitLogs(t, 2, 10*time.Second, "ending "+a, callbackDone(a))
	in.waitLogs(t, 1, 10*time.Second, "ending "+b, callbackDone(b))
	reqs := app.Requests(a)
	users := map[string]int{}
	for _, r := range reqs {
		users[r.ToUser]++
	}
	if len(reqs) != 2 || users["2809"] != 1 || users["7777"] != 1 {
		t.Errorf("webhooks for %s: %d, by callee %v; want one per callee", a, len(reqs), users)
	}
	if n := in.metric(t, "ringside_dedup_hits_total"); n != 1 {
		t.Errorf("ringside_dedup_hits_total = %v; want 1", n)
	}

	// Each console device rang once for a's callback to 2809, though both
	// desk notifiers deliver the console kind.
	rings := in.lines(func(l map[string]any) bool {
		return l["sid"] == a && l["device"] != nil && (l["notifier"] == "desk1" || l["notifier"] == "desk2") && strings.Contains(fmt.Sprint(l["msg"]), "call for")
	})
	byDevice := map[string]int{}
	for _, l := range rings {
		byDevice[fmt.Sprint(l["device"])]++
	}
	if len(rings) != 2 || len(byDevice) != 2 {
		t.Errorf("console rings for %s: %d over devices %v; want each of the 2 devices once", a, len(rings), byDevice)
	}
	d1 := in.metric(t, `ringside_deliveries_total{notifier="desk1",outcome="delivered"}`)
	d2 := in.metric(t, `ringside_deliveries_total{notifier="desk2",outcome="delivered"}`)
	if d1+d2 != 4 { // a and b, two devices each
		t.Errorf("console deliveries desk1=%v desk2=%v; want 4 in all (2 callbacks × 2 devices)", d1, d2)
	}

	// Once the window has passed, the same key is a new call.
	time.Sleep(time.Until(start.Add(3*time.Second + 200*time.Millisecond)))
	in.accept(t, a, "2809")
	waitWebhooks(t, app, []string{a}, 10*time.Second, "delivered 3 times", func(r []fakes.WebhookRequest) bool { return len(r) == 3 })
}

// ---------------------------------------------------------------------------
// Retries.

// Transient answers are retried by the host with a growing, jittered
// backoff, never sooner than Retry-After and never past the deadline;
// permanent answers are not retried; only the failed devices are tried
// again.
func TestE2ERetry(t *testing.T) {
	r1, r2, r3 := sidN(0x7e770001, 1), sidN(0x7e770001, 2), sidN(0x7e770001, 3)
	r4, r5, r6 := sidN(0x7e770001, 4), sidN(0x7e770001, 5), sidN(0x7e770001, 6)
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		switch {
		case r.SID == r1 && r.N <= 2:
			return fakes.WebhookAnswer{Status: 503}
		case r.SID == r2 && r.N == 1:
			return retryAfter(429, "2")
		case r.SID == r3:
			return fakes.WebhookAnswer{Status: 404}
		case r.SID == r4:
			return retryAfter(503, "2")
		case r.SID == r5:
			return fakes.WebhookAnswer{Status: 503}
		}
		return fakes.WebhookAnswer{Status: 200}
	}})
	const busy, fine = "+818000000503", "+818000000200"
	tw := startSMS(t, map[string][]int{busy: {503}})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "debug", "")+
		webhookNotifier("app", app.URL+"/app")+
		webhookNotifier("short", app.URL+"/short", `ttl    = "3s"`)+
		smsNotifier(tw.URL, `"call ${call.sid}"`)+
		routeTo("phones", `call.to_user_id == "phones"`, "sms")+
		routeTo("short", `call.to_user_id == "short"`, "short")+
		routeTo("main", "", "app"))
	in := startConfig(t, path)
	for _, p := range []string{busy, fine} {
		in.putDevice(t, "phones", "phone", p)
	}

	for _, sid := range []string{r1, r2, r3} {
		in.accept(t, sid, "2809")
	}
	shortSent := time.Now()
	in.accept(t, r4, "short")
	in.accept(t, r5, "short")
	shortAccepted := time.Now()
	in.accept(t, r6, "phones")
	for _, sid := range []string{r1, r2, r3, r4, r5, r6} {
		in.waitLogs(t, 1, 15*time.Second, "ending "+sid, callbackDone(sid))
	}

	// r1: 503, 503, 200 — three attempts of one delivery (one webhook-id),
	// each pause within its full-jitter ceiling (200 ms, 400 ms; plus slack
	// for the process hops).
	q := app.Requests(r1)
	if len(q) != 3 || q[2].Status != 200 {
		t.Fatalf("r1: %d requests; want 3, the last answered 200", len(q))
	}
	for i, ceil := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond} {
		if gap := q[i+1].At.Sub(q[i].At); gap > ceil+500*time.Millisecond {
			t.Errorf("r1: pause before attempt %d is %v; want at most %v (+ slack)", i+2, gap, ceil)
		}
	}
	if q[0].ID == "" || q[1].ID != q[0].ID || q[2].ID != q[0].ID {
		t.Errorf("r1: webhook-id changed across retries: %q %q %q", q[0].ID, q[1].ID, q[2].ID)
	}

	// r2: 429 Retry-After: 2 → the retry waits at least 2 s.
	q = app.Requests(r2)
	if len(q) != 2 || q[1].Status != 200 {
		t.Fatalf("r2: %d requests; want 2", len(q))
	} else if gap := q[1].At.Sub(q[0].At); gap < 1950*time.Millisecond {
		t.Errorf("r2: retried %v after a 429 with Retry-After: 2; want ≥ 2s", gap)
	}

	// r3: 404 is permanent: one request.
	if q = app.Requests(r3); len(q) != 1 {
		t.Errorf("r3: %d requests after a 404; want 1 (permanent, not retried)", len(q))
	}

	// r4 (ttl 3s): 503 Retry-After: 2 at 0 s and ~2 s; a third attempt would
	// start past the deadline, so it is never made.
	if q = app.Requests(r4); len(q) != 2 {
		t.Errorf("r4: %d requests; want 2 (the third would be past the 3s deadline)", len(q))
	}
	// r5 (ttl 3s): 503s retried with backoff until the deadline, never after.
	q = app.Requests(r5)
	if len(q) < 2 {
		t.Errorf("r5: %d requests; want retries until the deadline", len(q))
	}
	for _, r := range append(app.Requests(r4), q...) {
		if r.At.After(shortAccepted.Add(3 * time.Second)) {
			t.Errorf("%s: a request at %v after the callback; the deadline was 3s", r.SID, r.At.Sub(shortSent))
		}
	}
	if n := in.metric(t, `ringside_deliveries_total{notifier="short",outcome="expired"}`); n != 2 {
		t.Errorf("short expired = %v; want 2", n)
	}

	// r6: two phones; only the one answered 503 is sent again.
	byTo := map[string]int{}
	for _, r := range tw.Messages() {
		byTo[r.Form.Get("To")]++
	}
	if byTo[busy] != 2 || byTo[fine] != 1 {
		t.Errorf("SMS per phone %v; want %s twice (503 then 201) and %s once", byTo, busy, fine)
	}
	if n := in.metric(t, `ringside_deliveries_total{notifier="sms",outcome="delivered"}`); n != 2 {
		t.Errorf("sms delivered = %v; want 2", n)
	}

	// The counters agree with the fake.
	for series, want := range map[string]float64{
		`ringside_delivery_retries_total{notifier="app"}`:                 3, // r1 twice, r2 once
		`ringside_deliveries_total{notifier="app",outcome="delivered"}`:   2,
		`ringside_deliveries_total{notifier="app",outcome="permanent"}`:   1,
		`ringside_delivery_retries_total{notifier="sms"}`:                 1,
		`ringside_deliveries_total{notifier="short",outcome="delivered"}`: 0,
		`ringside_callbacks_in_delivery`:                                  0,
	} {
		if got := in.metric(t, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
	// A retry of r4 or r5 started just before the 3 s deadline can end at
	// the deadline inside the plugin before its request leaves: it counts
	// as a retry the fake never sees (at most one per callback).
	seen := float64(len(app.Requests(r4)) + len(q) - 2)
	if got := in.metric(t, `ringside_delivery_retries_total{notifier="short"}`); got < seen || got > seen+2 {
		t.Errorf(`ringside_delivery_retries_total{notifier="short"} = %v; want %v to %v (the requests the fake saw after the first of each)`, got, seen, seen+2)
	}
}

// ---------------------------------------------------------------------------
// Fallback after delivery.

// The route's fallback runs when every notify delivery failed permanently
// (at once) or when nothing was delivered by fallback_after (not sooner),
// and not at all when the notify delivery succeeded.
func TestE2EFallbackAfter(t *testing.T) {
	f1, f2, f3 := sidN(0xfa110001, 1), sidN(0xfa110001, 2), sidN(0xfa110001, 3)
	backup := startWebhook(t, fakes.WebhookOptions{})
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		switch r.SID {
		case f1:
			return fakes.WebhookAnswer{Status: 410}
		case f2:
			if backup.Delivered(f2) == 0 {
				return fakes.WebhookAnswer{Status: 503}
			}
		}
		return fakes.WebhookAnswer{Status: 200}
	}})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "debug", "")+`
delivery {
  fallback_after = "2s"
}
`+webhookNotifier("app", app.URL)+webhookNotifier("backup", backup.URL)+fallbackRoute("all", "", "app", "backup"))
	in := startConfig(t, path)

	sent := map[string]time.Time{}
	for _, sid := range []string{f1, f2, f3} {
		sent[sid] = time.Now()
		in.accept(t, sid, "2809")
	}
	waitDelivered(t, backup, []string{f1, f2}, 10*time.Second)
	if d := backup.Requests(f1)[0].At.Sub(sent[f1]); d > 1500*time.Millisecond {
		t.Errorf("f1: fallback %v after a permanent failure; want it at once, not at fallback_after", d)
	}
	if d := backup.Requests(f2)[0].At.Sub(sent[f2]); d < 1950*time.Millisecond || d > 5*time.Second {
		t.Errorf("f2: fallback %v after the callback; want at fallback_after (2s)", d)
	}
	for _, sid := range []string{f1, f2, f3} {
		in.waitLogs(t, 1, 10*time.Second, "ending "+sid, callbackDone(sid))
	}
	waitDelivered(t, app, []string{f2, f3}, time.Second)
	if n := len(backup.Requests(f3)); n != 0 {
		t.Errorf("f3 was delivered, yet its fallback ran %d times", n)
	}
	if n := len(app.Requests(f1)); n != 1 {
		t.Errorf("f1: %d requests after 410; want 1", n)
	}
	for series, want := range map[string]float64{
		`ringside_fallbacks_total{reason="failed",route="all"}`:  1,
		`ringside_fallbacks_total{reason="timeout",route="all"}`: 1,
		`ringside_fallbacks_total{reason="lookup",route="all"}`:  0,
	} {
		if got := in.metric(t, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
}

// ---------------------------------------------------------------------------
// Plugin crash.

// A plugin process SIGKILLed with deliveries in flight is restarted; those
// deliveries are retried on the new process (same delivery id) and each
// delivered once; the other notifiers keep their processes and keep
// delivering; a plugin that cannot be restarted is retried with backoff
// while /readyz says 503, and /readyz is 200 again once it is back;
// restarts are counted.
func TestE2EPluginCrash(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	slow := startWebhook(t, fakes.WebhookOptions{Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		if r.N == 1 && strings.HasPrefix(r.SID, "c4a50001") {
			return fakes.WebhookAnswer{Hold: release} // in flight until the plugin dies
		}
		return fakes.WebhookAnswer{Status: 200}
	}})
	other := startWebhook(t, fakes.WebhookOptions{})
	dir := t.TempDir()
	consoleCopy := filepath.Join(dir, "console-plugin")
	copyFile(t, consolePlugin(t), consoleCopy)
	path := writeConfigIn(t, dir, serverBlock("2s", "debug", "")+consolePluginBlock("./console-plugin")+
		webhookNotifier("slow", slow.URL)+webhookNotifier("other", other.URL)+`
notifier "desk" {
  plugin = "console"
}
`+routeTo("all", "", "slow", "other", "desk"))
	in := startConfig(t, path)
	if code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/2809/console/console-token-crash", nil); code != 204 {
		t.Fatalf("PUT device: %d %s", code, body)
	}
	slowPid := in.waitPluginPid(t, "slow", 0, 5*time.Second)
	otherPid := in.waitPluginPid(t, "other", 0, 5*time.Second)
	deskPid := in.waitPluginPid(t, "desk", 0, 5*time.Second)

	// Ten deliveries held in flight at the slow notifier's peer.
	held := in.acceptN(t, 0xc4a50001, 10, "2809")
	waitSeen(t, slow, held, 10*time.Second)
	waitDelivered(t, other, held, 10*time.Second)

	if err := syscall.Kill(slowPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The others keep delivering meanwhile.
	during := in.acceptN(t, 0xc4a50002, 5, "2809")
	waitDelivered(t, other, during, 10*time.Second)

	waitDelivered(t, slow, append(append([]string{}, held...), during...), 20*time.Second)
	for _, sid := range held {
		q := slow.Requests(sid)
		if n := slow.Delivered(sid); n != 1 {
			t.Errorf("%s delivered %d times at the slow peer; want 1", sid, n)
		}
		if len(q) < 2 || q[len(q)-1].ID != q[0].ID {
			t.Errorf("%s: %d requests; want the in-flight one retried with the same webhook-id", sid, len(q))
		}
	}
	in.waitMetric(t, `ringside_plugin_restarts_total{notifier="slow"}`, 1, 10*time.Second)
	in.waitLogs(t, 1, 5*time.Second, "plugin process restarted (slow)", func(l map[string]any) bool {
		return l["msg"] == "plugin process restarted" && l["notifier"] == "slow"
	})
	if pid := in.waitPluginPid(t, "slow", slowPid, 5*time.Second); pid == slowPid {
		t.Error("slow: same pid after the crash")
	}
	if in.pluginPid("other") != otherPid || in.pluginPid("desk") != deskPid {
		t.Error("a plugin process of another notifier changed when slow crashed")
	}
	for _, n := range []string{"other", "desk"} {
		if v := in.metric(t, `ringside_plugin_restarts_total{notifier="`+n+`"}`); v != 0 {
			t.Errorf("%s restarts = %v; want 0", n, v)
		}
	}
	in.waitReady(t, 200, 5*time.Second)

	// A plugin that cannot come back: its binary is gone, so restarts fail
	// and are retried with backoff while /readyz says 503.
	if err := os.Rename(consoleCopy, consoleCopy+".off"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(deskPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	in.waitReady(t, 503, 5*time.Second)
	d1 := sidN(0xc4a50003, 1)
	in.accept(t, d1, "2809")
	waitDelivered(t, other, []string{d1}, 5*time.Second)
	waitDelivered(t, slow, []string{d1}, 5*time.Second)
	fails := in.waitLogs(t, 3, 10*time.Second, "plugin restart failed (desk)", func(l map[string]any) bool {
		return l["msg"] == "plugin restart failed" && l["notifier"] == "desk"
	})
	var waits []float64
	for _, l := range fails {
		w, _ := l["retry_in"].(float64)
		waits = append(waits, w)
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] {
			t.Errorf("restart backoff shrinks: %v", waits)
		}
	}
	if waits[len(waits)-1] <= waits[0] {
		t.Errorf("restart backoff does not grow: %v", waits)
	}
	if err := os.Rename(consoleCopy+".off", consoleCopy); err != nil {
		t.Fatal(err)
	}
	in.waitReady(t, 200, 15*time.Second)
	in.waitMetric(t, `ringside_plugin_restarts_total{notifier="desk"}`, 1, 5*time.Second)
	in.waitPluginPid(t, "desk", deskPid, 5*time.Second)
	// d1 waited for the console device and rings on the new process.
	in.waitLogs(t, 1, 15*time.Second, "desk ringing "+d1, func(l map[string]any) bool {
		return l["sid"] == d1 && l["notifier"] == "desk" && strings.Contains(fmt.Sprint(l["msg"]), "call for")
	})
	if v := in.metric(t, `ringside_plugin_restarts_total{notifier="slow"}`); v != 1 {
		t.Errorf("slow restarts = %v; want 1", v)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Journal.

// Deliveries pending when ringside is SIGKILLed are resumed by the next
// ringside on the same folder and delivered; callbacks delivered before the
// crash are not delivered again; those whose deadline passed during the
// outage are not resumed; the journal empties, also on disk; the resumed
// callbacks are still duplicates.
func TestE2EJournalResume(t *testing.T) {
	var heal atomic.Bool
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		if strings.HasPrefix(r.SID, "e0000001") || heal.Load() {
			return fakes.WebhookAnswer{Status: 200}
		}
		return fakes.WebhookAnswer{Status: 503}
	}})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "debug", "")+directoryAt("data/ringside.db")+
		webhookNotifier("app", app.URL+"/app")+
		webhookNotifier("short", app.URL+"/short", `ttl    = "3s"`)+
		routeTo("short", `call.to_user_id == "short"`, "short")+
		routeTo("main", "", "app"))
	in := startConfig(t, path)

	var early, pending, short []string
	for i := range 5 {
		sid := sidN(0xe0000001, i)
		early = append(early, sid)
		in.accept(t, sid, "2809")
	}
	waitDelivered(t, app, early, 10*time.Second)
	for i := range 20 {
		sid := sidN(0x0a000001, i)
		pending = append(pending, sid)
		in.accept(t, sid, "2809")
	}
	shortSent := time.Now()
	for i := range 3 {
		sid := sidN(0x05000001, i)
		short = append(short, sid)
		in.accept(t, sid, "short")
	}
	waitSeen(t, app, append(append([]string{}, pending...), short...), 10*time.Second)
	// The early ones are finished on disk; the others are journaled.
	in.waitMetric(t, "ringside_journal_entries", 23, 10*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "data", "ringside.journal")); err != nil {
		t.Errorf("journal file: %v", err)
	}

	orphans := in.kill(t)
	if alive := waitGone(orphans, 3*time.Second); len(alive) > 0 {
		t.Logf("note: plugin processes %v outlived the SIGKILLed ringside (killed by the test)", alive)
		reap(alive)
	}
	// The short ones' deadline (3s) passes during the outage.
	time.Sleep(time.Until(shortSent.Add(3*time.Second + 100*time.Millisecond)))
	heal.Store(true)
	restarted := time.Now()

	in2 := startConfig(t, path)
	got := resumed(t, in2, app, pending)
	for _, sid := range append(append([]string{}, early...), short...) {
		if got[sid] {
			t.Errorf("%s was resumed; it was delivered, or its deadline had passed", sid)
		}
	}
	in2.waitMetric(t, "ringside_journal_entries", 0, 10*time.Second)
	in2.waitMetric(t, "ringside_callbacks_in_delivery", 0, 5*time.Second)
	for _, sid := range early {
		if n := app.Delivered(sid); n != 1 {
			t.Errorf("%s (delivered before the crash) delivered %d times", sid, n)
		}
	}
	for _, sid := range short {
		for _, r := range app.Requests(sid) {
			if r.At.After(restarted) {
				t.Errorf("%s sent after its deadline, by the restarted ringside", sid)
			}
		}
	}
	// The dedup window survived the crash through the journal.
	code, body, err := in2.call(pending[0], "2809")
	if err != nil || code != 200 || !strings.Contains(body, `"status":"duplicate"`) {
		t.Errorf("a resumed sid again: got %d %s %v; want 200 duplicate", code, body, err)
	}

	// The journal is empty on disk too: a third run resumes nothing.
	in2.stop()
	in3 := startConfig(t, path)
	time.Sleep(300 * time.Millisecond)
	if n := len(in3.lines(func(l map[string]any) bool { return l["msg"] == "resuming journaled callback" })); n != 0 {
		t.Errorf("third run resumed %d callbacks; want 0", n)
	}
	if n := in3.metric(t, "ringside_journal_entries"); n != 0 {
		t.Errorf("third run: journal entries %v; want 0", n)
	}
}

// ---------------------------------------------------------------------------
// Backpressure.

// Past max_in_flight notify_cb answers 503 at once (never 500, never
// queued), memory stays bounded under a flood, callbacks refused are not
// recorded as seen, and when the deliveries drain new callbacks are
// accepted again.
func TestE2EBackpressure(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(*fakes.WebhookRequest) fakes.WebhookAnswer { return fakes.WebhookAnswer{Hold: release} }})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "info", "  max_in_flight = 4")+oneWebhook(app.URL, `timeout = "30s"`))
	in := startConfig(t, path)

	first := in.acceptN(t, 0xbac00001, 4, "2809")
	waitSeen(t, app, first, 10*time.Second)
	in.waitMetric(t, "ringside_callbacks_in_delivery", float64(len(first)), 5*time.Second)

	rss0 := rss(t, in.pid())
	const flood, workers = 3000, 48
	var (
		mu      sync.Mutex
		codes   = map[int]int{}
		slowest time.Duration
		errs    int
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= flood {
					return
				}
				t0 := time.Now()
				code, _, err := in.call(sidN(0xf1000d01, i), "2809")
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					codes[code]++
				}
				slowest = max(slowest, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rss1 := rss(t, in.pid())
	t.Logf("flood of %d: answers %v, transport errors %d, slowest %v, RSS %d → %d KiB", flood, codes, errs, slowest, rss0, rss1)
	if codes[503] != flood || errs != 0 {
		t.Errorf("flood answers %v (errors %d); want all %d answered 503", codes, errs, flood)
	}
	if slowest > time.Second {
		t.Errorf("slowest 503 took %v; want fast answers", slowest)
	}
	if grow := rss1 - rss0; grow > 64<<10 {
		t.Errorf("RSS grew by %d KiB during the flood; want bounded", grow)
	}
	if n := in.metric(t, `ringside_callbacks_total{code="503",status="unavailable"}`); n != flood {
		t.Errorf("503s counted: %v; want %d", n, flood)
	}
	if n := in.metric(t, `ringside_callbacks_total{code="500",status="error"}`); n != 0 {
		t.Errorf("500s: %v", n)
	}
	if n := len(app.Requests("")); n != len(first) {
		t.Errorf("the fake saw %d requests while holding %d; the flood delivered something", n, len(first))
	}

	// Drain: the held deliveries end, and callbacks are accepted again —
	// including a sid refused during the flood (not recorded by dedup).
	releaseOnce.Do(func() { close(release) })
	waitDelivered(t, app, first, 10*time.Second)
	in.waitMetric(t, "ringside_callbacks_in_delivery", 0, 10*time.Second)
	later := []string{sidN(0xbac00002, 1), sidN(0xf1000d01, 7)}
	for _, sid := range later {
		in.accept(t, sid, "2809")
	}
	waitDelivered(t, app, later, 10*time.Second)
}

// Concurrent bursts from idle: max_in_flight bounds the callbacks in
// delivery however many arrive at once. Thirty rounds of 64 concurrent
// callbacks against max_in_flight = 4, the deliveries held at the peer;
// each round must accept at most 4.
func TestE2EBackpressureBurst(t *testing.T) {
	var hold atomic.Pointer[chan struct{}]
	ch := make(chan struct{})
	hold.Store(&ch)
	t.Cleanup(func() { close(*hold.Load()) })
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(*fakes.WebhookRequest) fakes.WebhookAnswer { return fakes.WebhookAnswer{Hold: *hold.Load()} }})
	dir := t.TempDir()
	// The console notifier, with no device, makes each plan look up the
	// directory, as a real deployment's would.
	path := writeConfigIn(t, dir, serverBlock("2s", "info", "  max_in_flight = 4")+consolePluginBlock(consolePlugin(t))+
		webhookNotifier("app", app.URL, `timeout = "30s"`)+`
notifier "desk" {
  plugin = "console"
}
`+routeTo("all", "", "app", "desk"))
	in := startConfig(t, path)

	for round := range 30 {
		var (
			mu       sync.Mutex
			wg       sync.WaitGroup
			answers  = map[int]int{}
			accepted []string
		)
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sid := sidN(0xb0050000+uint32(round), i)
				code, body, err := in.call(sid, "2809")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					answers[-1]++
					return
				}
				answers[code]++
				if code == 200 && strings.Contains(body, `"status":"accepted"`) {
					accepted = append(accepted, sid)
				}
			}()
		}
		wg.Wait()
		if len(accepted) > 4 || answers[200]+answers[503] != 64 {
			t.Fatalf("round %d: 64 concurrent callbacks with max_in_flight = 4: answers %v, %d accepted; want at most 4 accepted, the rest 503", round, answers, len(accepted))
		}
		if len(accepted) == 0 {
			t.Fatalf("round %d: nothing accepted from idle: %v", round, answers)
		}
		waitSeen(t, app, accepted, 10*time.Second)
		next := make(chan struct{})
		close(*hold.Swap(&next))
		waitDelivered(t, app, accepted, 10*time.Second)
		in.waitMetric(t, "ringside_callbacks_in_delivery", 0, 10*time.Second)
	}
}

// ---------------------------------------------------------------------------
// Reload.

// A write to the config file and SIGHUP both reload; a bad config is refused
// with its diagnostics logged and the old config keeps routing; an
// unchanged notifier keeps its plugin process while a changed one gets a
// new one (and the old one ends); callbacks sent all along are all
// answered 200 and all delivered.
func TestE2EReload(t *testing.T) {
	keep, a1, a2 := startWebhook(t, fakes.WebhookOptions{}), startWebhook(t, fakes.WebhookOptions{}), startWebhook(t, fakes.WebhookOptions{})
	conf := func(appURL, ver, extra string) string {
		return serverBlock("2s", "info", "") + webhookNotifier("keep", keep.URL) +
			webhookNotifier("app", appURL, fmt.Sprintf("headers = { X-Ver = %q }", ver)) +
			routeTo("all", "", "keep", "app") + extra
	}
	dir := t.TempDir()
	path := writeConfigIn(t, dir, conf(a1.URL, "1", ""))
	in := startConfig(t, path)
	keepPid := in.waitPluginPid(t, "keep", 0, 5*time.Second)
	app1Pid := in.waitPluginPid(t, "app", 0, 5*time.Second)

	// Callbacks all along.
	var (
		mu      sync.Mutex
		sent    []string
		bad     []string
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			sid := sidN(0x4e100001, i)
			code, body, err := in.call(sid, "2809")
			mu.Lock()
			sent = append(sent, sid)
			if err != nil || code != 200 || !strings.Contains(body, `"status":"accepted"`) {
				bad = append(bad, fmt.Sprintf("%s: %d %s %v", sid, code, body, err))
			}
			mu.Unlock()
		}
	}()
	reloaded := func(n int, reason string) {
		t.Helper()
		in.waitLogs(t, n, 15*time.Second, "config reloaded ("+reason+")", func(l map[string]any) bool {
			return l["msg"] == "config reloaded" && l["reason"] == reason
		})
	}
	probe := func(tag uint32, want *fakes.Webhook, ver string) {
		t.Helper()
		sid := sidN(tag, 0)
		in.accept(t, sid, "2809")
		waitDelivered(t, want, []string{sid}, 10*time.Second)
		if got := want.Requests(sid)[0].Header.Get("X-Ver"); got != ver {
			t.Errorf("probe after reload: X-Ver %q; want %q", got, ver)
		}
	}
	time.Sleep(300 * time.Millisecond) // some traffic before the first reload

	// 1. A write to the file: app moves to a2.
	v2 := conf(a2.URL, "2", "")
	if err := os.WriteFile(path, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded(1, "file changed")
	probe(0x4e100002, a2, "2")
	app2Pid := in.waitPluginPid(t, "app", app1Pid, 5*time.Second)
	if p := in.pluginPid("keep"); p != keepPid {
		t.Errorf("keep: plugin pid %d → %d across a reload that did not change it", keepPid, p)
	}
	if alive := waitGone([]int{app1Pid}, 10*time.Second); len(alive) > 0 {
		t.Errorf("the replaced app plugin %d is still running", app1Pid)
	}

	// 2. SIGHUP alone: the file changes without the watcher seeing it (same
	// size, same modification time), so only the signal reloads it.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	v3 := conf(a2.URL, "3", "")
	if len(v3) != len(v2) {
		t.Fatal("v3 must have v2's size")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(v3), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	in.signal(t, syscall.SIGHUP)
	reloaded(1, "SIGHUP")
	probe(0x4e100003, a2, "3")
	if p := in.pluginPid("keep"); p != keepPid {
		t.Errorf("keep: plugin pid %d → %d across a SIGHUP reload", keepPid, p)
	}
	in.waitPluginPid(t, "app", app2Pid, 5*time.Second)

	// 3. A bad config, by file write and by SIGHUP: refused with its
	// diagnostics, and the previous config keeps serving.
	bad3 := conf(a1.URL, "4", `
route "broken" {
  notify = ["nope"]
}
`)
	if err := os.WriteFile(path, []byte(bad3), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := func(reason string) {
		t.Helper()
		l := in.waitLogs(t, 1, 15*time.Second, "config reload refused ("+reason+")", func(l map[string]any) bool {
			return l["msg"] == "config reload refused; the previous config keeps serving" && l["reason"] == reason
		})[0]
		diag := fmt.Sprint(l["diagnostics"])
		if !strings.Contains(diag, "config.hcl:") || !strings.Contains(diag, "nope") {
			t.Errorf("refused reload: diagnostics %q; want FILE:LINE:COL and the unknown notifier", diag)
		}
	}
	refused("file changed")
	in.signal(t, syscall.SIGHUP)
	refused("SIGHUP")
	probe(0x4e100004, a2, "3")
	if p := in.pluginPid("keep"); p != keepPid {
		t.Errorf("keep: plugin pid changed after a refused reload")
	}

	close(stop)
	<-stopped
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d of %d callbacks during the reloads not answered 200 accepted: %v", len(bad), len(sent), bad)
	}
	waitDelivered(t, keep, sent, 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var missing []string
		for _, sid := range sent {
			if a1.Delivered(sid)+a2.Delivered(sid) == 0 {
				missing = append(missing, sid)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d callbacks sent during the reloads never reached app (a1 or a2): %v", len(missing), len(sent), missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for series, want := range map[string]float64{
		`ringside_config_reloads_total{result="ok"}`:    2,
		`ringside_config_reloads_total{result="error"}`: 2,
	} {
		if got := in.metric(t, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
	t.Logf("%d callbacks during 4 reloads, all answered 200 and delivered", len(sent))
}

// ---------------------------------------------------------------------------
// Shutdown.

// SIGTERM with deliveries in flight: new callbacks are refused (503 or
// connection refused), /readyz turns 503, a delivery that ends inside
// shutdown_grace completes, one that does not stays in the journal (the
// next run delivers it), ringside exits 0 and leaves no plugin process.
func TestE2EShutdown(t *testing.T) {
	s1, s2 := sidN(0x5d000001, 1), sidN(0x5d000001, 2)
	release1 := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release1) })
	var second atomic.Bool // the next run answers at once
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		switch {
		case second.Load():
			return fakes.WebhookAnswer{Status: 200}
		case r.SID == s1:
			return fakes.WebhookAnswer{Hold: release1}
		case r.SID == s2:
			return fakes.WebhookAnswer{Hold: make(chan struct{})} // until the request ends
		}
		return fakes.WebhookAnswer{Status: 200}
	}})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("3s", "debug", "")+oneWebhook(app.URL, `timeout = "30s"`))
	in := startConfig(t, path)
	in.accept(t, s1, "2809")
	in.accept(t, s2, "2809")
	waitSeen(t, app, []string{s1, s2}, 10*time.Second)
	kids := children(in.pid())
	if len(kids) == 0 {
		t.Fatal("no plugin child found")
	}
	t.Cleanup(func() { reap(kids) })

	termAt := time.Now()
	in.signal(t, syscall.SIGTERM)
	in.waitLogs(t, 1, 5*time.Second, "shutting down", func(l map[string]any) bool { return l["msg"] == "shutting down" })
	in.waitReady(t, 503, 2*time.Second)
	for i := range 5 {
		t0 := time.Now()
		code, body, err := in.call(sidN(0x5d000002, i), "2809")
		if err == nil && code != 503 {
			t.Errorf("callback during shutdown: got %d %s; want 503 or a refused connection", code, body)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("callback during shutdown took %v", d)
		}
	}
	once.Do(func() { close(release1) })
	waitDelivered(t, app, []string{s1}, 3*time.Second)

	err, ok := in.waitExit(10 * time.Second)
	if !ok {
		t.Fatalf("ringside still running 10s after SIGTERM (grace 3s)\n%s", in.tail(40))
	}
	if err != nil {
		t.Errorf("exit after SIGTERM: %v; want 0\n%s", err, in.tail(40))
	}
	if d := time.Since(termAt); d > 6*time.Second {
		t.Errorf("exit %v after SIGTERM; grace is 3s", d)
	}
	if len(in.lines(callbackDone(s1))) != 1 {
		t.Errorf("no callback line for %s before exit: its delivery did not complete in the grace", s1)
	}
	if alive := waitGone(kids, 5*time.Second); len(alive) > 0 {
		t.Errorf("plugin processes %v left behind after exit", alive)
	}
	for _, sid := range []string{sidN(0x5d000002, 0)} {
		if n := len(app.Requests(sid)); n != 0 {
			t.Errorf("a callback refused during shutdown reached the app")
		}
	}

	// The unfinished one stays in the journal: the next run delivers it,
	// and only it.
	second.Store(true)
	in2 := startConfig(t, path)
	in2.waitLogs(t, 1, 10*time.Second, "resuming "+s2, func(l map[string]any) bool {
		return l["msg"] == "resuming journaled callback" && l["sid"] == s2
	})
	waitDelivered(t, app, []string{s2}, 10*time.Second)
	in2.waitMetric(t, "ringside_journal_entries", 0, 10*time.Second)
	if n := len(in2.lines(func(l map[string]any) bool { return l["msg"] == "resuming journaled callback" && l["sid"] == s1 })); n != 0 {
		t.Errorf("%s, delivered during the grace, was resumed", s1)
	}
	if n := app.Delivered(s1); n != 1 {
		t.Errorf("%s delivered %d times; want 1", s1, n)
	}
}

// A SIGKILLed ringside must not leave its plugin processes running: each
// crash would leak one process per notifier, still holding connections,
// while the next ringside starts its own.
func TestE2EJournalCrashLeavesNoPlugin(t *testing.T) {
	app := startWebhook(t, fakes.WebhookOptions{})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "info", "")+oneWebhook(app.URL))
	in := startConfig(t, path)
	in.waitPluginPid(t, "app", 0, 5*time.Second)
	kids := in.kill(t)
	if alive := waitGone(kids, 5*time.Second); len(alive) > 0 {
		t.Errorf("bug: plugin processes %v still run 5s after ringside was SIGKILLed (reparented to pid 1)", alive)
	}
}

// Reloading server.max_in_flight must either take effect or be reported as
// a restart-only setting; it must not be half applied in silence.
func TestE2EReloadMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(*fakes.WebhookRequest) fakes.WebhookAnswer { return fakes.WebhookAnswer{Hold: release} }})
	conf := func(max int) string {
		return serverBlock("2s", "info", fmt.Sprintf("  max_in_flight = %d", max)) + oneWebhook(app.URL, `timeout = "30s"`)
	}
	dir := t.TempDir()
	path := writeConfigIn(t, dir, conf(2))
	in := startConfig(t, path)
	in.accept(t, sidN(0x3a400001, 1), "2809")
	in.accept(t, sidN(0x3a400001, 2), "2809")
	if code, _, _ := in.call(sidN(0x3a400001, 3), "2809"); code != 503 {
		t.Fatalf("third callback with max_in_flight = 2: got %d; want 503", code)
	}
	writeConfigIn(t, dir, conf(50))
	in.signal(t, syscall.SIGHUP)
	in.waitLogs(t, 1, 10*time.Second, "config reloaded", func(l map[string]any) bool { return l["msg"] == "config reloaded" })
	warned := len(in.lines(func(l map[string]any) bool {
		return strings.Contains(fmt.Sprint(l["msg"]), "only after a restart") && strings.Contains(fmt.Sprint(l["settings"]), "max_in_flight")
	})) > 0
	code, body, err := in.call(sidN(0x3a400001, 4), "2809")
	if !warned && code != 200 {
		t.Errorf("bug: after reloading max_in_flight 2 → 50 a third callback got %d %s %v, and no warning said the setting needs a restart", code, body, err)
	}
}
