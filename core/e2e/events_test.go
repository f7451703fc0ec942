package e2e

// LINE Planet's Call Event and Group Call Event callbacks through the real
// binary and its plugin processes: a missed call becomes an alert push and
// an FCM notification, a cancel reaches exactly the devices that rang, an
// end stops retries and fallback, a group call start rings the invitees,
// repeats are duplicates and malformed events are 400s naming the field.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// bundleID is the app's bundle id: the topic of alert pushes.
const bundleID = "com.example.planet"

// Device tokens of the event tests (hex, as APNs wants them).
const (
	evTokA = "a1a1a1000000000000000000000000000000000000000000000000000000a1a1"
	evTokB = "b2b2b2000000000000000000000000000000000000000000000000000000b2b2"
	evTokC = "c3c3c3000000000000000000000000000000000000000000000000000000c3c3"
	evTokD = "d4d4d4000000000000000000000000000000000000000000000000000000d4d4"
)

// eventURLs returns the URLs of ringside's Call Event and Group Call Event
// callbacks, as its "ringside serving" line names them.
func (in *instance) eventURLs(t *testing.T) (callURL, groupURL string) {
	t.Helper()
	l := in.lines(func(l map[string]any) bool { return l["msg"] == "ringside serving" })
	if len(l) == 0 {
		t.Fatal("no ringside serving line")
	}
	callURL, _ = l[0]["call_event"].(string)
	groupURL, _ = l[0]["group_call_event"].(string)
	if !strings.HasSuffix(callURL, "/call_evt_cb") || !strings.HasSuffix(groupURL, "/gcall_evt_cb") {
		t.Fatalf("serving line names call_event %q and group_call_event %q; want the default paths", callURL, groupURL)
	}
	return callURL, groupURL
}

// callEventQuery is a Call Event for sid, of a call from linecorp.com
// user 9286 to linecorp.com user toUser, with more key=value pairs.
func callEventQuery(sid, toUser string, kv ...string) string {
	q := "sid=" + sid + "&from_service_id=linecorp.com&from_user_id=9286&to_service_id=linecorp.com&to_user_id=" +
		url.QueryEscape(toUser) + "&type=A&stid=stid"
	for _, p := range kv {
		q += "&" + p
	}
	return q
}

// groupSID is a distinct valid group call sid (32 hex digits) for a
// test's tag and an index.
func groupSID(tag uint32, i int) string { return fmt.Sprintf("%08x%024x", tag, i) }

// groupEventQuery is a Group Call Event of room "room1" of linecorp.com,
// hosted by 9286, about linecorp.com user user, with more key=value pairs.
func groupEventQuery(sid, user string, kv ...string) string {
	q := "sid=" + sid + "&svc_id=linecorp.com&id=room1&user_svc_id=linecorp.com&user_id=" + url.QueryEscape(user) +
		"&host_svc_id=linecorp.com&host_id=9286"
	for _, p := range kv {
		q += "&" + p
	}
	return q
}

// eventAnswer is the 200 answer to an event.
type eventAnswer struct {
	SID    string
	Status string
	Route  *string
	Routes []string
}

// event sends the event query q to u and returns the status and body.
func event(t *testing.T, u, q string) (int, string) {
	t.Helper()
	code, _, body := do(t, "GET", u+"?"+q, nil)
	return code, body
}

// sendEvent sends the event query q to u, which must be answered 200
// with status, and returns the answer.
func sendEvent(t *testing.T, u, q, status string) eventAnswer {
	t.Helper()
	code, body := event(t, u, q)
	var a eventAnswer
	if code != 200 || json.Unmarshal([]byte(body), &a) != nil || a.Status != status {
		t.Fatalf("event %s?%s: %d %s; want 200 %s", u, q, code, body, status)
	}
	return a
}

// eventDone matches the final "callback" log line of the deliveries of an
// event with sid, routed first by route.
func eventDone(sid, route string) func(map[string]any) bool {
	return func(l map[string]any) bool {
		return l["msg"] == "callback" && l["sid"] == sid && l["route"] == route && l["notifiers"] != nil
	}
}

// pushesOf returns the pushes whose body has "sid": sid.
func pushesOf(t *testing.T, f *apnsPeer, sid string) []fakes.Push {
	t.Helper()
	var out []fakes.Push
	for _, p := range f.Pushes() {
		if pushBody(t, p.Body)["sid"] == sid {
			out = append(out, p)
		}
	}
	return out
}

