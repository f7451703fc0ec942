package e2e

import (
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/cluster/redistest"
	"github.com/ringside/ringside/plugins/fakes"
)

// Three replicas of ringside on one Redis, behind a load balancer that is
// part of the test (front): the shared directory, one answer per sid when
// two replicas get it at once, a replica killed mid-burst, and Redis
// killed and restarted under load.

// ---------------------------------------------------------------------------
// The front.

// front is a load balancer on 127.0.0.1 in front of replicas: it sends
// each callback to the next replica, round robin, or, for the sids twice
// accepts, to that replica and the one after it at once, and answers with
// the first 200 (else with the last answer, or 502 when no replica
// answered). It never retries, and it records every replica's answer.
type front struct {
	URL      string
	replicas []*instance
	twice    func(sid string) bool

	srv    *httptest.Server
	client *http.Client // no keep-alive, so the transport never resends
	next   atomic.Uint64
	sent   atomic.Int64 // callbacks sent to the front by send
	wg     sync.WaitGroup

	mu      sync.Mutex
	answers map[string][]frontAnswer // by sid
}

// frontAnswer is one replica's answer to a callback the front forwarded.
type frontAnswer struct {
	replica int // index in front.replicas
	status  int
	body    string
	err     error // a transport error: the replica did not answer
	at      time.Time
}

func (a frontAnswer) is(status string) bool {
	return a.err == nil && a.status == http.StatusOK && strings.Contains(a.body, `"status":"`+status+`"`)
}

func (a frontAnswer) String() string {
	if a.err != nil {
		return fmt.Sprintf("replica %d: %v", a.replica+1, a.err)
	}
	return fmt.Sprintf("replica %d: %d %s", a.replica+1, a.status, strings.TrimSpace(a.body))
}

// startFront starts a front before replicas; twice (nil: none) chooses the
// sids sent to two replicas at once. It is closed at the end of the test.
func startFront(t *testing.T, replicas []*instance, twice func(sid string) bool) *front {
	t.Helper()
	f := &front{
		replicas: replicas,
		twice:    twice,
		client:   &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		answers:  map[string][]frontAnswer{},
	}
	f.srv = httptest.NewServer(f)
	f.URL = f.srv.URL
	t.Cleanup(func() {
		f.srv.Close()
		f.wg.Wait()
	})
	return f
}

