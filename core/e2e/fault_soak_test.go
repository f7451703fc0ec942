package e2e

// The soaks: a steady one (TestE2ESoak), faults at the app server and one
// plugin kill, and the fault soak.
//
// The fault soak: one ringside, a webhook notifier to a fake app server
// and an APNs notifier to a fake APNs (TLS, HTTP/2, provider token
// checked), its directory and journal on a small tmpfs, under a minute of
// mixed load — the LINE example, callbacks with every field at its largest,
// and a callee with 2,000 devices — while, on a schedule, the webhook
// plugin is SIGKILLed, the APNs plugin SIGSTOPped, the config reloaded to
// broken files and back, the disk filled and freed, and ringside itself
// SIGKILLed and started again on the same folder. Everything is counted at
// the fake peers: no delivery of a callback answered 200 while the journal
// was durable may be lost, and a device (or the app) may get a push twice
// only if that push was in flight at a kill.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// ---------------------------------------------------------------------------
// A counting fake APNs.

// soakAPNs is a fake APNs (TLS, HTTP/2, provider token and topic checked)
// that refuses a push whose payload is not one the test sent, answers the
// others 200 after a delay (pushes stay in flight a while), and counts the
// pushes per (device token, sid) with the time of the first answer.
type soakAPNs struct {
	*apnsPeer
	delay  time.Duration
	params map[string]bool // the cc_params a push may carry

	mu     sync.Mutex
	pushes map[string]*pushCount // token + "|" + sid
	bySID  map[string]int        // pushes answered 200, by sid
	total  int
	bad    []string // what was wrong with a push, first few
	badN   int
}

// pushCount is how many times a peer answered 2xx for one delivery, and
// when it first did.
type pushCount struct {
	n     int
	first time.Time
}

func startSoakAPNs(t *testing.T, delay time.Duration, params ...string) *soakAPNs {
	t.Helper()
	f := &soakAPNs{delay: delay, params: map[string]bool{}, pushes: map[string]*pushCount{}, bySID: map[string]int{}}
	for _, p := range params {
		f.params[p] = true
	}
	f.apnsPeer = startAPNs(t, fakes.APNsOptions{Topic: apnsTopic, Discard: true, Answer: f.answer})
	return f
}

func (f *soakAPNs) answer(push *fakes.Push) fakes.Answer {
	var p struct {
		SID     string `json:"sid"`
		CCParam string `json:"cc_param"`
	}
	var problem string
	switch {
	case push.Header.Get("apns-push-type") != "voip":
		problem = fmt.Sprintf("apns-push-type %q", push.Header.Get("apns-push-type"))
	case json.Unmarshal(push.Body, &p) != nil || p.SID == "":
		problem = fmt.Sprintf("body is not a payload with a sid (%d bytes)", len(push.Body))
	case !f.params[p.CCParam]:
		problem = fmt.Sprintf("sid %s: cc_param of %d bytes is not one the test sent", p.SID, len(p.CCParam))
	}
	if problem != "" {
		f.mu.Lock()
		f.badN++
		if len(f.bad) < 10 {
			f.bad = append(f.bad, problem)
		}
		f.mu.Unlock()
		return fakes.Answer{Status: 400, Reason: "BadMessageId"}
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total++
	f.bySID[p.SID]++
	c := f.pushes[push.Token+"|"+p.SID]
	if c == nil {
		c = &pushCount{first: time.Now()}
		f.pushes[push.Token+"|"+p.SID] = c
	}
	c.n++
	return fakes.Answer{}
}

// sidCount is the number of pushes of sid answered 200.
func (f *soakAPNs) sidCount(sid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bySID[sid]
}

// counts returns a copy of the per-(token, sid) counts.
func (f *soakAPNs) counts() map[string]pushCount {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]pushCount, len(f.pushes))
	for k, c := range f.pushes {
		out[k] = *c
	}
	return out
}

// ---------------------------------------------------------------------------
// Helpers.

// deviceToken is a 64-hex APNs device token for a user's k-th device.
func deviceToken(user string, k int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", user, k)))
	return hex.EncodeToString(h[:])
}