// pushBody decodes a push's JSON body.
func pushBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("push body %s: %v", b, err)
	}
	return m
}

// tokensOf returns the sorted device tokens of pushes.
func tokensOf(pushes []fakes.Push) []string {
	var out []string
	for _, p := range pushes {
		out = append(out, p.Token)
	}
	slices.Sort(out)
	return out
}

// A missed call: the Call Event sends an alert push and an FCM
// notification message built from the templates; an answered call sends
// neither.
func TestE2ECallEventMissedCall(t *testing.T) {
	const tag = 0xe7e0001
	missed, answered := sidN(tag, 1), sidN(tag, 2)
	apns := startAPNs(t, fakes.APNsOptions{})
	fcm, creds := startFCM(t, fakes.FCMOptions{})
	key := fmt.Sprintf("key_file = %q", apns.keyFile)
	apnsAuth := []string{fmt.Sprintf("team_id = %q", fakes.APNsTeamID), fmt.Sprintf("key_id = %q", fakes.APNsKeyID), key,
		fmt.Sprintf("endpoint = %q", apns.URL)}
	fcmAuth := []string{fmt.Sprintf("credentials_file = %q", creds), fmt.Sprintf("endpoint = %q", fcm.Endpoint())}
	cfg := testServer +
		notifierBlock("ios", "apns", append(apnsAuth, fmt.Sprintf("topic = %q", apnsTopic))...) +
		notifierBlock("android", "fcm", fcmAuth...) +
		notifierBlock("ios_missed", "apns", append(apnsAuth,
			fmt.Sprintf("topic = %q", bundleID),
			`devices = "apns_alert"`,
			`push_type = "alert"`,
			`title = "Missed call"`,
			`body = "You missed a call from ${call.from_user_id}"`,
			`thread_id = "missed-calls"`,
			`collapse_id = call.sid`)...) +
		notifierBlock("android_missed", "fcm", append(fcmAuth,
			`message = "notification"`,
			`title = "Missed call"`,
			`body = "You missed a call from ${call.from_user_id}"`,
			`tag = call.sid`,
			`channel_id = "missed_calls"`)...) +
		routeTo("ring", "", "ios", "android") +
		onRoute("missed", "call_event", `when = call.outcome == "missed"`, `notify = ["ios_missed", "android_missed"]`)
	in := start(t, cfg, apns.env())
	callURL, _ := in.eventURLs(t)
	in.putDevice(t, "2809", "apns", evTokA)
	in.putDevice(t, "2809", "apns_alert", evTokB)
	in.putDevice(t, "2809", "fcm", fcmDeviceToken)

	// The ring: a VoIP push and an FCM data message.
	in.accept(t, missed, "2809")
	in.waitLogs(t, 1, 10*time.Second, "ring of "+missed, callbackDone(missed))
	if n, m := len(apns.Pushes()), len(fcm.Sends()); n != 1 || m != 1 {
		t.Fatalf("the ring sent %d pushes and %d FCM messages; want 1 and 1", n, m)
	}

	// Nobody answered: terminate 18, duration 0.
	a := sendEvent(t, callURL, callEventQuery(missed, "2809", "duration=0", "terminate=18", "setup_time=1764800000", "end_time=1764800030"), "accepted")
	if a.SID != missed || a.Route == nil || *a.Route != "missed" || !reflect.DeepEqual(a.Routes, []string{"missed"}) {
		t.Errorf("answer %+v; want sid %s, route missed", a, missed)
	}
	in.waitLogs(t, 1, 10*time.Second, "missed-call deliveries", eventDone(missed, "missed"))

	pushes := apns.Pushes()
	if len(pushes) != 2 {
		t.Fatalf("%d pushes; want the ring and one alert", len(pushes))
	}
	alert := pushes[1]
	if alert.Token != evTokB {
		t.Errorf("the alert went to %s; want the apns_alert device %s", alert.Token, evTokB)
	}
	for h, want := range map[string]string{"apns-push-type": "alert", "apns-topic": bundleID, "apns-priority": "10", "apns-collapse-id": missed} {
		if got := alert.Header.Get(h); got != want {
			t.Errorf("alert %s: %q; want %q", h, got, want)
		}
	}
	body := pushBody(t, alert.Body)
	aps, _ := body["aps"].(map[string]any)
	alertDict, _ := aps["alert"].(map[string]any)
	if alertDict["title"] != "Missed call" || alertDict["body"] != "You missed a call from 9286" || aps["thread-id"] != "missed-calls" {
		t.Errorf("aps %v; want alert {title Missed call, body You missed a call from 9286}, thread-id missed-calls", aps)
	}
	wantKeys := lineApp(map[string]any{"sid": missed, "event": "call_end", "outcome": "missed"})
	for k, v := range wantKeys {
		if body[k] != v {
			t.Errorf("alert body[%q] = %v; want %v", k, body[k], v)
		}
	}
	if _, ok := body["cc_param"]; ok {
		t.Errorf("alert body has cc_param: %s", alert.Body)
	}

	sends := fcm.Sends()
	if len(sends) != 2 {
		t.Fatalf("%d FCM messages; want the ring and one notification", len(sends))
	}
	var msg struct {
		Message struct {
			Token        string
			Data         map[string]string
			Notification map[string]string
			Android      struct {
				Notification map[string]string
			}
		}
	}
	if err := json.Unmarshal(sends[1].Body, &msg); err != nil {
		t.Fatalf("FCM message: %v\n%s", err, sends[1].Body)
	}
	m := msg.Message
	if m.Token != fcmDeviceToken {
		t.Errorf("FCM token %q", m.Token)
	}
	if want := map[string]string{"title": "Missed call", "body": "You missed a call from 9286"}; !reflect.DeepEqual(m.Notification, want) {
		t.Errorf("notification %v; want %v", m.Notification, want)
	}
	if n := m.Android.Notification; n["tag"] != missed || n["channel_id"] != "missed_calls" {
		t.Errorf("android.notification %v; want tag %s, channel_id missed_calls", n, missed)
	}
	for k, v := range wantKeys {
		if m.Data[k] != v {
			t.Errorf("FCM data[%q] = %q; want %v", k, m.Data[k], v)
		}
	}
	if _, ok := m.Data["cc_param"]; ok {
		t.Errorf("FCM data has cc_param: %v", m.Data)
	}
	in.waitMetric(t, `ringside_call_outcomes_total{notifier="ios",outcome="missed",route="ring"}`, 1, 5*time.Second)

	// Answered: no missed-call push, no notification.
	in.accept(t, answered, "2809")
	in.waitLogs(t, 1, 10*time.Second, "ring of "+answered, callbackDone(answered))
	// Answered 2 s after the ring (LINE's times are whole seconds).
	startAt := time.Now().Unix() + 2
	a = sendEvent(t, callURL, callEventQuery(answered, "2809", "duration=42", "terminate=16",
		fmt.Sprintf("setup_time=%d", startAt-2), fmt.Sprintf("start_time=%d", startAt), fmt.Sprintf("end_time=%d", startAt+42)), "unrouted")
	if a.Route != nil || len(a.Routes) != 0 {
		t.Errorf("answered call's answer %+v; want no route", a)
	}
	in.waitMetric(t, `ringside_call_outcomes_total{notifier="ios",outcome="answered",route="ring"}`, 1, 5*time.Second)
	in.waitMetric(t, `ringside_ring_to_answer_seconds_count`, 1, 5*time.Second)
	_, raw, _ := in.callLog(t, answered)
	var rec struct {
		End *struct {
			Outcome      string
			Duration     int64
			RingToAnswer float64 `json:"ring_to_answer_seconds"`
		}
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		t.Fatal(err)
	}
	if e := rec.End; e == nil || e.Outcome != "answered" || e.Duration != 42 || e.RingToAnswer < 1 || e.RingToAnswer > 5 {
		t.Errorf("answered call's end %+v; want answered, duration 42, ring to answer about 2 s\n%s", e, raw)
	}
	if n, m := len(apns.Pushes()), len(fcm.Sends()); n != 3 || m != 3 {
		t.Errorf("after the answered call: %d pushes and %d FCM messages; want 3 and 3 (its ring only)", n, m)
	}
	for _, p := range apns.Pushes() {
		if p.Header.Get("apns-push-type") == "alert" && pushBody(t, p.Body)["sid"] == answered {
			t.Errorf("an alert push for the answered call: %s", p.Body)
		}
	}
}