// ServeHTTP forwards a callback.
func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("sid")
	n := uint64(len(f.replicas))
	first := int((f.next.Add(1) - 1) % n)
	targets := []int{first}
	if f.twice != nil && f.twice(sid) {
		targets = append(targets, (first+1)%int(n))
	}
	answers := make(chan frontAnswer, len(targets))
	for _, i := range targets {
		f.wg.Go(func() {
			a := f.forward(i, r.URL.RawQuery)
			f.mu.Lock()
			f.answers[sid] = append(f.answers[sid], a)
			f.mu.Unlock()
			answers <- a
		})
	}
	var last frontAnswer
	for range targets {
		last = <-answers
		if last.err == nil && last.status == http.StatusOK {
			break
		}
	}
	if last.err != nil {
		http.Error(w, last.err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(last.status)
	_, _ = io.WriteString(w, last.body)
}

// forward sends the callback query q to replica i, once.
func (f *front) forward(i int, q string) frontAnswer {
	a := frontAnswer{replica: i}
	resp, err := f.client.Get(f.replicas[i].notifyURL + "?" + q)
	if err != nil {
		a.err, a.at = err, time.Now()
		return a
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.status, a.body, a.err, a.at = resp.StatusCode, string(b), err, time.Now()
	return a
}

// send sends the LINE example for sid to toUser through the front, and
// returns the front's answer (0 and the error when it did not answer).
func (f *front) send(sid, toUser string) (int, string, error) {
	f.sent.Add(1)
	resp, err := f.client.Get(f.URL + "?" + query(sid, toUser))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// burst sends n callbacks to toUser with the sids sidN(tag, 0…n-1)
// through the front, one every interval, each from its own goroutine, and
// returns the sids and a channel closed once every callback is answered.
func (f *front) burst(tag uint32, n int, toUser string, interval time.Duration) ([]string, <-chan struct{}) {
	sids := make([]string, n)
	for i := range sids {
		sids[i] = sidN(tag, i)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i, sid := range sids {
			if i > 0 {
				<-tick.C
			}
			wg.Go(func() { _, _, _ = f.send(sid, toUser) })
		}
		wg.Wait()
	}()
	return sids, done
}

// answersOf returns the replicas' answers for sid.
func (f *front) answersOf(sid string) []frontAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.answers[sid])
}

// accepted returns the answer "accepted" for sid, if a replica gave one.
func (f *front) accepted(sid string) (frontAnswer, bool) {
	for _, a := range f.answersOf(sid) {
		if a.is("accepted") {
			return a, true
		}
	}
	return frontAnswer{}, false
}

// tally counts the answers to sids by kind: "accepted", "duplicate", a
// status code, or "no answer".
func (f *front) tally(sids []string) map[string]int {
	out := map[string]int{}
	for _, sid := range sids {
		for _, a := range f.answersOf(sid) {
			switch {
			case a.err != nil:
				out["no answer"]++
			case a.is("accepted"):
				out["accepted"]++
			case a.is("duplicate"):
				out["duplicate"]++
			default:
				out[strconv.Itoa(a.status)]++
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Replicas and their app server.

// startReplicas starts three replicas, the i-th (from 0) serving
// config(i), each from its own folder.
func startReplicas(t *testing.T, config func(i int) string, env ...string) []*instance {
	t.Helper()
	rs := make([]*instance, 3)
	for i := range rs {
		rs[i] = start(t, config(i), env...)
	}
	return rs
}

// replicaHeader names, in each webhook, the replica that sent it ("1",
// "2", "3").
const replicaHeader = "X-Replica"

// hookReplica is the config of replica i (from 0) of a cluster on the
// Redis at addr: one signed webhook notifier to url, with a delivery
// deadline of ttl, whose requests say which replica sent them.
func hookReplica(url, addr string, i int, ttl time.Duration) string {
	return serverBlock("2s", "info", "") + webhookNotifier("app", url,
		fmt.Sprintf("secret  = %q", hookSecret),
		fmt.Sprintf("headers = { %s = %q }", replicaHeader, strconv.Itoa(i+1)),
		fmt.Sprintf("ttl     = %q", ttl.String()),
	) + routeTo("all", "", "app") + clusterBlock(addr)
}

// slowApp is an app server that answers each webhook after a pause, with
// 503 and Retry-After: 1 to the first attempt of some sids, and that can
// hold the answers to one replica, past their pause, until release.
type slowApp struct {
	*fakes.Webhook
	pause    [2]time.Duration // the pause is in [pause[0], pause[1])
	refuse   func(sid string) bool
	stopping chan struct{}

	mu    sync.Mutex
	gated string        // the replica whose answers wait at gate
	gate  chan struct{} // closed by release
}

// startSlowApp starts a slowApp checking hookSecret; refuse chooses the
// sids whose first attempt is answered 503 with Retry-After: 1.
func startSlowApp(t *testing.T, minPause, maxPause time.Duration, refuse func(sid string) bool) *slowApp {
	t.Helper()
	a := &slowApp{pause: [2]time.Duration{minPause, maxPause}, refuse: refuse, stopping: make(chan struct{})}
	a.Webhook = startWebhook(t, fakes.WebhookOptions{Secret: hookSecret, Answer: a.answer})
	// Before the server closes: every answer still held goes.
	t.Cleanup(func() { close(a.stopping) })
	return a
}

// answer decides the answer to r and when it goes.
func (a *slowApp) answer(r *fakes.WebhookRequest) fakes.WebhookAnswer {
	ans := fakes.WebhookAnswer{Status: http.StatusNoContent}
	if r.N == 1 && a.refuse(r.SID) {
		ans = retryAfter(http.StatusServiceUnavailable, "1")
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", r.SID, r.N)
	pause := a.pause[0]
	if span := a.pause[1] - a.pause[0]; span > 0 {
		pause += time.Duration(h.Sum64() % uint64(span))
	}
	hold := make(chan struct{})
	ans.Hold = hold
	replica := r.Header.Get(replicaHeader)
	go func() {
		defer close(hold)
		t := time.NewTimer(pause)
		defer t.Stop()
		select {
		case <-t.C:
		case <-a.stopping:
			return
		}
		a.mu.Lock()
		gate := a.gate
		if replica != a.gated {
			gate = nil
		}
		a.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-a.stopping:
			}
		}
	}()
	return ans
}

// hold makes every answer to replica (its header's value) wait, from
// now, until release.
func (a *slowApp) hold(replica string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gated, a.gate = replica, make(chan struct{})
}

// release lets the held answers go, and the others to the same replica
// once their pause is over.
func (a *slowApp) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.gate)
}

// from returns the requests replica (its header's value) sent.
func (a *slowApp) from(replica string) []fakes.WebhookRequest {
	var out []fakes.WebhookRequest
	for _, r := range a.Requests("") {
		if r.Header.Get(replicaHeader) == replica {
			out = append(out, r)
		}
	}
	return out
}

// sidIndex is the index i of sidN(tag, i).
func sidIndex(sid string) int64 {
	i, _ := strconv.ParseInt(sid[max(0, len(sid)-12):], 16, 64)
	return i
}

// ok reports whether the fake answered r 2xx: a delivery.
func ok(r fakes.WebhookRequest) bool { return r.Status >= 200 && r.Status < 300 }

// deliveries counts, over sids, the sids with no delivery at the fake
// (lost, listed) and the deliveries beyond the first of each sid
// (duplicates).
func deliveries(hook *fakes.Webhook, sids []string) (lost []string, duplicates int) {
	for _, sid := range sids {
		n := hook.Delivered(sid)
		if n == 0 {
			lost = append(lost, sid)
		}
		duplicates += max(0, n-1)
	}
	return lost, duplicates
}

// acceptedSIDs returns the sids a replica answered accepted.
func (f *front) acceptedSIDs(sids []string) []string {
	var out []string
	for _, sid := range sids {
		if _, ok := f.accepted(sid); ok {
			out = append(out, sid)
		}
	}
	return out
}

// checkIDs checks that every request for each sid carries one webhook-id:
// the delivery's idempotency id, kept across retries and takeovers.
func checkIDs(t *testing.T, hook *fakes.Webhook, sids []string) {
	t.Helper()
	bad := 0
	for _, sid := range sids {
		reqs := hook.Requests(sid)
		for _, r := range reqs[min(1, len(reqs)):] {
			if r.ID != reqs[0].ID {
				if bad++; bad <= 5 {
					t.Errorf("sid %s: request %d (replica %s) carries webhook-id %q; the first (replica %s) %q",
						sid, r.N, r.Header.Get(replicaHeader), r.ID, reqs[0].Header.Get(replicaHeader), reqs[0].ID)
				}
				break
			}
		}
	}
	if bad > 5 {
		t.Errorf("%d sids in all carry more than one webhook-id", bad)
	}
}

// checkDeadlines checks that no request for an accepted sid reached the
// fake after the delivery's deadline: ttl after the callback arrived,
// which is before the front had the answer. slack allows for a request
// sent before the deadline and read by the fake after it.
func checkDeadlines(t *testing.T, f *front, hook *fakes.Webhook, sids []string, ttl, slack time.Duration) {
	t.Helper()
	late := 0
	for _, sid := range sids {
		acc, ok := f.accepted(sid)
		if !ok {
			continue
		}
		for _, r := range hook.Requests(sid) {
			if past := r.At.Sub(acc.at.Add(ttl)); past > slack {
				if late++; late <= 5 {
					t.Errorf("sid %s: request %d (replica %s, answered %d) reached the app %v after the deadline", sid, r.N, r.Header.Get(replicaHeader), r.Status, past)
				}
			}
		}
	}
	if late > 5 {
		t.Errorf("%d requests in all came after their deadline", late)
	}
}

// ---------------------------------------------------------------------------
// The tests.

// A device registered through replica 1's devices API is rung by each of
// the three: one call through the front reaches each replica in turn.
func TestE2ECluster3SharedDirectory(t *testing.T) {
	srv := redistest.Start(t)
	fake := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	config := apnsConfig(fake.keyFile, fake.URL, apnsTopic) + clusterBlock(srv.Addr())
	rs := startReplicas(t, func(int) string { return config }, fake.env())
	f := startFront(t, rs, nil)

	rs[0].putDevice(t, "2809", "apns", apnsToken)
	for i := range rs {
		sid := sidN(0xc31, i)
		if code, body, err := f.send(sid, "2809"); err != nil || code != http.StatusOK || !strings.Contains(body, `"status":"accepted"`) {
			t.Fatalf("call %d through the front: %d %s %v; want 200 accepted", i, code, body, err)
		}
		if got := f.answersOf(sid); len(got) != 1 || got[0].replica != i {
			t.Fatalf("call %d went to %v; want replica %d alone (round robin)", i, got, i+1)
		}
		eventually(t, 10*time.Second, fmt.Sprintf("replica %d rang the device registered through replica 1", i+1),
			func() bool { return apnsPushedTo(fake, apnsToken) == i+1 },
			func() string { return fmt.Sprintf("%d pushes", apnsPushedTo(fake, apnsToken)) })
		rs[i].waitMetric(t, `ringside_deliveries_total{notifier="ios",outcome="delivered"}`, 1, 10*time.Second)
	}
	time.Sleep(200 * time.Millisecond)
	if n := apnsPushedTo(fake, apnsToken); n != 3 {
		t.Errorf("the device got %d pushes; want 3, one from each replica", n)
	}
}

// 200 sids, each sent to two replicas at once: each is accepted by one
// replica and answered duplicate by the other, and rings once.
func TestE2ECluster3SameSidTwice(t *testing.T) {
	srv := redistest.Start(t)
	hook := startWebhook(t, fakes.WebhookOptions{Secret: hookSecret})
	rs := startReplicas(t, func(i int) string { return hookReplica(hook.URL, srv.Addr(), i, time.Minute) })
	f := startFront(t, rs, func(string) bool { return true })

	const n = 200
	sids := make([]string, n)
	jobs := make(chan string)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for sid := range jobs {
				// The front answers with the first 200 of the two.
				if code, body, err := f.send(sid, "2809"); err != nil || code != http.StatusOK {
					if failed.Add(1) <= 5 {
						t.Errorf("sid %s through the front: %d %s %v; want 200", sid, code, body, err)
					}
				}
			}
		})
	}
	for i := range sids {
		sids[i] = sidN(0xc32, i)
		jobs <- sids[i]
	}
	close(jobs)
	wg.Wait()
	f.srv.Close() // every second answer is in
	f.wg.Wait()

	pairs := map[[2]int]int{}
	for _, sid := range sids {
		got := f.answersOf(sid)
		if len(got) != 2 || got[0].replica == got[1].replica {
			t.Fatalf("sid %s: answers %v; want two, from two replicas", sid, got)
		}
		acc, dup := 0, 0
		for _, a := range got {
			switch {
			case a.is("accepted"):
				acc++
			case a.is("duplicate"):
				dup++
			}
		}
		if acc != 1 || dup != 1 {
			t.Errorf("sid %s: answers %v; want one 200 accepted and one 200 duplicate", sid, got)
		}
		pairs[[2]int{min(got[0].replica, got[1].replica), max(got[0].replica, got[1].replica)}]++
	}
	if len(pairs) != 3 {
		t.Errorf("the sids went to the pairs of replicas %v; want all three pairs", pairs)
	}
	t.Logf("answers: %v; pairs of replicas: %v", f.tally(sids), pairs)

	waitDelivered(t, hook, sids, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // a second push would come now
	for _, sid := range sids {
		if reqs := hook.Requests(sid); len(reqs) != 1 {
			t.Errorf("sid %s reached the app %d times; want once", sid, len(reqs))
		}
	}
}

