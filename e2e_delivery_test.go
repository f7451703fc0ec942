package main

// End-to-end tests of the delivery guarantees (SPEC §6, issue 6) through the
// real binary: dedup, host-owned retries, fallback after delivery, plugin
// crashes, the journal across a SIGKILL, backpressure, reloads and
// shutdown. Every count is taken at the fake peers or from /metrics, and
// every wait is a poll with a deadline.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
)

// ---------------------------------------------------------------------------
// Helpers shared with e2e_soak_test.go.

// dlServer is a server and log block for the tests that write their whole
// config: kernel-chosen ports, JSON logs at level, shutdown_grace grace and
// any extra server attributes.
func dlServer(grace, level, extra string) string {
	return fmt.Sprintf(`
server {
  listen         = "127.0.0.1:0"
  admin_listen   = "127.0.0.1:0"
  shutdown_grace = %q
%s
}
log {
  format = "json"
  level  = %q
}
`, grace, extra, level)
}

// dlWriteConfig writes text as dir/config.hcl and returns its path.
func dlWriteConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dlWaitExit waits for the process to exit and returns its error (nil: 0).
func dlWaitExit(t *testing.T, in *instance, timeout time.Duration) (error, bool) {
	t.Helper()
	select {
	case err := <-in.done:
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// dlKill9 SIGKILLs ringside and waits for it. Its plugin children are
// orphaned: they are returned, and killed at the end of the test if they
// are still there.
func dlKill9(t *testing.T, in *instance) []int {
	t.Helper()
	kids := dlChildren(in.cmd.Process.Pid)
	if err := in.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, ok := dlWaitExit(t, in, 10*time.Second); !ok {
		t.Fatal("ringside did not die after SIGKILL")
	}
	t.Cleanup(func() { dlReap(kids) })
	return kids
}

// dlReap SIGKILLs the pids that are still ours (a plugin of this test's
// binaries), so no orphan outlives the test.
func dlReap(pids []int) {
	for _, pid := range pids {
		if dlAlive(pid) && dlOurs(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// dlOurs reports whether pid runs one of the binaries the tests built.
func dlOurs(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(b), "\x00")
	return argv0 == ringsideBin || argv0 == consoleBin || strings.HasSuffix(argv0, "console-plugin")
}

// dlStat returns the state and parent pid of pid from /proc/pid/stat.
func dlStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0][0], ppid, err == nil
}

// dlAlive reports whether pid exists and is not a zombie.
func dlAlive(pid int) bool {
	st, _, ok := dlStat(pid)
	return ok && st != 'Z'
}

// dlChildren lists the live child processes of pid.
func dlChildren(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ppid, ok := dlStat(p); ok && ppid == pid && st != 'Z' {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// dlPluginPid returns the pid of the plugin child of ringside that serves
// notifier (ringside names it in OTEL_RESOURCE_ATTRIBUTES), or 0.
func dlPluginPid(in *instance, notifier string) int {
	for _, pid := range dlChildren(in.cmd.Process.Pid) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "OTEL_RESOURCE_ATTRIBUTES="); ok {
				for _, attr := range strings.Split(v, ",") {
					if attr == "ringside.notifier="+notifier {
						return pid
					}
				}
			}
		}
	}
	return 0
}

// dlWaitPluginPid waits for a plugin child of notifier whose pid is not
// not, and returns it.
func dlWaitPluginPid(t *testing.T, in *instance, notifier string, not int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if pid := dlPluginPid(in, notifier); pid != 0 && pid != not {
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no plugin process for notifier %q (other than %d) within %v; children %v", notifier, not, timeout, dlChildren(in.cmd.Process.Pid))
	return 0
}

// dlWaitGone waits until none of pids is alive.
func dlWaitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, p := range pids {
			if dlAlive(p) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dlSID is a distinct valid sid (8-4-4-4-12 hex) for a test tag and index.
func dlSID(tag uint32, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", tag, i)
}

// dlQuery is the LINE example with another sid and callee user.
func dlQuery(sid, toUser string) string {
	q := strings.Replace(lineExample, "sid=151ad995-749c-4a28-893f-636700469db1", "sid="+sid, 1)
	return strings.Replace(q, "to_user_id=2809", "to_user_id="+url.QueryEscape(toUser), 1)
}

var dlClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second},
}

// dlCall sends one callback and returns the status code and body; err is a
// transport error (e.g. connection refused).
func dlCall(notifyURL, sid, toUser string) (int, string, error) {
	resp, err := dlClient.Get(notifyURL + "?" + dlQuery(sid, toUser))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// dlAccept sends a callback that must be answered 200 accepted.
func dlAccept(t *testing.T, in *instance, sid, toUser string) {
	t.Helper()
	code, body, err := dlCall(in.notifyURL, sid, toUser)
	if err != nil || code != 200 || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("callback %s → %s: got %d %s %v; want 200 accepted", sid, toUser, code, body, err)
	}
}

// dlMetric returns the value of one series of the admin /metrics, e.g.
// `ringside_deliveries_total{notifier="app",outcome="delivered"}`; 0 when
// absent.
func dlMetric(t *testing.T, in *instance, series string) float64 {
	t.Helper()
	resp, err := dlClient.Get(in.adminURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return f
		}
	}
	return 0
}