// A cancel with rung = true goes to exactly the devices that rang for the
// sid: not to a device registered after the ring, nor to another user's.
func TestE2ECallEventCancelsRung(t *testing.T) {
	const tag = 0xe7e0002
	sid, otherSID := sidN(tag, 1), sidN(tag, 2)
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	cfg := testServer + apnsNotifier(apns.keyFile, apns.URL, apnsTopic) +
		routeTo("ring", "", "ios") +
		onRoute("cancel", "call_event", `when = call.outcome != "answered"`, `rung = true`, `notify = ["ios"]`)
	in := start(t, cfg, apns.env())
	callURL, _ := in.eventURLs(t)
	in.putDevice(t, "2809", "apns", evTokA)
	in.putDevice(t, "other", "apns", evTokC)

	in.accept(t, sid, "2809")
	in.accept(t, otherSID, "other")
	in.waitLogs(t, 1, 10*time.Second, "ring of "+sid, callbackDone(sid))
	in.waitLogs(t, 1, 10*time.Second, "ring of "+otherSID, callbackDone(otherSID))
	// Registered after the ring: it never rang for sid.
	in.putDevice(t, "2809", "apns", evTokB)

	a := sendEvent(t, callURL, callEventQuery(sid, "2809", "duration=0", "terminate=77", "releaser_type=2"), "accepted")
	if a.Route == nil || *a.Route != "cancel" {
		t.Errorf("answer %+v; want route cancel", a)
	}
	in.waitLogs(t, 1, 10*time.Second, "cancel of "+sid, eventDone(sid, "cancel"))
	var cancels []fakes.Push
	for _, p := range pushesOf(t, apns, sid) {
		if pushBody(t, p.Body)["event"] == "call_end" {
			cancels = append(cancels, p)
		}
	}
	if got := tokensOf(cancels); !reflect.DeepEqual(got, []string{evTokA}) {
		t.Fatalf("cancels went to %v; want only the device that rang, %s", got, evTokA)
	}
	c := cancels[0]
	if c.Header.Get("apns-push-type") != "voip" || c.Header.Get("apns-topic") != apnsTopic {
		t.Errorf("cancel headers %v; want a VoIP push to %s", c.Header, apnsTopic)
	}
	body := pushBody(t, c.Body)
	if body["outcome"] != "canceled" || body["app_callee_uid"] != "2809" {
		t.Errorf("cancel body %s; want outcome canceled, callee 2809", c.Body)
	}
	if n := len(apns.Pushes()); n != 3 {
		t.Errorf("%d pushes; want 3: two rings and one cancel", n)
	}
	for _, p := range apns.Pushes() {
		if p.Token == evTokB {
			t.Errorf("a push reached the device registered after the ring: %s", p.Body)
		}
	}
}

