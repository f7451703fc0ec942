package e2e

// Feedback to the app server through the real binary: a token APNs
// answers 410 Unregistered (pruned), one it answers 400 BadDeviceToken
// (a permanent failure), one delivered, and a call that expires without
// any delivery each reach a signed webhook receiver once, as outcome
// events in batches.

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// feedbackEvent is an outcome event as the app server reads it.
type feedbackEvent struct {
	Type       string            `json:"type"`
	Time       time.Time         `json:"time"`
	SID        string            `json:"sid"`
	ServiceID  string            `json:"service_id"`
	UserID     string            `json:"user_id"`
	Kind       string            `json:"kind"`
	Token      string            `json:"token"`
	Notifier   string            `json:"notifier"`
	Reason     string            `json:"reason"`
	ProviderID string            `json:"provider_id"`
	Caller     *feedbackParty    `json:"caller"`
	Callee     *feedbackParty    `json:"callee"`
	Reasons    map[string]string `json:"reasons"`
}

// feedbackParty is a call event's caller or callee.
type feedbackParty struct {
	ServiceID string `json:"service_id"`
	UserID    string `json:"user_id"`
}

// feedbackEvents are the events of every request hook received, after
// checking each is a signed, accepted batch.
func feedbackEvents(t *testing.T, hook *fakes.Webhook) []feedbackEvent {
	t.Helper()
	var out []feedbackEvent
	for _, r := range hook.Requests("") {
		if r.SigErr != nil || r.Header.Get("webhook-signature") == "" {
			t.Errorf("request %s: signature %q does not verify: %v", r.ID, r.Header.Get("webhook-signature"), r.SigErr)
		}
		var body struct {
			Payload struct {
				Type   string          `json:"type"`
				Events []feedbackEvent `json:"events"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil || body.Payload.Type != "ringside.feedback" {
			t.Fatalf("request %s: %v; payload type %q; want ringside.feedback\n%s", r.ID, err, body.Payload.Type, r.Body)
		}
		out = append(out, body.Payload.Events...)
	}
	return out
}

func TestE2EFeedback(t *testing.T) {
	const tag = 0xfeedb
	ringing, expiring := sidN(tag, 1), sidN(tag, 2)
	const tokGone = "aaaaaa1111111111111111111111111111111111111111111111111111bbbb"
	const tokBad = "cccccc2222222222222222222222222222222222222222222222222222dddd"
	const tokOK = "eeeeee3333333333333333333333333333333333333333333333333333ffff"
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic, Answer: func(p *fakes.Push) fakes.Answer {
		switch p.Token {
		case tokGone:
			return fakes.Answer{Status: 410, Reason: "Unregistered", Timestamp: time.Now().Add(time.Hour).UnixMilli()}
		case tokBad:
			return fakes.Answer{Status: 400, Reason: "BadDeviceToken"}
		}
		return fakes.Answer{}
	}})
	peer := startWebhook(t, fakes.WebhookOptions{Answer: answerStatus(503)})
	events := startWebhook(t, fakes.WebhookOptions{Secret: hookSecret})
	conf := func(flushAfter string) string {
		return testServer +
			apnsNotifier(apns.keyFile, apns.URL, apnsTopic) +
			webhookNotifier("short", peer.URL+"/short", `ttl = "2s"`) +
			webhookNotifier("app_events", events.URL+"/ringside/events", fmt.Sprintf("secret = %q", hookSecret)) +
			routeTo("phones", `call.to_user_id == "alice"`, "ios") +
			routeTo("short", `call.to_user_id == "short"`, "short") + fmt.Sprintf(`
feedback {
  notifier    = "app_events"
  events      = ["pruned", "failed", "expired", "delivered"]
  flush_after = %q
}
`, flushAfter)
	}
	in := start(t, conf("50ms"), apns.env())
	for _, tok := range []string{tokGone, tokBad, tokOK} {
		in.putDevice(t, "alice", "apns", tok)
	}
	in.accept(t, ringing, "alice")
	in.accept(t, expiring, "short")

	byType := map[string][]feedbackEvent{}
	eventually(t, 15*time.Second, "four outcome events at the app server", func() bool {
		clear(byType)
		for _, e := range feedbackEvents(t, events) {
			byType[e.Type] = append(byType[e.Type], e)
		}
		return len(byType) == 4
	}, func() string { return fmt.Sprint(byType) })
	// Anything sent twice would arrive within a few flushes.
	time.Sleep(300 * time.Millisecond)
	clear(byType)
	for _, e := range feedbackEvents(t, events) {
		byType[e.Type] = append(byType[e.Type], e)
	}
	for _, typ := range []string{"device.pruned", "delivery.failed", "delivery.delivered", "call.not_delivered"} {
		if n := len(byType[typ]); n != 1 {
			t.Fatalf("%s events: got %d; want 1\n%v", typ, n, byType)
		}
	}

	t.Run("pruned", func(t *testing.T) {
		e := byType["device.pruned"][0]
		if e.SID != ringing || e.ServiceID != "linecorp.com" || e.UserID != "alice" || e.Kind != "apns" || e.Token != tokGone || e.Notifier != "ios" || e.Time.IsZero() {
			t.Errorf("got %+v; want %s, linecorp.com, alice, apns, the whole token %s, ios, a time", e, ringing, tokGone)
		}
		if in.tokens(t, "alice")[tokGone] {
			t.Error("the pruned token is still registered")
		}
	})
	t.Run("failed", func(t *testing.T) {
		e := byType["delivery.failed"][0]
		if e.SID != ringing || e.UserID != "alice" || e.Kind != "apns" || e.Token != tokBad || !strings.Contains(e.Reason, "BadDeviceToken") {
			t.Errorf("got %+v; want %s, alice, apns, %s, a reason naming BadDeviceToken", e, ringing, tokBad)
		}
	})
	t.Run("delivered", func(t *testing.T) {
		e := byType["delivery.delivered"][0]
		if e.SID != ringing || e.UserID != "alice" || e.Token != tokOK || e.ProviderID == "" {
			t.Errorf("got %+v; want %s, alice, %s, a provider id", e, ringing, tokOK)
		}
	})
	t.Run("not delivered", func(t *testing.T) {
		e := byType["call.not_delivered"][0]
		if e.SID != expiring || e.Callee == nil || e.Callee.UserID != "short" || e.Callee.ServiceID != "linecorp.com" || e.Caller == nil || e.Caller.UserID != "9286" ||
			!strings.Contains(e.Reasons["short"], "503") {
			t.Errorf("got %+v; want %s from 9286 to short, the reason of short naming 503", e, expiring)
		}
	})
	// A reload that changes the block says it applies after a restart;
	// the events go on.
	t.Run("reload", func(t *testing.T) {
		replaceFile(t, in.config, []byte(conf("60ms")))
		in.signal(t, syscall.SIGHUP)
		in.waitLogs(t, 1, 10*time.Second, "config reloaded", func(l map[string]any) bool { return l["msg"] == "config reloaded" })
		if warned := in.lines(func(l map[string]any) bool {
			return strings.Contains(fmt.Sprint(l["msg"]), "only after a restart") && strings.Contains(fmt.Sprint(l["settings"]), "feedback")
		}); len(warned) != 1 {
			t.Errorf("restart-only warnings naming feedback: got %d; want 1", len(warned))
		}
		again := sidN(tag, 3)
		in.accept(t, again, "alice")
		eventually(t, 10*time.Second, "the delivery after the reload reported", func() bool {
			for _, e := range feedbackEvents(t, events) {
				if e.Type == "delivery.delivered" && e.SID == again && e.Token == tokOK {
					return true
				}
			}
			return false
		})
	})
	t.Run("metrics", func(t *testing.T) {
		if d := in.metric(t, `ringside_feedback_batches_total{result="delivered"}`); d < 1 || int(d) != len(events.Requests("")) {
			t.Errorf("batches delivered: got %v; want %d, one per request", d, len(events.Requests("")))
		}
		for _, series := range []string{`ringside_feedback_batches_total{result="dropped"}`, `ringside_feedback_events_dropped_total`} {
			if v := in.metric(t, series); v != 0 {
				t.Errorf("%s: got %v; want 0", series, v)
			}
		}
	})
}

// An app server that hangs on the feedback requests slows no call: while
// it holds every answer, callbacks are answered and ring at the fake APNs;
// once it answers, each delivery's event arrives once — none lost, none
// duplicated.
func TestE2EFeedbackSinkHangs(t *testing.T) {
	const tag = 0xfeedc
	const tok = "eeeeee3333333333333333333333333333333333333333333333333333ffff"
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	defer release()
	events := startWebhook(t, fakes.WebhookOptions{Secret: hookSecret, Answer: func(*fakes.WebhookRequest) fakes.WebhookAnswer {
		return fakes.WebhookAnswer{Status: 200, Hold: hold}
	}})
	in := start(t, testServer+
		apnsNotifier(apns.keyFile, apns.URL, apnsTopic)+
		webhookNotifier("app_events", events.URL+"/ringside/events", fmt.Sprintf("secret = %q", hookSecret))+
		routeTo("phones", "", "ios")+`
feedback {
  notifier    = "app_events"
  events      = ["delivered"]
  flush_after = "20ms"
  batch       = 5
}
`, apns.env())
	in.putDevice(t, "2809", "apns", tok)

	const n = 40
	sids := in.acceptN(t, tag, n, "2809")
	eventually(t, 10*time.Second, "every call rings while the app server hangs", func() bool {
		return len(apns.Pushes()) >= n
	})
	if got := len(events.Requests("")); got > 1 {
		t.Fatalf("%d feedback requests while the first was held; want one batch in flight", got)
	}
	release()
	bySID := map[string]int{}
	eventually(t, 15*time.Second, "a delivered event per call", func() bool {
		clear(bySID)
		for _, e := range feedbackEvents(t, events) {
			bySID[e.SID]++
		}
		return len(bySID) == n
	}, func() string { return fmt.Sprint(len(bySID), " of ", n) })
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive by now
	clear(bySID)
	for _, e := range feedbackEvents(t, events) {
		bySID[e.SID]++
	}
	for _, sid := range sids {
		if bySID[sid] != 1 {
			t.Errorf("%s: %d delivered events; want 1", sid, bySID[sid])
		}
	}
	if got := in.metric(t, "ringside_feedback_events_dropped_total"); got != 0 {
		t.Errorf("dropped %v events; want 0 (the queue holds them)", got)
	}
}
