package e2e

// Fault tests of the delivery path, against the real binary and its real
// plugin processes: the largest LINE-legal callbacks at a high rate, a
// plugin process that is stopped (alive, answering nothing), and the
// idempotency id across a ringside crash. Counted at the fake peer.

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// largestQuery is a callback with every LINE field at its largest: param
// (4096 bytes of base64), app_svr_data and stid (4096 bytes each) and an
// unknown key of 16 KB, kept for rules as call.extra.
func largestQuery(sid, toUser string) string {
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

// The largest legal callbacks, 256 at a time: every callback answered 200
// is delivered exactly once. Before, the plugin stream batched calls into
// messages over gRPC's 4 MiB limit, the stream ended, and every call on it
// was retried, including those the app server had received already.
func TestE2EFaultDeliveryLargestCallbacksAtRate(t *testing.T) {
	app := startWebhook(t, fakes.WebhookOptions{NoBodies: true, Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		time.Sleep(5 * time.Millisecond)
		return fakes.WebhookAnswer{Status: 200}
	}})
	dir := t.TempDir()
	// The app answers in 5 ms; a timeout far above that keeps a box
	// starved by other tests (CI runs packages side by side under -race)
	// from turning slowness into retries.
	path := writeConfigIn(t, dir, serverBlock("5s", "info", `  max_in_flight = 20000`)+directoryAt("ringside.db")+oneWebhook(app.URL+"/hook", `timeout = "30s"`, `payload = {
    extra = call.extra["x_later"]
    data  = call.app_svr_data
  }`))
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
				sid := sidN(0xfa000001, i)
				code, body, _ := in.get(largestQuery(sid, "2809"))
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
	waitDelivered(t, app, sids, 60*time.Second)
	in.waitMetric(t, "ringside_callbacks_in_delivery", 0, 30*time.Second)
	dups := 0
	for _, sid := range sids {
		if n := len(app.Requests(sid)); n != 1 {
			dups += n - 1
		}
	}
	t.Logf("%d callbacks accepted, %d refused (503), %d delivered, %d duplicate requests at the app", len(sids), refused.Load(), len(sids), dups)
	// A plugin the supervisor judged hung (its health checks unanswered
	// for 3 s on a starved box) is killed, and the deliveries it had in
	// flight are retried on the next process: at least once, by design.
	// Anything else that repeats a delivery is the bug this test guards.
	kills := in.metric(t, `ringside_plugin_kills_total{notifier="app",reason="health"}`) + in.metric(t, `ringside_plugin_kills_total{notifier="app",reason="hung"}`)
	if dups != 0 && kills == 0 {
		t.Errorf("%d duplicate deliveries; want 0 (nothing failed)\n%s", dups, grep(in.metrics(t), "ringside_"))
	}
	if kills > 0 {
		t.Logf("the supervisor killed the plugin %v times (a starved box); %d deliveries it had in flight were repeated", kills, dups)
		if dups > workers {
			t.Errorf("%d duplicate deliveries; at most the %d in flight when the plugin was killed may repeat", dups, workers)
		}
	}
}