// A Call Event stops the sid's deliveries still retrying and its pending
// fallback: they count as ended, and the call log tells how the call
// ended.
func TestE2ECallEventStopsRetries(t *testing.T) {
	const tag = 0xe7e0003
	sid := sidN(tag, 1)
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic, Answer: func(*fakes.Push) fakes.Answer {
		return fakes.Answer{Status: 503, Reason: "ServiceUnavailable"}
	}})
	hook := startWebhook(t, fakes.WebhookOptions{})
	const fallbackAfter = 2 * time.Second
	cfg := testServer + fmt.Sprintf("delivery {\n  fallback_after = %q\n}\n", fallbackAfter) +
		apnsNotifier(apns.keyFile, apns.URL, apnsTopic) +
		webhookNotifier("backup", hook.URL+"/backup") +
		fallbackRoute("ring", "", "ios", "backup")
	in := start(t, cfg, apns.env())
	callURL, _ := in.eventURLs(t)
	in.putDevice(t, "2809", "apns", evTokA)

	rang := time.Now()
	in.accept(t, sid, "2809")
	apnsWaitPushes(t, apns, 2) // the first attempt and a retry
	sendEvent(t, callURL, callEventQuery(sid, "2809", "duration=0", "terminate=77"), "unrouted")
	in.waitMetric(t, `ringside_deliveries_total{notifier="ios",outcome="ended"}`, 1, 5*time.Second)

	// No push after the end, and no fallback once fallback_after is past.
	// A push the end cancelled on its way may still land: count from when
	// the fake holds none.
	eventually(t, 5*time.Second, "no push in flight at the fake APNs", func() bool { return apns.InFlight() == 0 })
	n := len(apns.Pushes())
	time.Sleep(max(2*time.Second, time.Until(rang.Add(fallbackAfter+500*time.Millisecond))))
	if m := len(apns.Pushes()); m != n {
		t.Errorf("%d pushes after the end; want none", m-n)
	}
	if r := hook.Requests(""); len(r) != 0 {
		t.Errorf("the fallback ran after the end: %d webhook requests", len(r))
	}
	if v := in.metric(t, `ringside_fallbacks_total{reason="timeout",route="ring"}`); v != 0 {
		t.Errorf("fallbacks by timeout: %v; want 0", v)
	}

	rec, raw := in.waitOutcome(t, sid, 5*time.Second)
	var end struct {
		End *struct {
			Outcome   string
			Terminate int
			Duration  int64
			Stopped   int
		}
	}
	if err := json.Unmarshal([]byte(raw), &end); err != nil {
		t.Fatal(err)
	}
	if end.End == nil || end.End.Outcome != "canceled" || end.End.Terminate != 77 || end.End.Stopped != 1 {
		t.Errorf("end %+v; want outcome canceled, terminate 77, stopped 1\n%s", end.End, raw)
	}
	story := rec.story()
	for _, want := range []string{"ended:ios:ended", "call_end::canceled"} {
		if !strings.Contains(story, want) {
			t.Errorf("story %s; want %s in it\n%s", story, want, raw)
		}
	}
	var fellBack bool
	for _, e := range rec.Events {
		if e.Type == "ended" && e.Route == "ring" && e.Notifier == "" {
			fellBack = true
		}
		if e.Type == "fallback" {
			t.Errorf("a fallback event after the end: %+v", e)
		}
	}
	if !fellBack {
		t.Errorf("no ended event for ring's fallback\n%s", raw)
	}
}