// idOf is an id of exactly n bytes (the largest max_id_bytes allows).
func idOf(prefix string, n int) string {
	return (prefix + strings.Repeat("0123456789abcdef", n/16+1))[:n]
}

// maxParam is a param at its largest: 4096 bytes of base64, with '+' and
// '/' in it (percent-encoded on the wire).
var maxParam = func() string {
	b := make([]byte, 3072)
	for i := range b {
		b[i] = byte(i*7 + i/256) // every byte value; base64 '+' and '/' among them
	}
	return base64.StdEncoding.EncodeToString(b)
}()

// soakMaxQuery is a callback with every field at its largest: 256-byte
// caller ids, param (4096 bytes of base64), app_svr_data and stid (4096
// bytes each) and an unknown key of 4 KB (kept as call.extra, journaled).
func soakMaxQuery(sid, toUser string) string {
	return maxQuery(sid, idOf("from-service-", 256), idOf("from-user-", 256), toUser, maxParam, "x_soak_extra", 4<<10)
}

type soakCall struct {
	sid, callee string
	kind        string // "line", "max", "crowd"
	sent, done  time.Time
	code        int
	accepted    bool
	err         error
}

// killEvent is one kill of a process the deliveries run through: pushes to
// the peers listed that were in flight at that moment may arrive twice.
type killEvent struct {
	what          string
	at            time.Time
	webhook, apns bool
}

// ---------------------------------------------------------------------------