// dlWaitMetric polls /metrics until series equals want.
func dlWaitMetric(t *testing.T, in *instance, series string, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got float64
	for time.Now().Before(deadline) {
		if got = dlMetric(t, in, series); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("metric %s = %v after %v; want %v", series, got, timeout, want)
}

// dlLogs returns the JSON log lines matching ok.
func dlLogs(in *instance, ok func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, l := range in.logs.JSONLines() {
		if ok(l) {
			out = append(out, l)
		}
	}
	return out
}

// dlWaitLogs waits until n log lines match ok.
func dlWaitLogs(t *testing.T, in *instance, n int, timeout time.Duration, what string, ok func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := dlLogs(in, ok)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d log lines %s within %v; want %d\nlogs:\n%s", len(got), what, timeout, n, dlTail(in.logs.String(), 80))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dlTail returns the last n lines of s.
func dlTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// callbackDone matches the "callback" log line of sid once its deliveries
// ended.
func callbackDone(sid string) func(map[string]any) bool {
	return func(l map[string]any) bool {
		return l["msg"] == "callback" && l["sid"] == sid && l["status"] == "accepted" && l["notifiers"] != nil
	}
}

// ---------------------------------------------------------------------------
// A scriptable fake app server for the webhook plugin.

// appReq is one webhook request the fake received.
type appReq struct {
	SID, ToUser, ID, Path string
	Header                http.Header
	At                    time.Time
	N                     int // this request's rank among the sid's requests, from 1
	Code                  int // what was answered; 0: the request ended first
}

// appAnswer is the fake's answer to one request.
type appAnswer struct {
	Code       int
	RetryAfter string
	// Hold, when set, delays the answer until it is closed or the request
	// ends (the plugin process died or gave up).
	Hold <-chan struct{}
}

type fakeApp struct {
	URL    string
	mu     sync.Mutex
	reqs   []*appReq
	bySID  map[string][]*appReq
	script atomic.Pointer[func(r *appReq) appAnswer]
}

// newFakeApp serves webhooks, answering each with script (nil: 200).
func newFakeApp(t *testing.T, script func(r *appReq) appAnswer) *fakeApp {
	t.Helper()
	f := &fakeApp{bySID: map[string][]*appReq{}}
	f.setScript(script)
	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	f.URL = "http://" + ln.Addr().String()
	return f
}

func (f *fakeApp) setScript(s func(r *appReq) appAnswer) {
	if s == nil {
		s = func(*appReq) appAnswer { return appAnswer{Code: 200} }
	}
	f.script.Store(&s)
}

func (f *fakeApp) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body struct {
		SID      string `json:"sid"`
		ToUserID string `json:"to_user_id"`
	}
	_ = json.Unmarshal(b, &body)
	req := &appReq{SID: body.SID, ToUser: body.ToUserID, ID: r.Header.Get("webhook-id"), Path: r.URL.Path, Header: r.Header.Clone(), At: time.Now()}
	f.mu.Lock()
	req.N = len(f.bySID[req.SID]) + 1
	f.reqs = append(f.reqs, req)
	f.bySID[req.SID] = append(f.bySID[req.SID], req)
	f.mu.Unlock()
	a := (*f.script.Load())(req)
	if a.Hold != nil {
		select {
		case <-a.Hold:
		case <-r.Context().Done():
			return
		}
	}
	if a.Code == 0 {
		a.Code = 200
	}
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	w.WriteHeader(a.Code)
	f.mu.Lock()
	req.Code = a.Code
	f.mu.Unlock()
}

// requests returns a copy of the requests for sid ("" → all).
func (f *fakeApp) requests(sid string) []appReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	src := f.reqs
	if sid != "" {
		src = f.bySID[sid]
	}
	out := make([]appReq, len(src))
	for i, r := range src {
		out[i] = *r
	}
	return out
}

// delivered counts the 2xx answers the fake gave for sid.
func (f *fakeApp) delivered(sid string) int {
	n := 0
	for _, r := range f.requests(sid) {
		if r.Code >= 200 && r.Code < 300 {
			n++
		}
	}
	return n
}