// A group call start rings the devices of the users its users expression
// names: the invitees, from the event's extra key.
func TestE2EGroupCallEventInvitees(t *testing.T) {
	const tag = 0xe7e0004
	sid := groupSID(tag, 1)
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	cfg := testServer + apnsNotifier(apns.keyFile, apns.URL, apnsTopic) +
		onRoute("group", "group_call_event", `when = call.sc == "S"`,
			`users = [for u in split(",", call.extra.invitees) : { service_id = call.svc_id, user_id = u }]`,
			`notify = ["ios"]`)
	in := start(t, cfg, apns.env())
	_, groupURL := in.eventURLs(t)
	in.putDevice(t, "alice", "apns", evTokA)
	in.putDevice(t, "bob", "apns", evTokB)
	in.putDevice(t, "dave", "apns", evTokD) // not invited
	// carol is invited but has no device.

	a := sendEvent(t, groupURL, groupEventQuery(sid, "9286", "sc=S", "msc=C", "media_type=V", "online=1",
		"ts=1764800000123", "invitees=alice,bob,carol"), "accepted")
	if a.Route == nil || *a.Route != "group" {
		t.Errorf("answer %+v; want route group", a)
	}
	in.waitLogs(t, 1, 10*time.Second, "group call deliveries", eventDone(sid, "group"))
	pushes := apns.Pushes()
	if got := tokensOf(pushes); !reflect.DeepEqual(got, []string{evTokA, evTokB}) {
		t.Fatalf("pushes to %v; want alice's and bob's devices only", got)
	}
	want := map[string]any{
		"sid": sid, "event": "group_call", "room_svc_id": "linecorp.com", "room_id": "room1",
		"app_user_sid": "linecorp.com", "app_user_uid": "9286", "app_host_sid": "linecorp.com", "app_host_uid": "9286",
		"sc": "S", "msc": "C",
	}
	for _, p := range pushes {
		body := pushBody(t, p.Body)
		for k, v := range want {
			if body[k] != v {
				t.Errorf("push to %s: body[%q] = %v; want %v", p.Token, k, body[k], v)
			}
		}
		if _, ok := body["cc_param"]; ok {
			t.Errorf("group push has cc_param: %s", p.Body)
		}
	}

	// A change in the room (sc=C) is not a start: nothing is sent.
	sendEvent(t, groupURL, groupEventQuery(sid, "alice", "sc=C", "msc=C", "ts=1764800001000", "invitees=alice,bob"), "unrouted")
	if n := len(apns.Pushes()); n != 2 {
		t.Errorf("%d pushes after a change event; want still 2", n)
	}
}