// A replica SIGKILLed mid-burst (with its plugin process) while its app
// server holds its answers: a live replica takes over its undelivered
// work, so every accepted sid is delivered, before its deadline, with the
// webhook-id the dead replica used. Only requests the dead replica had in
// flight at the app server can be delivered twice.
func TestE2ECluster3KillMidBurst(t *testing.T) {
	const (
		ttl = 15 * time.Second
		n   = 300
	)
	srv := redistest.Start(t)
	// Every attempt is answered after 200–600ms, the first of every other
	// sid with 503 and Retry-After: 1, so work is pending at the kill.
	app := startSlowApp(t, 200*time.Millisecond, 600*time.Millisecond, func(sid string) bool { return sidIndex(sid)%2 == 0 })
	rs := startReplicas(t, func(i int) string { return hookReplica(app.URL, srv.Addr(), i, ttl) })
	f := startFront(t, rs, nil)

	sids, done := f.burst(0xc33, n, "2809", 20*time.Millisecond) // 50/s
	eventually(t, 20*time.Second, "half the burst sent", func() bool { return f.sent.Load() >= n/2 })
	// From now on replica 2's answers wait; a second lets it record what
	// it was answered before.
	app.hold("2")
	time.Sleep(time.Second)
	// Replica 2 dies as the app answers what it had in flight: its plugin
	// process is frozen, the held answers go into the frozen process's
	// sockets (the app delivered them; no replica will ever know), and
	// the replica and its plugin process are killed.
	frozen := children(rs[1].pid())
	for _, pid := range frozen {
		if ours(pid) {
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
	}
	t.Cleanup(func() { reap(frozen) })
	// What replica 2 had sent and was not answered when it died.
	var inflight []fakes.WebhookRequest
	for _, r := range app.from("2") {
		if r.Status == 0 {
			inflight = append(inflight, r)
		}
	}
	app.release()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && !answered(app.Webhook, inflight) {
		time.Sleep(20 * time.Millisecond)
	}
	killed := time.Now()
	reap(rs[1].kill(t))
	reap(frozen)
	t.Logf("replica 2 killed with %d requests in flight at the app (%d answered 2xx after its death)", len(inflight), countOK(app.Webhook, inflight))
	<-done

	accepted := f.acceptedSIDs(sids)
	byReplica := map[int]int{}
	for _, sid := range accepted {
		a, _ := f.accepted(sid)
		byReplica[a.replica]++
	}
	t.Logf("answers: %v; accepted by replica 1, 2, 3: %d, %d, %d", f.tally(sids), byReplica[0], byReplica[1], byReplica[2])
	if byReplica[1] == 0 {
		t.Fatal("replica 2 accepted nothing before it was killed")
	}

	var lost []string
	eventually(t, ttl+10*time.Second, "every accepted sid delivered", func() bool {
		lost, _ = deliveries(app.Webhook, accepted)
		return len(lost) == 0
	}, func() string {
		var who []string
		for _, sid := range lost[:min(5, len(lost))] {
			a, _ := f.accepted(sid)
			who = append(who, fmt.Sprintf("%s (accepted by replica %d, %d requests)", sid, a.replica+1, len(app.Requests(sid))))
		}
		return fmt.Sprintf("%d lost of %d accepted: %s\nlive replica 1's log:\n%s", len(lost), len(accepted), strings.Join(who, ", "), rs[0].tail(30))
	})

	// The takeover: logged by a live replica; the first request for a sid
	// replica 2 accepted from another replica measures it.
	var first time.Time
	for _, sid := range accepted {
		if a, _ := f.accepted(sid); a.replica != 1 {
			continue
		}
		for _, r := range app.Requests(sid) {
			if r.Header.Get(replicaHeader) != "2" && r.At.After(killed) && (first.IsZero() || r.At.Before(first)) {
				first = r.At
			}
		}
	}
	if first.IsZero() {
		t.Error("no live replica sent a request for a sid replica 2 accepted")
	} else {
		t.Logf("from the kill to the first redelivery: %v", first.Sub(killed).Round(time.Millisecond))
	}
	tookOver := func(l map[string]any) bool { return strings.Contains(fmt.Sprint(l["msg"]), "took over") }
	eventually(t, 10*time.Second, `a live replica logged "took over"`, func() bool {
		return len(rs[0].lines(tookOver))+len(rs[2].lines(tookOver)) > 0
	})
	for _, i := range []int{0, 2} {
		for _, l := range rs[i].lines(tookOver) {
			t.Logf("replica %d: %v", i+1, l)
		}
	}

	// Let a late second delivery arrive before counting.
	time.Sleep(500 * time.Millisecond)
	_, dups := deliveries(app.Webhook, sids)
	t.Logf("lost 0 of %d accepted; %d duplicates", len(accepted), dups)
	if dups > len(inflight) {
		t.Errorf("%d duplicates; want at most the %d requests replica 2 had in flight at the app when it died", dups, len(inflight))
	}
	open := map[string]bool{}
	for _, r := range inflight {
		open[r.ID] = true
	}
	for _, sid := range sids {
		if reqs := app.Requests(sid); app.Delivered(sid) > 1 && !open[reqs[0].ID] {
			t.Errorf("sid %s was delivered %d times, but its webhook-id %q was not in flight at replica 2's death", sid, app.Delivered(sid), reqs[0].ID)
		}
	}
	// The sids both replica 2 and a live replica sent: checkIDs proves
	// the takeover kept replica 2's webhook-ids on them.
	both := 0
	for _, sid := range sids {
		from := map[bool]bool{}
		for _, r := range app.Requests(sid) {
			from[r.Header.Get(replicaHeader) == "2"] = true
		}
		if from[true] && from[false] {
			both++
		}
	}
	t.Logf("%d sids reached the app from replica 2 and then from a live replica", both)
	if both == 0 {
		t.Error("no sid reached the app from replica 2 and from a live replica: the takeover redelivered none of its work")
	}
	checkIDs(t, app.Webhook, sids)
	checkDeadlines(t, f, app.Webhook, sids, ttl, 2*time.Second)
}

// answered reports whether the fake answered each of reqs.
func answered(hook *fakes.Webhook, reqs []fakes.WebhookRequest) bool {
	for _, r := range reqs {
		for _, now := range hook.Requests(r.SID) {
			if now.N == r.N && now.Status == 0 {
				return false
			}
		}
	}
	return true
}

// countOK counts the requests of reqs the fake has answered 2xx by now.
func countOK(hook *fakes.Webhook, reqs []fakes.WebhookRequest) int {
	n := 0
	for _, r := range reqs {
		for _, now := range hook.Requests(r.SID) {
			if now.N == r.N && ok(now) {
				n++
			}
		}
	}
	return n
}

// Redis SIGKILLed and restarted under steady load: every callback
// answered accepted is delivered, once (each sid goes to one replica), and
// the replicas are ready again by themselves.
func TestE2ECluster3RedisRestart(t *testing.T) {
	const (
		ttl = 15 * time.Second
		n   = 300
	)
	srv := redistest.Start(t)
	// Answers after 50–200ms; the first attempt of every third sid is
	// refused with Retry-After: 1, so retries are pending through the
	// outage.
	app := startSlowApp(t, 50*time.Millisecond, 200*time.Millisecond, func(sid string) bool { return sidIndex(sid)%3 == 0 })
	rs := startReplicas(t, func(i int) string { return hookReplica(app.URL, srv.Addr(), i, ttl) })
	for _, in := range rs {
		in.waitReady(t, http.StatusOK, 10*time.Second)
	}
	f := startFront(t, rs, nil)

	sids, done := f.burst(0xc34, n, "2809", 20*time.Millisecond) // 50/s for 6s
	eventually(t, 20*time.Second, "a third of the load sent", func() bool { return f.sent.Load() >= n/3 })
	stopped, sentBefore := time.Now(), f.sent.Load()
	srv.Stop()
	// Every replica notices, and goes on serving without Redis for a
	// while, before Redis comes back empty.
	for _, in := range rs {
		in.waitReady(t, http.StatusServiceUnavailable, 10*time.Second)
	}
	srv.Restart(t)
	t.Logf("Redis was down for %v, while %d callbacks were sent", time.Since(stopped).Round(time.Millisecond), f.sent.Load()-sentBefore)
	<-done
	for _, in := range rs {
		in.waitReady(t, http.StatusOK, 20*time.Second)
		in.waitMetric(t, "ringside_cluster_up", 1, 10*time.Second)
	}

	accepted := f.acceptedSIDs(sids)
	t.Logf("answers: %v", f.tally(sids))
	if len(accepted) == 0 {
		t.Fatal("no callback was accepted")
	}
	var lost []string
	eventually(t, ttl+10*time.Second, "every accepted sid delivered", func() bool {
		lost, _ = deliveries(app.Webhook, accepted)
		return len(lost) == 0
	}, func() string {
		return fmt.Sprintf("%d lost of %d accepted, e.g. %v", len(lost), len(accepted), lost[:min(5, len(lost))])
	})
	time.Sleep(500 * time.Millisecond) // a second delivery would come now
	_, dups := deliveries(app.Webhook, sids)
	t.Logf("lost 0 of %d accepted; %d duplicates", len(accepted), dups)
	if dups != 0 {
		for _, sid := range sids {
			if reqs := app.Requests(sid); app.Delivered(sid) > 1 {
				var who []string
				for _, r := range reqs {
					who = append(who, fmt.Sprintf("replica %s answered %d", r.Header.Get(replicaHeader), r.Status))
				}
				t.Errorf("sid %s (sent once, to one replica: %v) delivered %d times: %v", sid, f.answersOf(sid), app.Delivered(sid), who)
			}
		}
	}
	checkIDs(t, app.Webhook, sids)
	checkDeadlines(t, f, app.Webhook, sids, ttl, 2*time.Second)
	// No replica died: a takeover here took a live replica's work.
	for i, in := range rs {
		for _, l := range in.lines(func(l map[string]any) bool { return strings.Contains(fmt.Sprint(l["msg"]), "took over") }) {
			t.Logf("replica %d took over work though no replica died: %v", i+1, l)
		}
	}
}