// TestE2EFaultSoak: 60 s (RINGSIDE_FAULT_SOAK_DURATION, at least 20 s) of mixed
// load at RINGSIDE_FAULT_SOAK_RATE callbacks/s (default 150) with plugin
// SIGKILL and SIGSTOP, reloads to broken files and back, the journal's
// disk filling up and freeing, and a SIGKILL and restart of ringside. At
// the fake peers: 0 deliveries lost among the callbacks answered 200
// (those answered while the disk was full are counted apart, and must not
// be lost either: no crash falls in that window), and a delivery seen
// twice only if its callback was in flight at a kill that reaches that
// peer (sent before it, its deliveries there not all answered margin
// before it), at most once per such kill.
func TestE2EFaultSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("fault soak: skipped under -short (it runs RINGSIDE_FAULT_SOAK_DURATION, default 60s)")
	}
	duration := envDuration(t, "RINGSIDE_FAULT_SOAK_DURATION", 60*time.Second, 20*time.Second) // the faults need 20s
	rate := envInt(t, "RINGSIDE_FAULT_SOAK_RATE", 150)
	const (
		users      = 100             // callees with 1 or 2 devices
		crowdSize  = 2000            // the callee with many devices
		crowdEvery = 4 * time.Second // a callback to it this often
		margin     = time.Second     // a callback done this long before a kill counts as in flight at it
		// A device rings twice only when the crash falls between the
		// provider's acceptance and the journal's mark of it (at most
		// 50 ms): duplicates of pushes answered longer than lateLead
		// before a kill are counted apart (reported, not failed: see
		// "Faults and the fault suite" in docs/operations.md).
		lateLead = 100 * time.Millisecond
	)

	disk := tmpfsDisk(t, "64m") // the directory and journal; skips when it cannot mount
	dir := t.TempDir()          // the config, off the disk that fills
	// Both peers take a few milliseconds to answer, so that deliveries are
	// in flight when something is killed.
	apns := startSoakAPNs(t, 10*time.Millisecond, lineParam, maxParam)
	var (
		hookMu      sync.Mutex
		hookAnswers = map[string][]time.Time{} // sid → when the app answered it 200
	)
	app := startWebhook(t, fakes.WebhookOptions{Secret: hookSecret, NoBodies: true, Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		time.Sleep(30 * time.Millisecond)
		hookMu.Lock()
		hookAnswers[r.SID] = append(hookAnswers[r.SID], time.Now())
		hookMu.Unlock()
		return fakes.WebhookAnswer{Status: 200}
	}})

	// Callees and their devices.
	devices := map[string][]string{}
	var callees []string
	for i := range users {
		u := fmt.Sprintf("soak-%03d", i)
		callees = append(callees, u)
		for k := range 1 + i%2 {
			devices[u] = append(devices[u], deviceToken(u, k))
		}
	}
	maxCallee := idOf("max-callee-", 256)
	devices[maxCallee] = []string{deviceToken(maxCallee, 0), deviceToken(maxCallee, 1)}
	const crowd = "crowd"
	for k := range crowdSize {
		devices[crowd] = append(devices[crowd], deviceToken(crowd, k))
	}

	good := serverBlock("5s", "info", "") + "delivery {\n  journal = true\n}\n" +
		directoryAt(filepath.Join(disk, "data", "ringside.db")) +
		webhookNotifier("app", app.URL+"/hook", fmt.Sprintf("secret = %q", hookSecret)) +
		apnsNotifier(apns.keyFile, apns.URL, apnsTopic, `payload = {
    # APNs takes 5120 bytes: cc_param at its largest fits, app_svr_data too would not.
    app_svr_data = substr(call.app_svr_data, 0, 16)
  }`) + routeTo("all", "", "app", "ios")
	path := writeConfigIn(t, dir, good)
	env := apns.env()

	setup := time.Now()
	in := startConfig(t, path, env)
	var cur atomic.Pointer[instance]
	cur.Store(in)
	nDevices := in.putDevices(t, "apns", devices)
	appPid := in.waitPluginPid(t, "app", 0, 10*time.Second)
	iosPid := in.waitPluginPid(t, "ios", 0, 10*time.Second)
	t.Logf("setup: %d devices registered (%d callees with 1–2, one with a 256-byte id, %q with %d) in %v",
		nDevices, users, "crowd", crowdSize, time.Since(setup).Round(time.Millisecond))

	// ---- The load: an open-loop sender, handed to a pool of workers.
	var (
		mu      sync.Mutex
		calls   []*soakCall
		skipped int
	)
	jobs := make(chan *soakCall, rate)
	var workers sync.WaitGroup
	for range 64 {
		workers.Go(func() {
			for c := range jobs {
				q := query(c.sid, c.callee)
				if c.kind == "max" {
					q = soakMaxQuery(c.sid, c.callee)
				}
				c.sent = time.Now()
				resp, err := client.Get(cur.Load().notifyURL + "?" + q)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					c.code = resp.StatusCode
					c.accepted = c.code == 200 && strings.Contains(string(b), `"status":"accepted"`)
				}
				c.err = err
				c.done = time.Now()
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	since := func(at time.Time) string { return fmt.Sprintf("%6.2fs", at.Sub(start).Seconds()) }
	var crowdSID atomic.Value // the last crowd callback's sid
	crowdSID.Store("")
	// The load runs for duration, and on past the last fault (a slow box,
	// or the race detector, can make the faults overrun): stopAt is set
	// once they are done.
	var stopAt atomic.Int64
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		lastCrowd := time.Time{}
		for i := 0; ; i++ {
			now := <-tick.C
			if at := stopAt.Load(); at != 0 && now.UnixNano() >= at {
				break
			}
			c := &soakCall{sid: sidN(0xfa50a000, i), kind: "line", callee: callees[i%users]}
			switch {
			case now.Sub(lastCrowd) >= crowdEvery:
				c.kind, c.callee, lastCrowd = "crowd", crowd, now
				crowdSID.Store(c.sid)
			case i%10 == 7:
				c.kind, c.callee = "max", maxCallee
			}
			select {
			case jobs <- c:
			default:
				mu.Lock()
				skipped++
				mu.Unlock()
			}
		}
		close(jobs)
		workers.Wait()
	}()

	// ---- The faults, on a schedule.
	var kills []killEvent
	at := func(frac float64) {
		if d := time.Until(start.Add(time.Duration(frac * float64(duration)))); d > 0 {
			time.Sleep(d)
		}
	}
	logf := func(format string, args ...any) {
		t.Logf("%s  %s", since(time.Now()), fmt.Sprintf(format, args...))
	}
	var (
		fillAt, durableAt time.Time // the window in which callbacks are not durable
		iosHealthKills    float64
		writeErrors       float64
		reloadErrors      float64
		stoppedPid        int
	)

	// amidCrowd waits for the next callback to the crowd and then until
	// part (1/part) of its pushes reached the fake APNs, so that a kill
	// finds hundreds of pushes in flight; it gives up after crowdEvery+2s.
	amidCrowd := func(part int) string {
		prev := crowdSID.Load().(string)
		deadline := time.Now().Add(crowdEvery + 2*time.Second)
		for crowdSID.Load().(string) == prev && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		sid := crowdSID.Load().(string)
		for apns.sidCount(sid) < crowdSize/part && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return fmt.Sprintf("%d of the crowd's %d pushes of %s answered", apns.sidCount(sid), crowdSize, sid)
	}

	// killWebhookPlugin SIGKILLs the webhook plugin of in and waits for
	// the next.
	killWebhookPlugin := func(in *instance) {
		if err := syscall.Kill(appPid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill the webhook plugin %d: %v", appPid, err)
		}
		kills = append(kills, killEvent{what: "SIGKILL webhook plugin", at: time.Now(), webhook: true})
		logf("fault: SIGKILL the webhook plugin (pid %d)", appPid)
		appPid = in.waitPluginPid(t, "app", appPid, 10*time.Second)
		logf("       webhook plugin restarted (pid %d)", appPid)
	}

	// 1. SIGKILL the webhook plugin.
	at(0.10)
	killWebhookPlugin(in)

	// 2. SIGSTOP the APNs plugin: the supervisor kills it after its missed
	// health checks and starts another.
	at(0.20)
	crowdNote := amidCrowd(5)
	if err := syscall.Kill(iosPid, syscall.SIGSTOP); err != nil {
		t.Fatalf("stop the apns plugin %d: %v", iosPid, err)
	}
	stoppedPid = iosPid
	t.Cleanup(func() { reap([]int{stoppedPid}) })
	kills = append(kills, killEvent{what: "SIGSTOP apns plugin", at: time.Now(), apns: true})
	logf("fault: SIGSTOP the apns plugin (pid %d), %s", iosPid, crowdNote)
	iosPid = in.waitPluginPid(t, "ios", iosPid, 20*time.Second)
	if alive := waitGone([]int{stoppedPid}, 5*time.Second); len(alive) > 0 {
		t.Errorf("the stopped apns plugin %d still exists after it was replaced", stoppedPid)
	}
	iosHealthKills = in.metric(t, `ringside_plugin_kills_total{notifier="ios",reason="health"}`)
	logf("       apns plugin killed by the supervisor (kills{reason=health} %v) and replaced (pid %d)", iosHealthKills, iosPid)

	// 3. Reloads to broken files — cut half-way, then bytes that are not
	// UTF-8 — each refused while the old config keeps ringing; then back
	// to the good file.
	at(0.33)
	sighupRefused := func(l map[string]any) bool {
		return l["msg"] == "config reload refused; the previous config keeps serving" && l["reason"] == "SIGHUP"
	}
	for i, broken := range [][]byte{[]byte(good[:len(good)/2]), nonUTF8} {
		replaceFile(t, path, broken)
		if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		l := in.waitLogs(t, i+1, 15*time.Second, "config reload refused", sighupRefused)
		d := fmt.Sprint(l[i]["diagnostics"])
		logf("fault: reload to a broken file (%d bytes): refused: %.90s", len(broken), strings.ReplaceAll(d, "\n", " "))
		if i == 0 {
			time.Sleep(1500 * time.Millisecond) // the watcher sees the file too
		}
	}
	reloadedBefore := len(in.lines(func(l map[string]any) bool { return l["msg"] == "config reloaded" }))
	replaceFile(t, path, []byte(good))
	in.signal(t, syscall.SIGHUP)
	in.waitLogs(t, reloadedBefore+1, 15*time.Second, "config reloaded", func(l map[string]any) bool { return l["msg"] == "config reloaded" })
	reloadErrors = in.metric(t, `ringside_config_reloads_total{result="error"}`)
	logf("       back to the good file: reloaded (reloads{result=error} %v)", reloadErrors)
	if p := in.pluginPid("app"); p != appPid {
		t.Errorf("the webhook plugin changed (%d → %d) across reloads that ended on the same config", appPid, p)
	}

	// 4. The disk fills up under the directory and journal, then frees.
	at(0.50)
	filler := filepath.Join(disk, "filler")
	fillAt = time.Now()
	size := fill(t, filler)
	logf("fault: disk full (filler of %d KiB)", size>>10)
	in.waitReadyz(t, 10*time.Second, "503 naming the full disk", func(code int, body string) bool {
		return code == 503 && strings.Contains(body, "no space left on device")
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if writeErrors = in.metric(t, "ringside_journal_write_errors_total"); writeErrors > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ringside_journal_write_errors_total stayed 0 with the disk full")
		}
		time.Sleep(50 * time.Millisecond)
	}
	logf("       /readyz 503 (no space left on device), journal write errors %v", writeErrors)
	time.Sleep(3 * time.Second)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	logf("       disk freed")
	in.waitReadyz(t, 15*time.Second, "200 once the disk freed", func(code int, _ string) bool { return code == 200 })
	durableAt = time.Now()
	writeErrors = in.metric(t, "ringside_journal_write_errors_total")
	logf("       /readyz 200 again (%.2fs not durable; journal write errors %v)", durableAt.Sub(fillAt).Seconds(), writeErrors)

	// 5. SIGKILL ringside, and start it again on the same config: the
	// journal resumes what was accepted.
	at(0.70)
	crowdNote = amidCrowd(2)
	orphans := in.kill(t)
	kills = append(kills, killEvent{what: "SIGKILL ringside", at: time.Now(), webhook: true, apns: true})
	logf("fault: SIGKILL ringside (pid %d; plugins %v), %s", in.pid(), orphans, crowdNote)
	if alive := waitGone(orphans, 5*time.Second); len(alive) > 0 {
		t.Errorf("plugin processes %v outlived ringside's SIGKILL", alive)
	}
	time.Sleep(time.Second) // down: callbacks meanwhile get connection errors
	in2 := startConfig(t, path, env)
	cur.Store(in2)
	resumed := len(in2.lines(func(l map[string]any) bool { return l["msg"] == "resuming journaled callback" }))
	logf("       ringside restarted (pid %d), %d journaled callbacks resumed", in2.pid(), resumed)
	appPid = in2.waitPluginPid(t, "app", 0, 10*time.Second)

	// 6. SIGKILL the webhook plugin of the new ringside.
	at(0.85)
	killWebhookPlugin(in2)

	stopAt.Store(max(start.Add(duration).UnixNano(), time.Now().Add(2*time.Second).UnixNano()))
	<-loadDone
	loadEnd := time.Now()
	logf("load ended")

	// ---- Drain: nothing in delivery, nothing in the journal.
	drained := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if in2.metric(t, "ringside_callbacks_in_delivery") == 0 && in2.metric(t, "ringside_journal_entries") == 0 {
			drained = true
			break
		}
	}
	logf("drained: %v (in delivery %v, journal entries %v)", drained,
		in2.metric(t, "ringside_callbacks_in_delivery"), in2.metric(t, "ringside_journal_entries"))
	if !drained {
		t.Errorf("not drained 60s after the load ended")
	}
	time.Sleep(300 * time.Millisecond) // answers in flight at the fakes

	// ---- Count at the fake peers.
	mu.Lock()
	all := append([]*soakCall(nil), calls...)
	mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].sent.Before(all[j].sent) })
	bySID := map[string]*soakCall{}
	var (
		accepted, durable, notDurable, refused503, transport, other int
		kinds                                                       = map[string]int{}
		codes                                                       = map[string]int{}
		lat                                                         []time.Duration
	)
	for _, c := range all {
		bySID[c.sid] = c
		kinds[c.kind]++
		switch {
		case c.err != nil:
			transport++
			continue
		case c.accepted:
			accepted++
			lat = append(lat, c.done.Sub(c.sent))
			if c.done.Before(fillAt) || c.sent.After(durableAt) {
				durable++
			} else {
				notDurable++
			}
		case c.code == 503:
			refused503++
		default:
			other++
		}
		codes[strconv.Itoa(c.code)]++
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	isDurable := func(c *soakCall) bool { return c.done.Before(fillAt) || c.sent.After(durableAt) }

	// The deliveries each peer saw: webhook by sid (2xx answers), APNs by
	// (token, sid).
	hooks := map[string]pushCount{}
	hookMu.Lock()
	for sid, ts := range hookAnswers {
		hooks[sid] = pushCount{n: len(ts), first: ts[0]}
	}
	hookMu.Unlock()
	ids := map[string]map[string]bool{}
	for _, r := range app.Requests("") {
		if ids[r.SID] == nil {
			ids[r.SID] = map[string]bool{}
		}
		ids[r.SID][r.ID] = true
	}
	pushes := apns.counts()
	apns.mu.Lock()
	apnsTotal, apnsBadN, apnsBad := apns.total, apns.badN, append([]string(nil), apns.bad...)
	apns.mu.Unlock()
	if c := apns.Counts(); c.BadTokens+c.Malformed > 0 {
		apnsBadN += c.BadTokens + c.Malformed
		apnsBad = append(apnsBad, fmt.Sprintf("%d refused for their provider token, %d malformed", c.BadTokens, c.Malformed))
	}
	apnsAborted := apns.Counts().Aborted

	// When each callback's deliveries were all done at each peer: the
	// first 2xx of its webhook; the first 200 of its last device at APNs
	// (zero: some delivery never came).
	hookDone := func(c *soakCall) time.Time { return hooks[c.sid].first }
	pushDone := func(c *soakCall) time.Time {
		var last time.Time
		for _, tok := range devices[c.callee] {
			f := pushes[tok+"|"+c.sid].first
			if f.IsZero() {
				return time.Time{}
			}
			if f.After(last) {
				last = f
			}
		}
		return last
	}
	// reaches says whether kill k could make the peer see a delivery twice.
	reaches := func(k killEvent, webhook bool) bool { return (webhook && k.webhook) || (!webhook && k.apns) }
	// sidInFlight: the callback was sent before kill k and its deliveries
	// to the peer were not all done margin before it (what a peer answered
	// must reach ringside, and its journal, before the kill).
	sidInFlight := func(c *soakCall, done time.Time, k killEvent) bool {
		return c.sent.Before(k.at) && (done.IsZero() || !done.Before(k.at.Add(-margin)))
	}
	var (
		expHook, expPush, gotHook, gotPush    int
		lostDurable, lostNotDurable           []string
		dupHook, dupPush, allowed, unexpected int
		unexpectedEx                          []string
		ghosts, unanswered                    int
		ghostEx                               []string
		pendingAt                             = make([]int, len(kills))             // deliveries sent before the kill, first answered after it
		sidsAt                                = make([]map[string]bool, len(kills)) // callbacks in flight at the kill, or done less than margin before
		openAt                                = make([]map[string]bool, len(kills)) // callbacks not done at the kill
		dupsAt                                = make([]int, len(kills))             // duplicates, each put on the first kill it was in flight at
		leadAt                                = make([]time.Duration, len(kills))   // among those: longest time from the first answer to the kill
		lateAt                                = make([]int, len(kills))             // among those: first answered more than lateLead before the kill
	)
	for i := range sidsAt {
		sidsAt[i], openAt[i] = map[string]bool{}, map[string]bool{}
	}
	// check counts one expected delivery of c: cnt is what the peer saw,
	// done when all of c's deliveries to that peer were.
	check := func(c *soakCall, what string, cnt pushCount, done time.Time, webhook bool) {
		if cnt.n == 0 {
			if isDurable(c) {
				lostDurable = append(lostDurable, what)
			} else {
				lostNotDurable = append(lostNotDurable, what)
			}
			return
		}
		if webhook {
			gotHook++
		} else {
			gotPush++
		}
		eligible, firstKill := 0, -1
		for i, k := range kills {
			if !reaches(k, webhook) || !sidInFlight(c, done, k) {
				continue
			}
			sidsAt[i][c.sid] = true
			if done.IsZero() || !done.Before(k.at) {
				openAt[i][c.sid] = true
			}
			if !cnt.first.Before(k.at) {
				pendingAt[i]++
			}
			eligible++
			if firstKill < 0 {
				firstKill = i
			}
		}
		d := cnt.n - 1
		if d == 0 {
			return
		}
		if webhook {
			dupHook += d
		} else {
			dupPush += d
		}
		allowed += min(d, eligible)
		if firstKill >= 0 {
			dupsAt[firstKill] += d
			lead := kills[firstKill].at.Sub(cnt.first)
			leadAt[firstKill] = max(leadAt[firstKill], lead)
			if lead > lateLead {
				lateAt[firstKill] += d
			}
		}
		if d > eligible {
			unexpected += d - eligible
			if len(unexpectedEx) < 20 {
				unexpectedEx = append(unexpectedEx, fmt.Sprintf("%s ×%d (first answered at %s, all its deliveries there done at %s; callback sent %s, answered %s)",
					what, cnt.n, since(cnt.first), since(done), since(c.sent), since(c.done)))
			}
		}
	}
	for _, c := range all {
		if !c.accepted {
			continue
		}
		expHook++
		check(c, "webhook "+c.sid, hooks[c.sid], hookDone(c), true)
		pd := pushDone(c)
		for _, tok := range devices[c.callee] {
			expPush++
			check(c, fmt.Sprintf("apns %s → %s… (%s)", c.sid, tok[:8], c.kind), pushes[tok+"|"+c.sid], pd, false)
		}
		if len(ids[c.sid]) > 1 {
			t.Errorf("%s: %d different webhook-ids across its requests; want one", c.sid, len(ids[c.sid]))
		}
	}
	// Deliveries of callbacks not answered 200: only those whose answer
	// was lost (a transport error: ringside may have journaled them before
	// it died) may have rung.
	seen := map[string]bool{}
	for sid := range hooks {
		seen[sid] = true
	}
	for k := range pushes {
		_, sid, _ := strings.Cut(k, "|")
		seen[sid] = true
	}
	for sid := range seen {
		c := bySID[sid]
		switch {
		case c != nil && c.accepted:
		case c != nil && c.err != nil:
			unanswered++
		default:
			ghosts++
			if len(ghostEx) < 10 {
				ghostEx = append(ghostEx, sid)
			}
		}
	}

	// How long a crowd callback took to ring all its devices.
	var crowdTook []time.Duration
	for _, c := range all {
		if c.kind != "crowd" || !c.accepted {
			continue
		}
		var last time.Time
		for _, tok := range devices[crowd] {
			if f := pushes[tok+"|"+c.sid].first; f.After(last) {
				last = f
			}
		}
		crowdTook = append(crowdTook, last.Sub(c.sent))
	}
	sort.Slice(crowdTook, func(i, j int) bool { return crowdTook[i] < crowdTook[j] })

	// ---- The table.
	var b strings.Builder
	fmt.Fprintf(&b, "fault soak: %v at %d/s (load ran %v, whole test %v), %d devices\n", duration, rate,
		loadEnd.Sub(start).Round(time.Millisecond), time.Since(setup).Round(time.Second), nDevices)
	row := func(k string, v any) { fmt.Fprintf(&b, "  %-44s %v\n", k, v) }
	row("callbacks sent", fmt.Sprintf("%d (line %d, max-size %d, crowd of %d devices %d; ticks skipped %d)", len(all), kinds["line"], kinds["max"], crowdSize, kinds["crowd"], skipped))
	row("answered 200 accepted", accepted)
	row("  while durable", durable)
	row("  while the disk was full (not durable)", notDurable)
	row("refused 503", refused503)
	row("other answers", fmt.Sprintf("%d %v", other, codes))
	row("transport errors (ringside down)", transport)
	row("answer latency p50 / p99 / max", fmt.Sprintf("%v / %v / %v", pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1)))
	row("webhook deliveries expected / delivered", fmt.Sprintf("%d / %d (requests at the app %d)", expHook, gotHook, len(app.Requests(""))))
	row("apns pushes expected / delivered", fmt.Sprintf("%d / %d (pushes answered 200 %d, cut off by a kill %d, refused as malformed %d)", expPush, gotPush, apnsTotal, apnsAborted, apnsBadN))
	row("crowd callback → its last device rung p50 / max", fmt.Sprintf("%v / %v", pct(crowdTook, 0.5), pct(crowdTook, 1)))
	row("lost while durable", len(lostDurable))
	row("lost while not durable", len(lostNotDurable))
	row("duplicates webhook / apns", fmt.Sprintf("%d / %d (in flight at a kill %d, not %d)", dupHook, dupPush, allowed, unexpected))
	row("delivered, answer lost to the kill", unanswered)
	row("delivered, never accepted", ghosts)
	for i, k := range kills {
		row(fmt.Sprintf("kill %d at %s: %s", i+1, since(k.at), k.what), fmt.Sprintf("%d callbacks in flight (%d more done < %v before), %d deliveries unanswered; duplicates %d (first answered ≤ %v before; > %v before: %d)",
			len(openAt[i]), len(sidsAt[i])-len(openAt[i]), margin, pendingAt[i], dupsAt[i], leadAt[i].Round(time.Millisecond), lateLead, lateAt[i]))
	}
	row("apns plugin health kills", iosHealthKills)
	row("reloads refused", reloadErrors)
	row("disk full", fmt.Sprintf("%s–%s, journal write errors %v", since(fillAt), since(durableAt), writeErrors))
	row("resumed after the ringside kill", resumed)
	for _, s := range []string{
		`ringside_deliveries_total{notifier="app",outcome="delivered"}`,
		`ringside_deliveries_total{notifier="ios",outcome="delivered"}`,
		`ringside_deliveries_total{notifier="ios",outcome="permanent"}`,
		`ringside_deliveries_total{notifier="ios",outcome="expired"}`,
		`ringside_deliveries_total{notifier="app",outcome="expired"}`,
		`ringside_delivery_retries_total{notifier="ios"}`,
		`ringside_delivery_retries_total{notifier="app"}`,
	} {
		row("after restart "+strings.TrimPrefix(s, "ringside_"), in2.metric(t, s))
	}
	t.Log(b.String())

	// ---- The verdict.
	if len(lostDurable) > 0 {
		t.Errorf("%d deliveries of callbacks answered 200 while durable were lost: %v", len(lostDurable), lostDurable[:min(20, len(lostDurable))])
	}
	if len(lostNotDurable) > 0 {
		t.Errorf("%d deliveries of callbacks answered 200 while the disk was full were lost (no crash fell in that window; they ring without the disk): %v",
			len(lostNotDurable), lostNotDurable[:min(20, len(lostNotDurable))])
	}
	if unexpected > 0 {
		t.Errorf("%d duplicate deliveries not explained by a kill (in flight = callback sent before the kill and first answered less than %v before it): %v", unexpected, margin, unexpectedEx)
	}
	if ghosts > 0 {
		t.Errorf("%d sids delivered that were refused or never sent: %v", ghosts, ghostEx)
	}
	if apnsBadN > 0 {
		t.Errorf("%d pushes malformed at the fake APNs: %v", apnsBadN, apnsBad)
	}
	if other > 0 {
		t.Errorf("%d callbacks answered neither 200 accepted nor 503: %v", other, codes)
	}
	if accepted < len(all)*8/10 || durable == 0 || notDurable == 0 || transport == 0 {
		t.Errorf("the load did not exercise the faults: %d of %d accepted, %d while durable, %d while not, %d transport errors", accepted, len(all), durable, notDurable, transport)
	}
	if kinds["crowd"] < 5 || kinds["max"] == 0 {
		t.Errorf("too few crowd (%d) or max-size (%d) callbacks", kinds["crowd"], kinds["max"])
	}
	if iosHealthKills < 1 || reloadErrors < 2 {
		t.Errorf("faults not seen by ringside: apns health kills %v, refused reloads %v", iosHealthKills, reloadErrors)
	}
	if resumed == 0 {
		t.Logf("note: nothing was in the journal at the ringside kill")
	}
}

// ---------------------------------------------------------------------------
// The steady soak.

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