// waitFor polls until cond holds for every sid.
func (f *fakeApp) waitFor(t *testing.T, sids []string, timeout time.Duration, what string, cond func(reqs []appReq) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var missing []string
		for _, sid := range sids {
			if !cond(f.requests(sid)) {
				missing = append(missing, sid)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sids not %s at the fake within %v: %v", len(missing), len(sids), what, timeout, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDelivered waits until every sid got a 2xx answer.
func (f *fakeApp) waitDelivered(t *testing.T, sids []string, timeout time.Duration) {
	t.Helper()
	f.waitFor(t, sids, timeout, "delivered", func(reqs []appReq) bool {
		for _, r := range reqs {
			if r.Code >= 200 && r.Code < 300 {
				return true
			}
		}
		return false
	})
}

// waitSeen waits until every sid reached the fake at least once.
func (f *fakeApp) waitSeen(t *testing.T, sids []string, timeout time.Duration) {
	t.Helper()
	f.waitFor(t, sids, timeout, "seen", func(reqs []appReq) bool { return len(reqs) > 0 })
}

// ---------------------------------------------------------------------------
// Dedup.

// A repeated (sid, to_service_id, to_user_id) inside dedup_window is a
// duplicate and rings nothing; another callee of the same sid is not; a
// rejected callback is not recorded; after the window the key is new again;
// within a callback each device (kind, token) rings once even when two
// notifiers deliver that kind.
func TestE2EDedup(t *testing.T) {
	app := newFakeApp(t, nil)
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("2s", "debug", "")+fmt.Sprintf(`
delivery {
  dedup_window = "3s"
}
plugin "console" {
  command = [%q]
}
notifier "app" {
  plugin = "webhook"
  url    = %q
}
notifier "desk1" {
  plugin = "console"
  prefix = "one"
}
notifier "desk2" {
  plugin = "console"
  prefix = "two"
}
route "all" {
  notify = ["app", "desk1", "desk2"]
}
`, consoleBin, app.URL))
	in := startConfig(t, path)
	tokens := []string{"aaaaaa-console-token", "bbbbbb-console-token"}
	for _, tok := range tokens {
		if code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/2809/console/"+tok, nil); code != 204 {
			t.Fatalf("PUT device: %d %s", code, body)
		}
	}

	a, b := dlSID(0xdedd0001, 1), dlSID(0xdedd0001, 2)
	start := time.Now()
	dlAccept(t, in, a, "2809")
	code, body, err := dlCall(in.notifyURL, a, "2809")
	if err != nil || code != 200 || !strings.Contains(body, `"status":"duplicate"`) {
		t.Fatalf("repeat inside the window: got %d %s %v; want 200 duplicate", code, body, err)
	}
	dlAccept(t, in, a, "7777") // another callee: another key
	if time.Since(start) >= 3*time.Second {
		t.Fatal("the callbacks took longer than the dedup window; the test proves nothing")
	}
	// A rejected callback (no from_user_id) is not recorded.
	q := strings.Replace(dlQuery(b, "2809"), "from_user_id=9286&", "", 1)
	if code, _, body := do(t, "GET", in.notifyURL+"?"+q, nil); code != 400 {
		t.Fatalf("invalid callback: got %d %s; want 400", code, body)
	}
	dlAccept(t, in, b, "2809")

	dlWaitLogs(t, in, 2, 10*time.Second, "ending "+a, callbackDone(a))
	dlWaitLogs(t, in, 1, 10*time.Second, "ending "+b, callbackDone(b))
	reqs := app.requests(a)
	users := map[string]int{}
	for _, r := range reqs {
		users[r.ToUser]++
	}
	if len(reqs) != 2 || users["2809"] != 1 || users["7777"] != 1 {
		t.Errorf("webhooks for %s: %d, by callee %v; want one per callee", a, len(reqs), users)
	}
	if n := dlMetric(t, in, "ringside_dedup_hits_total"); n != 1 {
		t.Errorf("ringside_dedup_hits_total = %v; want 1", n)
	}

	// Each console device rang once for a's callback to 2809, though both
	// desk notifiers deliver the console kind.
	rings := dlLogs(in, func(l map[string]any) bool {
		return l["sid"] == a && l["device"] != nil && (l["notifier"] == "desk1" || l["notifier"] == "desk2") && strings.Contains(fmt.Sprint(l["msg"]), "call for")
	})
	byDevice := map[string]int{}
	for _, l := range rings {
		byDevice[fmt.Sprint(l["device"])]++
	}
	if len(rings) != 2 || len(byDevice) != 2 {
		t.Errorf("console rings for %s: %d over devices %v; want each of the 2 devices once", a, len(rings), byDevice)
	}
	d1 := dlMetric(t, in, `ringside_deliveries_total{notifier="desk1",outcome="delivered"}`)
	d2 := dlMetric(t, in, `ringside_deliveries_total{notifier="desk2",outcome="delivered"}`)
	if d1+d2 != 4 { // a and b, two devices each
		t.Errorf("console deliveries desk1=%v desk2=%v; want 4 in all (2 callbacks × 2 devices)", d1, d2)
	}

	// Once the window has passed, the same key is a new call.
	time.Sleep(time.Until(start.Add(3*time.Second + 200*time.Millisecond)))
	dlAccept(t, in, a, "2809")
	app.waitFor(t, []string{a}, 10*time.Second, "delivered 3 times", func(r []appReq) bool { return len(r) == 3 })
}

// ---------------------------------------------------------------------------
// Retries.

// Transient answers are retried by the host with a growing, jittered
// backoff, never sooner than Retry-After and never past the deadline;
// permanent answers are not retried; only the failed devices are tried
// again.
func TestE2ERetry(t *testing.T) {
	r1, r2, r3 := dlSID(0x7e770001, 1), dlSID(0x7e770001, 2), dlSID(0x7e770001, 3)
	r4, r5, r6 := dlSID(0x7e770001, 4), dlSID(0x7e770001, 5), dlSID(0x7e770001, 6)
	app := newFakeApp(t, func(r *appReq) appAnswer {
		switch {
		case r.SID == r1 && r.N <= 2:
			return appAnswer{Code: 503}
		case r.SID == r2 && r.N == 1:
			return appAnswer{Code: 429, RetryAfter: "2"}
		case r.SID == r3:
			return appAnswer{Code: 404}
		case r.SID == r4:
			return appAnswer{Code: 503, RetryAfter: "2"}
		case r.SID == r5:
			return appAnswer{Code: 503}
		}
		return appAnswer{Code: 200}
	})
	const busy, fine = "+818000000503", "+818000000200"
	tw := newSMSTwilio(t, map[string][]int{busy: {503}})
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("2s", "debug", "")+fmt.Sprintf(`
notifier "app" {
  plugin = "webhook"
  url    = %q
}
notifier "short" {
  plugin = "webhook"
  url    = %q
  ttl    = "3s"
}
notifier "sms" {
  plugin      = "sms"
  account_sid = %q
  auth_token  = %q
  from        = %q
  endpoint    = %q
  body        = "call ${call.sid}"
}
route "phones" {
  when   = call.to_user_id == "phones"
  notify = ["sms"]
}
route "short" {
  when   = call.to_user_id == "short"
  notify = ["short"]
}
route "main" {
  notify = ["app"]
}
`, app.URL+"/app", app.URL+"/short", smsAccountSID, smsAuthToken, smsFrom, tw.URL))
	in := startConfig(t, path)
	for _, p := range []string{busy, fine} {
		if code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/phones/phone/"+url.PathEscape(p), nil); code != 204 {
			t.Fatalf("PUT phone: %d %s", code, body)
		}
	}

	for _, sid := range []string{r1, r2, r3} {
		dlAccept(t, in, sid, "2809")
	}
	shortSent := time.Now()
	dlAccept(t, in, r4, "short")
	dlAccept(t, in, r5, "short")
	shortAccepted := time.Now()
	dlAccept(t, in, r6, "phones")
	for _, sid := range []string{r1, r2, r3, r4, r5, r6} {
		dlWaitLogs(t, in, 1, 15*time.Second, "ending "+sid, callbackDone(sid))
	}

	// r1: 503, 503, 200 — three attempts of one delivery (one webhook-id),
	// each pause within its full-jitter ceiling (200 ms, 400 ms; plus slack
	// for the process hops).
	q := app.requests(r1)
	if len(q) != 3 || q[2].Code != 200 {
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
	q = app.requests(r2)
	if len(q) != 2 || q[1].Code != 200 {
		t.Fatalf("r2: %d requests; want 2", len(q))
	} else if gap := q[1].At.Sub(q[0].At); gap < 1950*time.Millisecond {
		t.Errorf("r2: retried %v after a 429 with Retry-After: 2; want ≥ 2s", gap)
	}

	// r3: 404 is permanent: one request.
	if q = app.requests(r3); len(q) != 1 {
		t.Errorf("r3: %d requests after a 404; want 1 (permanent, not retried)", len(q))
	}

	// r4 (ttl 3s): 503 Retry-After: 2 at 0 s and ~2 s; a third attempt would
	// start past the deadline, so it is never made.
	if q = app.requests(r4); len(q) != 2 {
		t.Errorf("r4: %d requests; want 2 (the third would be past the 3s deadline)", len(q))
	}
	// r5 (ttl 3s): 503s retried with backoff until the deadline, never after.
	q = app.requests(r5)
	if len(q) < 2 {
		t.Errorf("r5: %d requests; want retries until the deadline", len(q))
	}
	for _, r := range append(app.requests(r4), q...) {
		if r.At.After(shortAccepted.Add(3 * time.Second)) {
			t.Errorf("%s: a request at %v after the callback; the deadline was 3s", r.SID, r.At.Sub(shortSent))
		}
	}
	if n := dlMetric(t, in, `ringside_deliveries_total{notifier="short",outcome="expired"}`); n != 2 {
		t.Errorf("short expired = %v; want 2", n)
	}

	// r6: two phones; only the one answered 503 is sent again.
	byTo := map[string]int{}
	for _, r := range tw.requests() {
		byTo[r.Form.Get("To")]++
	}
	if byTo[busy] != 2 || byTo[fine] != 1 {
		t.Errorf("SMS per phone %v; want %s twice (503 then 201) and %s once", byTo, busy, fine)
	}
	if n := dlMetric(t, in, `ringside_deliveries_total{notifier="sms",outcome="delivered"}`); n != 2 {
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
		if got := dlMetric(t, in, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
	// A retry of r4 or r5 started just before the 3 s deadline can end at
	// the deadline inside the plugin before its request leaves: it counts
	// as a retry the fake never sees (at most one per callback).
	seen := float64(len(app.requests(r4)) + len(q) - 2)
	if got := dlMetric(t, in, `ringside_delivery_retries_total{notifier="short"}`); got < seen || got > seen+2 {
		t.Errorf(`ringside_delivery_retries_total{notifier="short"} = %v; want %v to %v (the requests the fake saw after the first of each)`, got, seen, seen+2)
	}
}

// ---------------------------------------------------------------------------
// Fallback after delivery.

// The route's fallback runs when every notify delivery failed permanently
// (at once) or when nothing was delivered by fallback_after (not sooner),
// and not at all when the notify delivery succeeded.
func TestE2EFallbackAfter(t *testing.T) {
	f1, f2, f3 := dlSID(0xfa110001, 1), dlSID(0xfa110001, 2), dlSID(0xfa110001, 3)
	backup := newFakeApp(t, nil)
	app := newFakeApp(t, func(r *appReq) appAnswer {
		switch r.SID {
		case f1:
			return appAnswer{Code: 410}
		case f2:
			if backup.delivered(f2) == 0 {
				return appAnswer{Code: 503}
			}
		}
		return appAnswer{Code: 200}
	})
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("2s", "debug", "")+fmt.Sprintf(`
delivery {
  fallback_after = "2s"
}
notifier "app" {
  plugin = "webhook"
  url    = %q
}
notifier "backup" {
  plugin = "webhook"
  url    = %q
}
route "all" {
  notify   = ["app"]
  fallback = ["backup"]
}
`, app.URL, backup.URL))
	in := startConfig(t, path)

	sent := map[string]time.Time{}
	for _, sid := range []string{f1, f2, f3} {
		sent[sid] = time.Now()
		dlAccept(t, in, sid, "2809")
	}
	backup.waitDelivered(t, []string{f1, f2}, 10*time.Second)
	if d := backup.requests(f1)[0].At.Sub(sent[f1]); d > 1500*time.Millisecond {
		t.Errorf("f1: fallback %v after a permanent failure; want it at once, not at fallback_after", d)
	}
	if d := backup.requests(f2)[0].At.Sub(sent[f2]); d < 1950*time.Millisecond || d > 5*time.Second {
		t.Errorf("f2: fallback %v after the callback; want at fallback_after (2s)", d)
	}
	for _, sid := range []string{f1, f2, f3} {
		dlWaitLogs(t, in, 1, 10*time.Second, "ending "+sid, callbackDone(sid))
	}
	app.waitDelivered(t, []string{f2, f3}, time.Second)
	if n := len(backup.requests(f3)); n != 0 {
		t.Errorf("f3 was delivered, yet its fallback ran %d times", n)
	}
	if n := len(app.requests(f1)); n != 1 {
		t.Errorf("f1: %d requests after 410; want 1", n)
	}
	for series, want := range map[string]float64{
		`ringside_fallbacks_total{reason="failed",route="all"}`:  1,
		`ringside_fallbacks_total{reason="timeout",route="all"}`: 1,
		`ringside_fallbacks_total{reason="lookup",route="all"}`:  0,
	} {
		if got := dlMetric(t, in, series); got != want {
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
	slow := newFakeApp(t, func(r *appReq) appAnswer {
		if r.N == 1 && strings.HasPrefix(r.SID, "c4a50001") {
			return appAnswer{Hold: release} // in flight until the plugin dies
		}
		return appAnswer{Code: 200}
	})
	other := newFakeApp(t, nil)
	dir := t.TempDir()
	consoleCopy := filepath.Join(dir, "console-plugin")
	copyFile(t, consoleBin, consoleCopy)
	path := dlWriteConfig(t, dir, dlServer("2s", "debug", "")+fmt.Sprintf(`
plugin "console" {
  command = ["./console-plugin"]
}
notifier "slow" {
  plugin = "webhook"
  url    = %q
}
notifier "other" {
  plugin = "webhook"
  url    = %q
}
notifier "desk" {
  plugin = "console"
}
route "all" {
  notify = ["slow", "other", "desk"]
}
`, slow.URL, other.URL))
	in := startConfig(t, path)
	if code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/2809/console/console-token-crash", nil); code != 204 {
		t.Fatalf("PUT device: %d %s", code, body)
	}
	slowPid := dlWaitPluginPid(t, in, "slow", 0, 5*time.Second)
	otherPid := dlWaitPluginPid(t, in, "other", 0, 5*time.Second)
	deskPid := dlWaitPluginPid(t, in, "desk", 0, 5*time.Second)

	// Ten deliveries held in flight at the slow notifier's peer.
	var held []string
	for i := range 10 {
		sid := dlSID(0xc4a50001, i)
		held = append(held, sid)
		dlAccept(t, in, sid, "2809")
	}
	slow.waitSeen(t, held, 10*time.Second)
	other.waitDelivered(t, held, 10*time.Second)

	if err := syscall.Kill(slowPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The others keep delivering meanwhile.
	var during []string
	for i := range 5 {
		sid := dlSID(0xc4a50002, i)
		during = append(during, sid)
		dlAccept(t, in, sid, "2809")
	}
	other.waitDelivered(t, during, 10*time.Second)

	slow.waitDelivered(t, append(append([]string{}, held...), during...), 20*time.Second)
	for _, sid := range held {
		q := slow.requests(sid)
		if n := slow.delivered(sid); n != 1 {
			t.Errorf("%s delivered %d times at the slow peer; want 1", sid, n)
		}
		if len(q) < 2 || q[len(q)-1].ID != q[0].ID {
			t.Errorf("%s: %d requests; want the in-flight one retried with the same webhook-id", sid, len(q))
		}
	}
	dlWaitMetric(t, in, `ringside_plugin_restarts_total{notifier="slow"}`, 1, 10*time.Second)
	dlWaitLogs(t, in, 1, 5*time.Second, "plugin process restarted (slow)", func(l map[string]any) bool {
		return l["msg"] == "plugin process restarted" && l["notifier"] == "slow"
	})
	if pid := dlWaitPluginPid(t, in, "slow", slowPid, 5*time.Second); pid == slowPid {
		t.Error("slow: same pid after the crash")
	}
	if dlPluginPid(in, "other") != otherPid || dlPluginPid(in, "desk") != deskPid {
		t.Error("a plugin process of another notifier changed when slow crashed")
	}
	for _, n := range []string{"other", "desk"} {
		if v := dlMetric(t, in, `ringside_plugin_restarts_total{notifier="`+n+`"}`); v != 0 {
			t.Errorf("%s restarts = %v; want 0", n, v)
		}
	}
	waitReady(t, in, 200, 5*time.Second)

	// A plugin that cannot come back: its binary is gone, so restarts fail
	// and are retried with backoff while /readyz says 503.
	if err := os.Rename(consoleCopy, consoleCopy+".off"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(deskPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitReady(t, in, 503, 5*time.Second)
	d1 := dlSID(0xc4a50003, 1)
	dlAccept(t, in, d1, "2809")
	other.waitDelivered(t, []string{d1}, 5*time.Second)
	slow.waitDelivered(t, []string{d1}, 5*time.Second)
	fails := dlWaitLogs(t, in, 3, 10*time.Second, "plugin restart failed (desk)", func(l map[string]any) bool {
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
	waitReady(t, in, 200, 15*time.Second)
	dlWaitMetric(t, in, `ringside_plugin_restarts_total{notifier="desk"}`, 1, 5*time.Second)
	dlWaitPluginPid(t, in, "desk", deskPid, 5*time.Second)
	// d1 waited for the console device and rings on the new process.
	dlWaitLogs(t, in, 1, 15*time.Second, "desk ringing "+d1, func(l map[string]any) bool {
		return l["sid"] == d1 && l["notifier"] == "desk" && strings.Contains(fmt.Sprint(l["msg"]), "call for")
	})
	if v := dlMetric(t, in, `ringside_plugin_restarts_total{notifier="slow"}`); v != 1 {
		t.Errorf("slow restarts = %v; want 1", v)
	}
}

// waitReady polls /readyz until it answers code.
func waitReady(t *testing.T, in *instance, code int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got, body := 0, ""
	for time.Now().Before(deadline) {
		resp, err := dlClient.Get(in.adminURL + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got, body = resp.StatusCode, string(b)
			if got == code {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("/readyz answered %d %s within %v; want %d", got, body, timeout, code)
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
	app := newFakeApp(t, func(r *appReq) appAnswer {
		if strings.HasPrefix(r.SID, "e0000001") || heal.Load() {
			return appAnswer{Code: 200}
		}
		return appAnswer{Code: 503}
	})
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("2s", "debug", "")+fmt.Sprintf(`
directory "embedded" {
  path = "data/ringside.db"
}
notifier "app" {
  plugin = "webhook"
  url    = %q
}
notifier "short" {
  plugin = "webhook"
  url    = %q
  ttl    = "3s"
}
route "short" {
  when   = call.to_user_id == "short"
  notify = ["short"]
}
route "main" {
  notify = ["app"]
}
`, app.URL+"/app", app.URL+"/short"))
	in := startConfig(t, path)

	var early, pending, short []string
	for i := range 5 {
		sid := dlSID(0xe0000001, i)
		early = append(early, sid)
		dlAccept(t, in, sid, "2809")
	}
	app.waitDelivered(t, early, 10*time.Second)
	for i := range 20 {
		sid := dlSID(0x0a000001, i)
		pending = append(pending, sid)
		dlAccept(t, in, sid, "2809")
	}
	shortSent := time.Now()
	for i := range 3 {
		sid := dlSID(0x05000001, i)
		short = append(short, sid)
		dlAccept(t, in, sid, "short")
	}
	app.waitSeen(t, append(append([]string{}, pending...), short...), 10*time.Second)
	// The early ones are finished on disk; the others are journaled.
	dlWaitMetric(t, in, "ringside_journal_entries", 23, 10*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "data", "ringside.journal")); err != nil {
		t.Errorf("journal file: %v", err)
	}

	orphans := dlKill9(t, in)
	if alive := dlWaitGone(orphans, 3*time.Second); len(alive) > 0 {
		t.Logf("note: plugin processes %v outlived the SIGKILLed ringside (killed by the test)", alive)
		dlReap(alive)
	}
	// The short ones' deadline (3s) passes during the outage.
	time.Sleep(time.Until(shortSent.Add(3*time.Second + 100*time.Millisecond)))
	heal.Store(true)
	restarted := time.Now()

	in2 := startConfig(t, path)
	resumed := dlWaitLogs(t, in2, len(pending), 10*time.Second, "resuming journaled callback", func(l map[string]any) bool {
		return l["msg"] == "resuming journaled callback"
	})
	got := map[string]bool{}
	for _, l := range resumed {
		got[fmt.Sprint(l["sid"])] = true
	}
	for _, sid := range pending {
		if !got[sid] {
			t.Errorf("%s was not resumed", sid)
		}
	}
	for _, sid := range append(append([]string{}, early...), short...) {
		if got[sid] {
			t.Errorf("%s was resumed; it was delivered, or its deadline had passed", sid)
		}
	}
	app.waitDelivered(t, pending, 15*time.Second)
	dlWaitMetric(t, in2, "ringside_journal_entries", 0, 10*time.Second)
	dlWaitMetric(t, in2, "ringside_callbacks_in_delivery", 0, 5*time.Second)
	for _, sid := range early {
		if n := app.delivered(sid); n != 1 {
			t.Errorf("%s (delivered before the crash) delivered %d times", sid, n)
		}
	}
	for _, sid := range short {
		for _, r := range app.requests(sid) {
			if r.At.After(restarted) {
				t.Errorf("%s sent after its deadline, by the restarted ringside", sid)
			}
		}
	}
	// The dedup window survived the crash through the journal.
	code, body, err := dlCall(in2.notifyURL, pending[0], "2809")
	if err != nil || code != 200 || !strings.Contains(body, `"status":"duplicate"`) {
		t.Errorf("a resumed sid again: got %d %s %v; want 200 duplicate", code, body, err)
	}

	// The journal is empty on disk too: a third run resumes nothing.
	in2.stop()
	in3 := startConfig(t, path)
	time.Sleep(300 * time.Millisecond)
	if n := len(dlLogs(in3, func(l map[string]any) bool { return l["msg"] == "resuming journaled callback" })); n != 0 {
		t.Errorf("third run resumed %d callbacks; want 0", n)
	}
	if n := dlMetric(t, in3, "ringside_journal_entries"); n != 0 {
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
	app := newFakeApp(t, func(*appReq) appAnswer { return appAnswer{Hold: release} })
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("2s", "info", "  max_in_flight = 4")+fmt.Sprintf(`
notifier "app" {
  plugin  = "webhook"
  url     = %q
  timeout = "30s"
}
route "all" {
  notify = ["app"]
}
`, app.URL))
	in := startConfig(t, path)

	var first []string
	for i := range 4 {
		sid := dlSID(0xbac00001, i)
		first = append(first, sid)
		dlAccept(t, in, sid, "2809")
	}
	app.waitSeen(t, first, 10*time.Second)
	dlWaitMetric(t, in, "ringside_callbacks_in_delivery", float64(len(first)), 5*time.Second)

	rss0 := dlRSS(t, in.cmd.Process.Pid)
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
				code, _, err := dlCall(in.notifyURL, dlSID(0xf1000d01, i), "2809")
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
	rss1 := dlRSS(t, in.cmd.Process.Pid)
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
	if n := dlMetric(t, in, `ringside_callbacks_total{code="503",status="unavailable"}`); n != flood {
		t.Errorf("503s counted: %v; want %d", n, flood)
	}
	if n := dlMetric(t, in, `ringside_callbacks_total{code="500",status="error"}`); n != 0 {
		t.Errorf("500s: %v", n)
	}
	if n := len(app.requests("")); n != len(first) {
		t.Errorf("the fake saw %d requests while holding %d; the flood delivered something", n, len(first))
	}

	// Drain: the held deliveries end, and callbacks are accepted again —
	// including a sid refused during the flood (not recorded by dedup).
	releaseOnce.Do(func() { close(release) })
	app.waitDelivered(t, first, 10*time.Second)
	dlWaitMetric(t, in, "ringside_callbacks_in_delivery", 0, 10*time.Second)
	later := []string{dlSID(0xbac00002, 1), dlSID(0xf1000d01, 7)}
	for _, sid := range later {
		dlAccept(t, in, sid, "2809")
	}
	app.waitDelivered(t, later, 10*time.Second)
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
	app := newFakeApp(t, func(*appReq) appAnswer { return appAnswer{Hold: *hold.Load()} })
	dir := t.TempDir()
	// The console notifier, with no device, makes each plan look up the
	// directory, as a real deployment's would.
	path := dlWriteConfig(t, dir, dlServer("2s", "info", "  max_in_flight = 4")+fmt.Sprintf(`
plugin "console" {
  command = [%q]
}
notifier "app" {
  plugin  = "webhook"
  url     = %q
  timeout = "30s"
}
notifier "desk" {
  plugin = "console"
}
route "all" {
  notify = ["app", "desk"]
}
`, consoleBin, app.URL))
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
				sid := dlSID(0xb0050000+uint32(round), i)
				code, body, err := dlCall(in.notifyURL, sid, "2809")
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
		app.waitSeen(t, accepted, 10*time.Second)
		next := make(chan struct{})
		close(*hold.Swap(&next))
		app.waitDelivered(t, accepted, 10*time.Second)
		dlWaitMetric(t, in, "ringside_callbacks_in_delivery", 0, 10*time.Second)
	}
}

// dlRSS is the resident set size of pid in KiB.
func dlRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// ---------------------------------------------------------------------------
// Reload.

// A write to the config file and SIGHUP both reload; a bad config is refused
// with its diagnostics logged and the old config keeps routing; an
// unchanged notifier keeps its plugin process while a changed one gets a
// new one (and the old one ends); callbacks sent all along are all
// answered 200 and all delivered.
func TestE2EReload(t *testing.T) {
	keep, a1, a2 := newFakeApp(t, nil), newFakeApp(t, nil), newFakeApp(t, nil)
	conf := func(appURL, ver, extra string) string {
		return dlServer("2s", "info", "") + fmt.Sprintf(`
notifier "keep" {
  plugin = "webhook"
  url    = %q
}
notifier "app" {
  plugin  = "webhook"
  url     = %q
  headers = { X-Ver = %q }
}
route "all" {
  notify = ["keep", "app"]
}
%s`, keep.URL, appURL, ver, extra)
	}
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, conf(a1.URL, "1", ""))
	in := startConfig(t, path)
	keepPid := dlWaitPluginPid(t, in, "keep", 0, 5*time.Second)
	app1Pid := dlWaitPluginPid(t, in, "app", 0, 5*time.Second)

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
			sid := dlSID(0x4e100001, i)
			code, body, err := dlCall(in.notifyURL, sid, "2809")
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
		dlWaitLogs(t, in, n, 15*time.Second, "config reloaded ("+reason+")", func(l map[string]any) bool {
			return l["msg"] == "config reloaded" && l["reason"] == reason
		})
	}
	probe := func(tag uint32, want *fakeApp, ver string) {
		t.Helper()
		sid := dlSID(tag, 0)
		dlAccept(t, in, sid, "2809")
		want.waitDelivered(t, []string{sid}, 10*time.Second)
		if got := want.requests(sid)[0].Header.Get("X-Ver"); got != ver {
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
	app2Pid := dlWaitPluginPid(t, in, "app", app1Pid, 5*time.Second)
	if p := dlPluginPid(in, "keep"); p != keepPid {
		t.Errorf("keep: plugin pid %d → %d across a reload that did not change it", keepPid, p)
	}
	if alive := dlWaitGone([]int{app1Pid}, 10*time.Second); len(alive) > 0 {
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
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloaded(1, "SIGHUP")
	probe(0x4e100003, a2, "3")
	if p := dlPluginPid(in, "keep"); p != keepPid {
		t.Errorf("keep: plugin pid %d → %d across a SIGHUP reload", keepPid, p)
	}
	dlWaitPluginPid(t, in, "app", app2Pid, 5*time.Second)

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
		l := dlWaitLogs(t, in, 1, 15*time.Second, "config reload refused ("+reason+")", func(l map[string]any) bool {
			return l["msg"] == "config reload refused; the previous config keeps serving" && l["reason"] == reason
		})[0]
		diag := fmt.Sprint(l["diagnostics"])
		if !strings.Contains(diag, "config.hcl:") || !strings.Contains(diag, "nope") {
			t.Errorf("refused reload: diagnostics %q; want FILE:LINE:COL and the unknown notifier", diag)
		}
	}
	refused("file changed")
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	refused("SIGHUP")
	probe(0x4e100004, a2, "3")
	if p := dlPluginPid(in, "keep"); p != keepPid {
		t.Errorf("keep: plugin pid changed after a refused reload")
	}

	close(stop)
	<-stopped
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d of %d callbacks during the reloads not answered 200 accepted: %v", len(bad), len(sent), bad)
	}
	keep.waitDelivered(t, sent, 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var missing []string
		for _, sid := range sent {
			if a1.delivered(sid)+a2.delivered(sid) == 0 {
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
		if got := dlMetric(t, in, series); got != want {
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
	s1, s2 := dlSID(0x5d000001, 1), dlSID(0x5d000001, 2)
	release1 := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release1) })
	var second atomic.Bool // the next run answers at once
	app := newFakeApp(t, func(r *appReq) appAnswer {
		switch {
		case second.Load():
			return appAnswer{Code: 200}
		case r.SID == s1:
			return appAnswer{Hold: release1}
		case r.SID == s2:
			return appAnswer{Hold: make(chan struct{})} // until the request ends
		}
		return appAnswer{Code: 200}
	})
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("3s", "debug", "")+fmt.Sprintf(`
notifier "app" {
  plugin  = "webhook"
  url     = %q
  timeout = "30s"
}
route "all" {
  notify = ["app"]
}
`, app.URL))
	in := startConfig(t, path)
	dlAccept(t, in, s1, "2809")
	dlAccept(t, in, s2, "2809")
	app.waitSeen(t, []string{s1, s2}, 10*time.Second)
	kids := dlChildren(in.cmd.Process.Pid)
	if len(kids) == 0 {
		t.Fatal("no plugin child found")
	}
	t.Cleanup(func() { dlReap(kids) })

	termAt := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	dlWaitLogs(t, in, 1, 5*time.Second, "shutting down", func(l map[string]any) bool { return l["msg"] == "shutting down" })
	waitReady(t, in, 503, 2*time.Second)
	for i := range 5 {
		t0 := time.Now()
		code, body, err := dlCall(in.notifyURL, dlSID(0x5d000002, i), "2809")
		if err == nil && code != 503 {
			t.Errorf("callback during shutdown: got %d %s; want 503 or a refused connection", code, body)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("callback during shutdown took %v", d)
		}
	}
	once.Do(func() { close(release1) })
	app.waitDelivered(t, []string{s1}, 3*time.Second)

	err, ok := dlWaitExit(t, in, 10*time.Second)
	if !ok {
		t.Fatalf("ringside still running 10s after SIGTERM (grace 3s)\n%s", dlTail(in.logs.String(), 40))
	}
	if err != nil {
		t.Errorf("exit after SIGTERM: %v; want 0\n%s", err, dlTail(in.logs.String(), 40))
	}
	if d := time.Since(termAt); d > 6*time.Second {
		t.Errorf("exit %v after SIGTERM; grace is 3s", d)
	}
	if len(dlLogs(in, callbackDone(s1))) != 1 {
		t.Errorf("no callback line for %s before exit: its delivery did not complete in the grace", s1)
	}
	if alive := dlWaitGone(kids, 5*time.Second); len(alive) > 0 {
		t.Errorf("plugin processes %v left behind after exit", alive)
	}
	for _, sid := range []string{dlSID(0x5d000002, 0)} {
		if n := len(app.requests(sid)); n != 0 {
			t.Errorf("a callback refused during shutdown reached the app")
		}
	}

	// The unfinished one stays in the journal: the next run delivers it,
	// and only it.
	second.Store(true)
	in2 := startConfig(t, path)
	dlWaitLogs(t, in2, 1, 10*time.Second, "resuming "+s2, func(l map[string]any) bool {
		return l["msg"] == "resuming journaled callback" && l["sid"] == s2
	})
	app.waitDelivered(t, []string{s2}, 10*time.Second)
	dlWaitMetric(t, in2, "ringside_journal_entries", 0, 10*time.Second)
	if n := len(dlLogs(in2, func(l map[string]any) bool { return l["msg"] == "resuming journaled callback" && l["sid"] == s1 })); n != 0 {
		t.Errorf("%s, delivered during the grace, was resumed", s1)
	}
	if n := app.delivered(s1); n != 1 {
		t.Errorf("%s delivered %d times; want 1", s1, n)
	}
}

// A SIGKILLed ringside must not leave its plugin processes running: each
// crash would leak one process per notifier, still holding connections,
// while the next ringside starts its own.
func TestE2EJournalCrashLeavesNoPlugin(t *testing.T) {
	app := newFakeApp(t, nil)
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, dlServer("2s", "info", "")+fmt.Sprintf(`
notifier "app" {
  plugin = "webhook"
  url    = %q
}
route "all" {
  notify = ["app"]
}
`, app.URL))
	in := startConfig(t, path)
	dlWaitPluginPid(t, in, "app", 0, 5*time.Second)
	kids := dlKill9(t, in)
	if alive := dlWaitGone(kids, 5*time.Second); len(alive) > 0 {
		t.Errorf("bug: plugin processes %v still run 5s after ringside was SIGKILLed (reparented to pid 1)", alive)
	}
}

// Reloading server.max_in_flight must either take effect or be reported as
// a restart-only setting; it must not be half applied in silence.
func TestE2EReloadMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	app := newFakeApp(t, func(*appReq) appAnswer { return appAnswer{Hold: release} })
	conf := func(max int) string {
		return dlServer("2s", "info", fmt.Sprintf("  max_in_flight = %d", max)) + fmt.Sprintf(`
notifier "app" {
  plugin  = "webhook"
  url     = %q
  timeout = "30s"
}
route "all" {
  notify = ["app"]
}
`, app.URL)
	}
	dir := t.TempDir()
	path := dlWriteConfig(t, dir, conf(2))
	in := startConfig(t, path)
	dlAccept(t, in, dlSID(0x3a400001, 1), "2809")
	dlAccept(t, in, dlSID(0x3a400001, 2), "2809")
	if code, _, _ := dlCall(in.notifyURL, dlSID(0x3a400001, 3), "2809"); code != 503 {
		t.Fatalf("third callback with max_in_flight = 2: got %d; want 503", code)
	}
	dlWriteConfig(t, dir, conf(50))
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	dlWaitLogs(t, in, 1, 10*time.Second, "config reloaded", func(l map[string]any) bool { return l["msg"] == "config reloaded" })
	warned := len(dlLogs(in, func(l map[string]any) bool {
		return strings.Contains(fmt.Sprint(l["msg"]), "only after a restart") && strings.Contains(fmt.Sprint(l["settings"]), "max_in_flight")
	})) > 0
	code, body, err := dlCall(in.notifyURL, dlSID(0x3a400001, 4), "2809")
	if !warned && code != 200 {
		t.Errorf("bug: after reloading max_in_flight 2 → 50 a third callback got %d %s %v, and no warning said the setting needs a restart", code, body, err)
	}
}