// A plugin process that is stopped (SIGSTOP: alive, answering nothing)
// holds up no callback: each is answered at once, the supervisor kills the
// process after its missed health checks and starts another, and every
// callback answered 200 meanwhile is delivered, once, on the new process.
// Before, a callback's goroutine blocked in the stream's Send once the
// plugin stopped reading, memory grew, and the process was never replaced.
func TestE2EFaultDeliveryStoppedPlugin(t *testing.T) {
	app := startWebhook(t, fakes.WebhookOptions{})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("5s", "info", "")+directoryAt("ringside.db")+oneWebhook(app.URL+"/hook"))
	in := startConfig(t, path)
	in.accept(t, sidN(0xf5000000, 0), "2809")
	waitDelivered(t, app, []string{sidN(0xf5000000, 0)}, 10*time.Second)

	pid := in.pluginPid("app")
	if pid == 0 {
		t.Fatal("no plugin process for notifier app")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// kill returns before every thread of the process has stopped: a
	// thread on the other core could still take the next delivery, push
	// it and be stopped before answering, and the retry on the new process
	// would then deliver it twice, as for any plugin killed mid-push.
	eventually(t, 5*time.Second, "every thread of the plugin process stopped", func() bool {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil || len(tasks) == 0 {
			return false
		}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			s := string(b)
			i := strings.LastIndexByte(s, ')')
			if err != nil || i < 0 || i+2 >= len(s) || s[i+2] != 'T' {
				return false
			}
		}
		return true
	})

	// 3 s of callbacks at 200/s while it is stopped.
	var sids []string
	var slowest time.Duration
	for i := range 600 {
		sid := sidN(0xf5000001, i)
		start := time.Now()
		code, body, err := in.call(sid, "2809")
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
	newPid := in.waitPluginPid(t, "app", pid, 20*time.Second)
	waitDelivered(t, app, sids, 45*time.Second)
	if n := in.metric(t, `ringside_plugin_kills_total{notifier="app",reason="health"}`); n < 1 {
		t.Errorf("plugin kills (health): %v; want ≥ 1", n)
	}
	for _, sid := range sids {
		if n := app.Delivered(sid); n != 1 {
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
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		if r.N == 1 {
			return fakes.WebhookAnswer{Hold: hold}
		}
		return fakes.WebhookAnswer{Status: 200}
	}})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "info", "")+directoryAt("ringside.db")+oneWebhook(app.URL+"/hook", fmt.Sprintf("secret = %q", hookSecret)))
	in := startConfig(t, path)
	sid := sidN(0xf6000001, 0)
	in.accept(t, sid, "2809")
	waitSeen(t, app, []string{sid}, 10*time.Second)
	first := app.Requests(sid)[0].ID
	if first == "" {
		t.Fatal("no webhook-id on the first request")
	}
	in.crash(t)
	holdOnce.Do(func() { close(hold) })

	in2 := in.restart(t)
	waitDelivered(t, app, []string{sid}, 15*time.Second)
	reqs := app.Requests(sid)
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
	const n = 200
	slow := deviceToken("crowd", 0)
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	defer release()
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic, Answer: func(p *fakes.Push) fakes.Answer {
		if p.Token == slow {
			return fakes.Answer{Hold: hold}
		}
		return fakes.Answer{}
	}})
	// answered counts the pushes answered 200 per device token, and when
	// the first arrived.
	answered := func() (map[string]int, map[string]time.Time) {
		count, first := map[string]int{}, map[string]time.Time{}
		for _, p := range apns.Pushes() {
			if p.Status != 200 {
				continue
			}
			if count[p.Token]++; count[p.Token] == 1 {
				first[p.Token] = p.At
			}
		}
		return count, first
	}
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "debug", "")+directoryAt("ringside.db")+
		apnsNotifier(apns.keyFile, apns.URL, apnsTopic)+routeTo("all", "", "ios"))
	in := startConfig(t, path, apns.env())
	devs := map[string][]string{}
	for k := range n {
		devs["crowd"] = append(devs["crowd"], deviceToken("crowd", k))
	}
	in.putDevices(t, "apns", devs)
	sid := sidN(0x2e9e0001, 1)
	in.accept(t, sid, "crowd")
	sent := time.Now()
	eventually(t, 10*time.Second, fmt.Sprintf("%d devices answered", n-1), func() bool {
		count, _ := answered()
		return len(count) == n-1
	}, func() string { count, _ := answered(); return fmt.Sprintf("%d answered", len(count)) })
	allButOne := time.Now()
	t.Logf("%d of %d devices accepted by APNs %v after the callback; one held", n-1, n, allButOne.Sub(sent).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond)
	t.Logf("journal entries %v, in delivery %v, deliveries_total{ios,delivered} %v before the kill",
		in.metric(t, "ringside_journal_entries"), in.metric(t, "ringside_callbacks_in_delivery"),
		in.metric(t, `ringside_deliveries_total{notifier="ios",outcome="delivered"}`))
	killAt := time.Now()
	in.crash(t)
	release()
	in2 := in.restart(t)
	in2.waitMetric(t, "ringside_journal_entries", 0, 20*time.Second)
	count, first := answered()
	twice, latest := 0, time.Duration(0)
	var lead time.Duration = 1 << 62
	for tok, c := range count {
		// The held device's push may be let go as the kill lands, counted
		// here, and sent again after the restart: it was in flight.
		if c > 1 && tok != slow {
			twice++
			l := killAt.Sub(first[tok])
			latest, lead = max(latest, l), min(lead, l)
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

// startSpare starts ringside with notifier app (spare = true) and lean (no
// spare), both webhooks to their fakes, and waits for app's spare; it
// returns app's serving process and its spare.
func startSpare(t *testing.T) (in *instance, app, lean *fakes.Webhook, serving, spare int) {
	t.Helper()
	app = startWebhook(t, fakes.WebhookOptions{})
	lean = startWebhook(t, fakes.WebhookOptions{})
	path := writeConfigIn(t, t.TempDir(), serverBlock("5s", "info", "")+directoryAt("ringside.db")+
		webhookNotifier("app", app.URL+"/hook", "spare = true")+webhookNotifier("lean", lean.URL+"/hook")+
		routeTo("all", "", "app", "lean"))
	in = startConfig(t, path)
	in.waitLogs(t, 1, 15*time.Second, "app's spare ready", func(l map[string]any) bool {
		return l["msg"] == "plugin spare process ready" && l["notifier"] == "app"
	})
	eventually(t, 15*time.Second, "a serving process and a spare for app", func() bool { return len(in.pluginPids("app")) == 2 }, in.childrenDetail)
	serving = in.pluginPid("app")
	for _, p := range in.pluginPids("app") {
		if p != serving {
			spare = p
		}
	}
	return in, app, lean, serving, spare
}

// childrenDetail lists ringside's children, for a failure message.
func (in *instance) childrenDetail() string { return fmt.Sprintf("children %v", children(in.pid())) }

// waitNewSpare waits until app has a serving process and a spare, none of
// them one of not.
func (in *instance) waitNewSpare(t *testing.T, not ...int) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("a new spare for app, not one of %v", not), func() bool {
		ps := in.pluginPids("app")
		return len(ps) == 2 && !slices.Contains(not, ps[0]) && !slices.Contains(not, ps[1])
	}, in.childrenDetail)
}

