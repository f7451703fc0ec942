package main

// Fault tests of the delivery path, against the real binary and its real
// plugin processes: the largest LINE-legal callbacks at a high rate, a
// plugin process that is stopped (alive, answering nothing), and the
// idempotency id across a ringside crash. Counted at the fake peer.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ftMaxQuery is a callback with every LINE field at its largest: param
// (4096 bytes of base64), app_svr_data and stid (4096 bytes each) and an
// unknown key of 16 KB, kept for rules as call.extra.
func ftMaxQuery(sid, toUser string) string {
	param := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("p", 3072)))
	return maxQuery(sid, "linecorp.com", "9286", toUser, param, "x_later", 16<<10)
}

// maxQuery is a video callback with the given ids and param, app_svr_data
// and stid of 4096 bytes each, and an unknown key of extraBytes.
func maxQuery(sid, fromService, fromUser, toUser, param, extraKey string, extraBytes int) string {
	v := url.Values{}
	v.Set("sid", sid)
	v.Set("from_service_id", fromService)
	v.Set("from_user_id", fromUser)
	v.Set("to_service_id", "linecorp.com")
	v.Set("to_user_id", toUser)
	v.Set("type", "V")
	v.Set("param", param)
	v.Set("app_svr_data", strings.Repeat("a", 4096))
	v.Set("stid", strings.Repeat("s", 4096))
	v.Set(extraKey, strings.Repeat("x", extraBytes))
	return v.Encode()
}