// The same event twice is a duplicate and rings once; a group event
// differing in ts is a new one.
func TestE2EEventDuplicates(t *testing.T) {
	const tag = 0xe7e0005
	sid, gsid := sidN(tag, 1), groupSID(tag, 1)
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	cfg := testServer + apnsNotifier(apns.keyFile, apns.URL, apnsTopic) +
		onRoute("end", "call_event", `notify = ["ios"]`) +
		onRoute("group", "group_call_event", `users = { service_id = call.user_svc_id, user_id = call.user_id }`, `notify = ["ios"]`)
	in := start(t, cfg, apns.env())
	callURL, groupURL := in.eventURLs(t)
	in.putDevice(t, "2809", "apns", evTokA)
	in.putDevice(t, "alice", "apns", evTokB)

	q := callEventQuery(sid, "2809", "duration=0", "terminate=18")
	sendEvent(t, callURL, q, "accepted")
	in.waitLogs(t, 1, 10*time.Second, "call event deliveries", eventDone(sid, "end"))
	sendEvent(t, callURL, q, "duplicate")
	// A repeat with other end fields is still the same sid's event.
	sendEvent(t, callURL, callEventQuery(sid, "2809", "duration=0", "terminate=77"), "duplicate")
	if got := tokensOf(pushesOf(t, apns, sid)); !reflect.DeepEqual(got, []string{evTokA}) {
		t.Errorf("call event pushes to %v; want one, to %s", got, evTokA)
	}

	g := groupEventQuery(gsid, "alice", "sc=C", "msc=C", "ts=1764800000123")
	sendEvent(t, groupURL, g, "accepted")
	in.waitLogs(t, 1, 10*time.Second, "group event deliveries", eventDone(gsid, "group"))
	sendEvent(t, groupURL, g, "duplicate")
	sendEvent(t, groupURL, groupEventQuery(gsid, "alice", "sc=C", "msc=C", "ts=1764800000124"), "accepted")
	in.waitLogs(t, 2, 10*time.Second, "second group event deliveries", eventDone(gsid, "group"))
	if got := tokensOf(pushesOf(t, apns, gsid)); !reflect.DeepEqual(got, []string{evTokB, evTokB}) {
		t.Errorf("group event pushes to %v; want two (the first and the later ts), to %s", got, evTokB)
	}
	if n := len(apns.Pushes()); n != 3 {
		t.Errorf("%d pushes; want 3", n)
	}
	in.waitMetric(t, `ringside_dedup_hits_total`, 3, 5*time.Second)
}

// A malformed event is a 400 naming the first key that breaks its rule;
// an unknown key is kept, not refused.
func TestE2EEventMalformed(t *testing.T) {
	const tag = 0xe7e0006
	sid, gsid := sidN(tag, 1), groupSID(tag, 1)
	apns := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	in := start(t, apnsConfig(apns.keyFile, apns.URL, apnsTopic), apns.env())
	callURL, groupURL := in.eventURLs(t)
	noTo := strings.Replace(callEventQuery(sid, "2809"), "&to_user_id=2809", "", 1)

	tests := []struct {
		name, url, query, field string
	}{
		{"call sid not a UUID", callURL, callEventQuery("151ad995749c4a28893f636700469db1", "2809"), "sid"},
		{"terminate not a number", callURL, callEventQuery(sid, "2809", "terminate=abc"), "terminate"},
		{"missing to_user_id", callURL, noTo, "to_user_id"},
		{"duration negative", callURL, callEventQuery(sid, "2809", "duration=-1"), "duration"},
		{"releaser_type out of range", callURL, callEventQuery(sid, "2809", "releaser_type=6"), "releaser_type"},
		{"group sid with hyphens", groupURL, groupEventQuery(sidN(tag, 2), "alice", "sc=S"), "sid"},
		{"sc X", groupURL, groupEventQuery(gsid, "alice", "sc=X"), "sc"},
		{"group sc missing", groupURL, groupEventQuery(gsid, "alice"), "sc"},
		{"msc Z", groupURL, groupEventQuery(gsid, "alice", "sc=S", "msc=Z"), "msc"},
		{"ts not a number", groupURL, groupEventQuery(gsid, "alice", "sc=S", "ts=soon"), "ts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := event(t, tc.url, tc.query)
			var e struct{ Error, Field, Message string }
			if code != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Error != "invalid_callback" || e.Field != tc.field {
				t.Errorf("%d %s; want 400 invalid_callback naming %q", code, body, tc.field)
			}
		})
	}

	// Unknown keys are kept for rules, not refused: the events are valid
	// (no route handles them here).
	t.Run("unknown key", func(t *testing.T) {
		sendEvent(t, callURL, callEventQuery(sidN(tag, 3), "2809", "terminate=16", "x_unknown=1"), "unrouted")
		sendEvent(t, groupURL, groupEventQuery(groupSID(tag, 3), "alice", "sc=S", "x_unknown=1"), "unrouted")
	})
	if n := len(apns.Pushes()); n != 0 {
		t.Errorf("%d pushes; want none", n)
	}
}
