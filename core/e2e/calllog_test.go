package e2e

// The call log through the real binary: a call's whole story (answer,
// routes, notifiers active or why not, devices, attempts with the
// provider's reason, fallback, pruning, the final outcome per device and
// per call) for success, a retry then success, expiry, fallback,
// pruning, a duplicate and a call resumed after a SIGKILL; and the
// `ringside calls` command that reads it.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// callRecord is the part of GET /v1/calls/{sid} the tests read.
type callRecord struct {
	SID       string
	Status    string
	Outcome   string
	Resumed   bool
	Callbacks int
	Routes    []string
	Notifiers []struct {
		Name, Role, Reason string
		Active             bool
	}
	Devices []struct{ Kind, Token string }
	Results []struct {
		Notifier string
		Device   *struct{ Kind, Token string }
		Outcome  string
		Reason   string
	}
	Events []struct {
		Type, Notifier, Outcome, Reason, Status, Route string
		Attempt                                        int
		RetryAfterMS                                   int64 `json:"retry_after_ms"`
		Device                                         *struct{ Kind, Token string }
	}
}

// story is the record's events as "type:notifier:outcome" words.
func (r *callRecord) story() string {
	var w []string
	for _, e := range r.Events {
		w = append(w, e.Type+":"+e.Notifier+":"+e.Outcome+e.Status)
	}
	return strings.Join(w, " ")
}

// callLog fetches sid's record; ok is false on 404.
func (in *instance) callLog(t *testing.T, sid string) (rec callRecord, raw string, ok bool) {
	t.Helper()
	code, _, body := do(t, "GET", in.adminURL+"/v1/calls/"+url.PathEscape(sid), nil)
	if code == http.StatusNotFound {
		return rec, body, false
	}
	if code != 200 {
		t.Fatalf("GET /v1/calls/%s: %d %s", sid, code, body)
	}
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		t.Fatalf("GET /v1/calls/%s: %v\n%s", sid, err, body)
	}
	return rec, body, true
}

// waitOutcome waits until sid's record has left "ringing", and returns it.
func (in *instance) waitOutcome(t *testing.T, sid string, timeout time.Duration) (callRecord, string) {
	t.Helper()
	var rec callRecord
	var raw string
	eventually(t, timeout, sid+" finished in the call log", func() bool {
		var ok bool
		rec, raw, ok = in.callLog(t, sid)
		return ok && rec.Outcome != "ringing"
	}, func() string { return raw })
	return rec, raw
}