// ftGet sends a callback query and returns the code (0 on a transport error).
func ftGet(notifyURL, query string) (int, string) {
	resp, err := dlClient.Get(notifyURL + "?" + query)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The largest legal callbacks, 256 at a time: every callback answered 200
// is delivered exactly once. Before, the plugin stream batched calls into
// messages over gRPC's 4 MiB limit, the stream ended, and every call on it
// was retried, including those the app server had received already.
func TestE2EFaultDeliveryLargestCallbacksAtRate(t *testing.T) {
	app := newFakeApp(t, func(r *appReq) appAnswer {
		time.Sleep(5 * time.Millisecond)
		return appAnswer{Code: 200}
	})
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("5s", "info", `  max_in_flight = 20000`)+fmt.Sprintf(`
directory "embedded" {
  path = "ringside.db"
}
notifier "app" {
  plugin  = "webhook"
  url     = %q
  payload = {
    extra = call.extra["x_later"]
    data  = call.app_svr_data
  }
}
route "all" {
  notify = ["app"]
}
`, app.URL+"/hook"))
	in := startConfig(t, path)

	const total, workers = 3000, 256
	var accepted sync.Map
	var next, refused atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				sid := dlSID(0xfa000001, i)
				code, body := ftGet(in.notifyURL, ftMaxQuery(sid, "2809"))
				if code == 200 && strings.Contains(body, `"status":"accepted"`) {
					accepted.Store(sid, true)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	var sids []string
	accepted.Range(func(k, _ any) bool { sids = append(sids, k.(string)); return true })
	if len(sids) < total/2 {
		t.Fatalf("%d of %d callbacks accepted (%d refused); the load must be accepted to mean anything", len(sids), total, refused.Load())
	}
	app.waitDelivered(t, sids, 60*time.Second)
	dlWaitMetric(t, in, "ringside_callbacks_in_delivery", 0, 30*time.Second)
	dups := 0
	for _, sid := range sids {
		if n := len(app.requests(sid)); n != 1 {
			dups += n - 1
		}
	}
	t.Logf("%d callbacks accepted, %d refused (503), %d delivered, %d duplicate requests at the app", len(sids), refused.Load(), len(sids), dups)
	if dups != 0 {
		t.Errorf("%d duplicate deliveries; want 0 (nothing failed)", dups)
	}
}

// A plugin process that is stopped (SIGSTOP: alive, answering nothing)
// holds up no callback: each is answered at once, the supervisor kills the
// process after its missed health checks and starts another, and every
// callback answered 200 meanwhile is delivered, once, on the new process.
// Before, a callback's goroutine blocked in the stream's Send once the
// plugin stopped reading, memory grew, and the process was never replaced.
func TestE2EFaultDeliveryStoppedPlugin(t *testing.T) {
	app := newFakeApp(t, nil)
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("5s", "info", "")+fmt.Sprintf(`
directory "embedded" {
  path = "ringside.db"
}
notifier "app" {
  plugin = "webhook"
  url    = %q
}
route "all" {
  notify = ["app"]
}
`, app.URL+"/hook"))
	in := startConfig(t, path)
	dlAccept(t, in, dlSID(0xf5000000, 0), "2809")
	app.waitDelivered(t, []string{dlSID(0xf5000000, 0)}, 10*time.Second)

	pid := dlPluginPid(in, "app")
	if pid == 0 {
		t.Fatal("no plugin process for notifier app")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	// 3 s of callbacks at 200/s while it is stopped.
	var sids []string
	var slowest time.Duration
	for i := range 600 {
		sid := dlSID(0xf5000001, i)
		start := time.Now()
		code, body, err := dlCall(in.notifyURL, sid, "2809")
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		if err != nil || code != 200 || !strings.Contains(body, `"status":"accepted"`) {
			t.Fatalf("callback %d while the plugin is stopped: %d %s %v", i, code, body, err)
		}
		sids = append(sids, sid)
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("600 callbacks answered while the plugin was stopped; slowest answer %v", slowest)
	newPid := dlWaitPluginPid(t, in, "app", pid, 20*time.Second)
	app.waitDelivered(t, sids, 45*time.Second)
	if n := dlMetric(t, in, `ringside_plugin_kills_total{notifier="app",reason="health"}`); n < 1 {
		t.Errorf("plugin kills (health): %v; want ≥ 1", n)
	}
	for _, sid := range sids {
		if n := app.delivered(sid); n != 1 {
			t.Errorf("%s delivered %d times; want 1", sid, n)
		}
	}
	t.Logf("plugin %d stopped, replaced by %d", pid, newPid)
}

// The webhook-id of a delivery is the same after ringside crashed and
// resumed it from the journal, so a receiver deduplicating on it (as
// Standard Webhooks says to) drops the second. Before, the resumed delivery
// got a new id.
func TestE2EFaultDeliveryWebhookIDSurvivesCrash(t *testing.T) {
	hold := make(chan struct{})
	var holdOnce sync.Once
	defer holdOnce.Do(func() { close(hold) })
	app := newFakeApp(t, func(r *appReq) appAnswer {
		if r.N == 1 {
			return appAnswer{Hold: hold}
		}
		return appAnswer{Code: 200}
	})
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("2s", "info", "")+fmt.Sprintf(`
directory "embedded" {
  path = "ringside.db"
}
notifier "app" {
  plugin = "webhook"
  url    = %q
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
route "all" {
  notify = ["app"]
}
`, app.URL+"/hook"))
	in := startConfig(t, path)
	sid := dlSID(0xf6000001, 0)
	dlAccept(t, in, sid, "2809")
	app.waitSeen(t, []string{sid}, 10*time.Second)
	first := app.requests(sid)[0].ID
	if first == "" {
		t.Fatal("no webhook-id on the first request")
	}
	orphans := dlKill9(t, in)
	dlReap(dlWaitGone(orphans, 3*time.Second))
	holdOnce.Do(func() { close(hold) })

	in2 := startConfig(t, path)
	app.waitDelivered(t, []string{sid}, 15*time.Second)
	reqs := app.requests(sid)
	if len(reqs) < 2 {
		t.Fatalf("%d requests; want the resumed one too", len(reqs))
	}
	for _, r := range reqs[1:] {
		if r.ID != first {
			t.Errorf("resumed delivery's webhook-id %q; want the first's %q", r.ID, first)
		}
	}
	in2.stop()
}

// A callee with 200 devices, one of whose pushes the fake APNs holds: the
// 199 others are accepted at once. Ringside is SIGKILLed 1.5 s later and
// restarted: none of the 199 rings again, because each device the plugin
// reported delivered was marked in the journal then (within 50 ms), not
// when the whole call ended. Before, no mark was written until every
// device had answered, and all 199 rang twice.
func TestE2EFaultDeliveryCrowdMarks(t *testing.T) {
	dir := t.TempDir()
	keyFile, pub := apnsKey(t, dir)
	const n = 200
	slow := fsToken("crowd", 0)
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	defer release()
	var mu sync.Mutex
	count := map[string]int{}
	first := map[string]time.Time{}
	url, ca := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		var p struct{ SID string }
		_ = json.Unmarshal(body, &p)
		tok := strings.TrimPrefix(r.URL.Path, "/3/device/")
		if tok == slow {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		mu.Lock()
		count[tok]++
		if count[tok] == 1 {
			first[tok] = time.Now()
		}
		mu.Unlock()
		w.WriteHeader(200)
	}))
	_ = pub
	path := dlWriteConfig(t, dir, dlServer("2s", "debug", "")+fmt.Sprintf(`
directory "embedded" {
  path = "ringside.db"
}
notifier "ios" {
  plugin   = "apns"
  team_id  = %q
  key_id   = %q
  key_file = %q
  topic    = %q
  endpoint = %q
}
route "all" {
  notify = ["ios"]
}
`, apnsTeamID, apnsKeyID, keyFile, apnsTopic, url))
	env := "SSL_CERT_FILE=" + ca
	in := startConfig(t, path, env)
	devs := map[string][]string{}
	for k := range n {
		devs["crowd"] = append(devs["crowd"], fsToken("crowd", k))
	}
	fsPut(t, in, devs)
	sid := dlSID(0x2e9e0001, 1)
	dlAccept(t, in, sid, "crowd")
	sent := time.Now()
	for {
		mu.Lock()
		got := len(count)
		mu.Unlock()
		if got == n-1 {
			break
		}
		if time.Since(sent) > 10*time.Second {
			t.Fatalf("only %d answered", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	allButOne := time.Now()
	t.Logf("%d of %d devices accepted by APNs %v after the callback; one held", n-1, n, allButOne.Sub(sent).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond)
	t.Logf("journal entries %v, in delivery %v, deliveries_total{ios,delivered} %v before the kill",
		dlMetric(t, in, "ringside_journal_entries"), dlMetric(t, in, "ringside_callbacks_in_delivery"),
		dlMetric(t, in, `ringside_deliveries_total{notifier="ios",outcome="delivered"}`))
	killAt := time.Now()
	orphans := dlKill9(t, in)
	dlReap(dlWaitGone(orphans, 3*time.Second))
	release()
	in2 := startConfig(t, path, env)
	dlWaitMetric(t, in2, "ringside_journal_entries", 0, 20*time.Second)
	mu.Lock()
	defer mu.Unlock()
	twice, latest := 0, time.Duration(0)
	for tok, c := range count {
		// The held device's push may be let go as the kill lands, counted
		// here, and sent again after the restart: it was in flight.
		if c > 1 && tok != slow {
			twice++
			if l := killAt.Sub(first[tok]); l > latest {
				latest = l
			}
		}
	}
	var lead time.Duration = 1 << 62
	for tok, c := range count {
		if c > 1 && tok != slow {
			if l := killAt.Sub(first[tok]); l < lead {
				lead = l
			}
		}
	}
	t.Logf("after the restart: %d of the %d devices accepted %v before the kill rang twice; the held device %d time(s)",
		twice, n-1, killAt.Sub(allButOne).Round(time.Millisecond), count[slow])
	if twice != 0 {
		t.Errorf("%d devices a provider accepted ≥ %v before the crash rang again (first accepted %v–%v before it); want 0: their marks reach the journal within 50 ms", twice, killAt.Sub(allButOne).Round(time.Millisecond), lead.Round(time.Millisecond), latest.Round(time.Millisecond))
	}
	if count[slow] < 1 {
		t.Errorf("the held device was never delivered")
	}
}