// A notifier that says spare = true keeps a spare plugin process; one
// that does not has one plugin process. When the serving process is
// SIGKILLed, the spare takes over (counted as one restart, logged with
// spare=true), the next callback is delivered, and a new spare is started
// behind it.
func TestE2ESparePlugin(t *testing.T) {
	in, app, lean, serving, spare := startSpare(t)
	// A spare starts a second after its notifier's process: lean would
	// have one by now.
	time.Sleep(1500 * time.Millisecond)
	if got := in.pluginPids("lean"); len(got) != 1 {
		t.Fatalf("lean (no spare) has plugin processes %v; want one", got)
	}

	if err := syscall.Kill(serving, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sid := sidN(0x5a000000, 0)
	in.accept(t, sid, "2809")
	waitDelivered(t, app, []string{sid}, 10*time.Second)
	waitDelivered(t, lean, []string{sid}, 10*time.Second)
	in.waitLogs(t, 1, 10*time.Second, "the spare took over", func(l map[string]any) bool {
		return l["msg"] == "plugin process restarted" && l["notifier"] == "app" && l["spare"] == true
	})
	if in.pluginPid("app") != spare {
		t.Errorf("serving app: pid %d; want the spare, %d", in.pluginPid("app"), spare)
	}
	in.waitNewSpare(t, serving)
	if got := in.metric(t, `ringside_plugin_restarts_total{notifier="app"}`); got != 1 {
		t.Errorf("restarts of app: %v; want 1", got)
	}
	if got := in.pluginPids("lean"); len(got) != 1 {
		t.Errorf("lean has plugin processes %v; want one", got)
	}
}

// A spare that is stopped (SIGSTOP: alive, answering nothing) is killed
// and replaced after its missed health checks, so it never takes over:
// when the serving process is then SIGKILLed, the new spare serves the next
// callback, delivered once.
func TestE2EStoppedSparePlugin(t *testing.T) {
	in, app, _, serving, spare := startSpare(t)
	if err := syscall.Kill(spare, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(spare, syscall.SIGKILL) })
	in.waitLogs(t, 1, 15*time.Second, "the stopped spare killed", func(l map[string]any) bool {
		return l["msg"] == "plugin spare process not serving; killed to be replaced" && l["notifier"] == "app"
	})
	in.waitNewSpare(t, spare)
	in.waitLogs(t, 2, 15*time.Second, "app's new spare ready", func(l map[string]any) bool {
		return l["msg"] == "plugin spare process ready" && l["notifier"] == "app"
	})
	if p := in.pluginPid("app"); p != serving {
		t.Fatalf("serving app: pid %d; want %d, untouched by its spare's replacement", p, serving)
	}

	if err := syscall.Kill(serving, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sid := sidN(0x5a000001, 0)
	in.accept(t, sid, "2809")
	waitDelivered(t, app, []string{sid}, 10*time.Second)
	in.waitLogs(t, 1, 10*time.Second, "the new spare took over", func(l map[string]any) bool {
		return l["msg"] == "plugin process restarted" && l["notifier"] == "app" && l["spare"] == true
	})
	quiet(t, app, 1, 500*time.Millisecond)
}