func TestE2ECallLog(t *testing.T) {
	const tag = 0xca1106
	ok, retried, expires, fellBack, pruning, resumedSID := sidN(tag, 1), sidN(tag, 2), sidN(tag, 3), sidN(tag, 4), sidN(tag, 5), sidN(tag, 6)
	const tokOK = "aaaaaa1111111111111111111111111111111111111111111111111111bbbb"
	const tokGone = "cccccc2222222222222222222222222222222222222222222222222222dddd"
	var heal atomic.Bool
	app := startWebhook(t, fakes.WebhookOptions{Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		switch {
		case r.SID == retried && r.N == 1:
			return retryAfter(503, "1")
		case r.SID == expires, r.SID == resumedSID && !heal.Load():
			return fakes.WebhookAnswer{Status: 503}
		case r.SID == fellBack && strings.HasSuffix(r.Path, "/failing"):
			return fakes.WebhookAnswer{Status: 404}
		}
		return fakes.WebhookAnswer{Status: 200}
	}})
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic, Answer: func(p *fakes.Push) fakes.Answer {
		if p.Token == tokGone {
			return fakes.Answer{Status: 410, Reason: "Unregistered", Timestamp: time.Now().Add(time.Hour).UnixMilli()}
		}
		return fakes.Answer{}
	}})
	dir := t.TempDir()
	path := writeConfigIn(t, dir, serverBlock("2s", "debug", "")+directoryAt("data/ringside.db")+
		apnsNotifier(apns.keyFile, apns.URL, apnsTopic)+
		webhookNotifier("app", app.URL+"/app")+
		webhookNotifier("short", app.URL+"/short", `ttl = "2s"`)+
		webhookNotifier("failing", app.URL+"/failing")+
		webhookNotifier("backup", app.URL+"/backup")+
		webhookNotifier("pager", app.URL+"/pager", `enabled = env("RINGSIDE_TEST_PAGER") != ""`)+
		routeTo("phones", `call.to_user_id == "alice"`, "ios")+
		routeTo("short", `call.to_user_id == "short"`, "short")+
		fallbackRoute("fb", `call.to_user_id == "fb"`, "failing", "backup")+
		fallbackRoute("main", "", "app", "pager"))
	in := startConfig(t, path, apns.env())
	in.putDevice(t, "alice", "apns", tokOK)
	in.putDevice(t, "alice", "apns", tokGone)

	in.accept(t, ok, "2809")
	in.accept(t, retried, "2809")
	in.accept(t, expires, "short")
	in.accept(t, fellBack, "fb")
	in.accept(t, pruning, "alice")
	// A repeat of a delivered call is a duplicate, in the same record.
	if code, body, err := in.call(ok, "2809"); err != nil || !strings.Contains(body, `"duplicate"`) {
		t.Fatalf("repeat of %s: %d %s %v", ok, code, body, err)
	}

	t.Run("success", func(t *testing.T) {
		rec, raw := in.waitOutcome(t, ok, 10*time.Second)
		if rec.Status != "accepted" || rec.Outcome != "delivered" || rec.Callbacks != 2 {
			t.Errorf("status %q outcome %q callbacks %d; want accepted, delivered, 2", rec.Status, rec.Outcome, rec.Callbacks)
		}
		// The repeat joins the story wherever it arrived (before or after
		// the delivery); the rest is in order.
		story := rec.story()
		rest := strings.Replace(story, " callback::duplicate", "", 1)
		if want := "callback::accepted attempt:app:delivered finished::delivered"; rest != want || rest == story {
			t.Errorf("story:\n got %s\nwant %s, and a callback::duplicate anywhere after the first", story, want)
		}
		// The disabled fallback is named, with why.
		var pager string
		for _, n := range rec.Notifiers {
			if n.Name == "pager" {
				pager = n.Reason
			}
		}
		if !strings.Contains(pager, "disabled") || !strings.Contains(pager, "RINGSIDE_TEST_PAGER") {
			t.Errorf("pager's reason %q; want it disabled, naming RINGSIDE_TEST_PAGER\n%s", pager, raw)
		}
		if strings.Contains(raw, lineParam) || strings.Contains(raw, "cc_param") {
			t.Errorf("the record holds cc_param:\n%s", raw)
		}
	})

	t.Run("retry then success", func(t *testing.T) {
		rec, raw := in.waitOutcome(t, retried, 10*time.Second)
		if got, want := rec.story(), "callback::accepted attempt:app:retry attempt:app:delivered finished::delivered"; got != want {
			t.Fatalf("story:\n got %s\nwant %s\n%s", got, want, raw)
		}
		first := rec.Events[1]
		if first.Attempt != 1 || rec.Events[2].Attempt != 2 || first.RetryAfterMS != 1000 || !strings.Contains(first.Reason, "503") {
			t.Errorf("first attempt %+v; want #1, Retry-After 1000 ms, a reason naming 503", first)
		}
		// One WARN on the first failure, with the reason.
		warns := in.lines(func(l map[string]any) bool {
			return l["level"] == "WARN" && l["sid"] == retried && strings.HasPrefix(l["msg"].(string), "delivery failed")
		})
		if len(warns) != 1 || !strings.Contains(warns[0]["reason"].(string), "503") {
			t.Errorf("first-failure warnings: %v; want one naming 503", warns)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		rec, raw := in.waitOutcome(t, expires, 10*time.Second)
		if rec.Outcome != "not_delivered" {
			t.Fatalf("outcome %q; want not_delivered\n%s", rec.Outcome, raw)
		}
		if len(rec.Results) != 1 || rec.Results[0].Outcome != "expired" || !strings.Contains(rec.Results[0].Reason, "503") {
			t.Errorf("results %+v; want short expired with the last reason (503)", rec.Results)
		}
		if last := rec.Events[len(rec.Events)-2]; last.Type != "expired" {
			t.Errorf("the event before finished is %q; want expired\n%s", last.Type, raw)
		}
		// The call's final line names the last reason per notifier.
		end := in.waitLogs(t, 1, 5*time.Second, "final line of "+expires, callbackDone(expires))[0]
		if r, _ := end["reasons"].(string); !strings.Contains(r, "short: ") || !strings.Contains(r, "503") {
			t.Errorf("final line reasons %q; want short's last reason", r)
		}
	})

	t.Run("fallback", func(t *testing.T) {
		rec, raw := in.waitOutcome(t, fellBack, 10*time.Second)
		if got, want := rec.story(), "callback::accepted attempt:failing:permanent fallback:: attempt:backup:delivered finished::delivered"; got != want {
			t.Fatalf("story:\n got %s\nwant %s\n%s", got, want, raw)
		}
		if fb := rec.Events[2]; fb.Route != "fb" || !strings.Contains(fb.Reason, "without reaching") {
			t.Errorf("fallback event %+v; want route fb and why", fb)
		}
	})

	t.Run("pruning", func(t *testing.T) {
		rec, raw := in.waitOutcome(t, pruning, 10*time.Second)
		if rec.Outcome != "delivered" || len(rec.Devices) != 2 {
			t.Fatalf("outcome %q, %d devices; want delivered, 2\n%s", rec.Outcome, len(rec.Devices), raw)
		}
		byOutcome := map[string]string{}
		for _, r := range rec.Results {
			byOutcome[r.Outcome] = r.Device.Token
		}
		if !strings.HasPrefix(byOutcome["delivered"], "aaaaaa") || !strings.HasPrefix(byOutcome["gone"], "cccccc") {
			t.Errorf("results by outcome %v; want the first token delivered and the second gone", byOutcome)
		}
		var pruned bool
		for _, e := range rec.Events {
			pruned = pruned || e.Type == "pruned" && e.Outcome == "removed" && strings.HasSuffix(e.Device.Token, "dddd")
		}
		if !pruned {
			t.Errorf("no pruned event for the gone token\n%s", raw)
		}
		for _, tok := range []string{tokOK, tokGone} {
			if strings.Contains(raw, tok) {
				t.Errorf("the record holds a whole token\n%s", raw)
			}
		}
		if in.tokens(t, "alice")[tokGone] {
			t.Error("the gone token is still registered")
		}
	})

	t.Run("list and CLI", func(t *testing.T) {
		code, _, body := do(t, "GET", in.adminURL+"/v1/calls?callee=alice", nil)
		if code != 200 || !strings.Contains(body, pruning) || strings.Contains(body, ok) {
			t.Fatalf("callee=alice: %d %s", code, body)
		}
		code, _, body = do(t, "GET", in.adminURL+"/v1/calls?status=duplicate", nil)
		if code != 200 || !strings.Contains(body, ok) || strings.Contains(body, retried) {
			t.Fatalf("status=duplicate: %d %s", code, body)
		}
		// explain shows what a query would do now, with the callee's
		// devices even when no route names a notifier of their kind.
		in.putDevice(t, "2809", "phone", "+818012345678")
		code, _, body = do(t, "GET", in.adminURL+"/v1/explain?"+query(sidN(tag, 99), "2809"), nil)
		if code != 200 || !strings.Contains(body, `"status":"accepted"`) || !strings.Contains(body, `"token":"+81…78"`) || !strings.Contains(body, "RINGSIDE_TEST_PAGER") {
			t.Errorf("explain: %d %s", code, body)
		}
		rc, out, errOut := run(t, dir, "calls", "-admin", in.adminURL)
		if rc != 0 || !strings.Contains(out, fellBack) || !strings.Contains(out, "not_delivered") {
			t.Fatalf("ringside calls: %d\n%s%s", rc, out, errOut)
		}
		rc, out, errOut = run(t, dir, "calls", "-admin", in.adminURL, retried)
		if rc != 0 || !strings.Contains(out, "attempt app #1: retry") || !strings.Contains(out, "attempt app #2: delivered") {
			t.Fatalf("ringside calls %s: %d\n%s%s", retried, rc, out, errOut)
		}
	})

	t.Run("resumed", func(t *testing.T) {
		in.accept(t, resumedSID, "2809")
		waitSeen(t, app, []string{resumedSID}, 10*time.Second)
		in.waitMetric(t, "ringside_journal_entries", 1, 10*time.Second)
		reap(in.kill(t))
		heal.Store(true)
		in2 := startConfig(t, path, apns.env())
		rec, raw := in2.waitOutcome(t, resumedSID, 15*time.Second)
		if !rec.Resumed || rec.Outcome != "delivered" || rec.Events[0].Type != "resumed" {
			t.Fatalf("resumed record: resumed %v outcome %q; want a resumed, delivered record\n%s", rec.Resumed, rec.Outcome, raw)
		}
		if len(rec.Routes) != 1 || rec.Routes[0] != "main" {
			t.Errorf("routes %v; want [main] from the journal", rec.Routes)
		}
		// Counted at the fake app: the resumed call rang once.
		if n := app.Delivered(resumedSID); n != 1 {
			t.Errorf("%s delivered %d times at the fake app; want once", resumedSID, n)
		}
	})
}
