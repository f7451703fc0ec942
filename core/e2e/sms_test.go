package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

const (
	smsAuthToken = "e2e-twilio-auth-token-0123456789"
	smsFrom      = "+15005550006"
	smsPhone     = "+818012345678"
)

// smsNotifier is an sms notifier named sms to the fake Twilio at endpoint,
// with body.
func smsNotifier(endpoint, body string) string {
	return notifierBlock("sms", "sms",
		fmt.Sprintf("account_sid = %q", fakes.TwilioAccountSID),
		fmt.Sprintf("auth_token  = %q", smsAuthToken),
		fmt.Sprintf("from        = %q", smsFrom),
		fmt.Sprintf("endpoint    = %q", endpoint),
		"body        = "+body)
}

// smsConfig routes every call to the console plugin, with SMS as the
// fallback.
func smsConfig(t *testing.T, twilioURL string) string {
	return testServer + consolePluginBlock(consolePlugin(t)) + notifierBlock("desk", "console") +
		smsNotifier(twilioURL, `"Incoming ${call.type == "V" ? "video" : "audio"} call from ${call.from_user_id}: ${substr(call.sid, 0, 8)}"`) +
		fallbackRoute("all", "", "desk", "sms")
}

// startSMS starts a fake Twilio for the account of smsNotifier.
func startSMS(t *testing.T, answers map[string][]int) *fakes.Twilio {
	t.Helper()
	return startTwilio(t, fakes.TwilioOptions{AuthToken: smsAuthToken}, answers)
}

// smsWait waits until the fake Twilio has answered n requests. (It records
// a request when it arrives and its status once the answer is written, so
// waiting for the count alone races with the answer.)
func smsWait(t *testing.T, tw *fakes.Twilio, n int) []fakes.SMS {
	t.Helper()
	var msgs []fakes.SMS
	eventually(t, 15*time.Second, fmt.Sprintf("%d answered requests at the fake Twilio", n), func() bool {
		msgs = tw.Messages()
		answered := 0
		for _, m := range msgs {
			if m.Status != 0 {
				answered++
			}
		}
		return answered >= n
	})
	return msgs
}

// A callee with only a phone: the console notifier reaches no device, so the
// route's SMS fallback texts the phone through Twilio with the rendered body.
func TestE2ESMSFallback(t *testing.T) {
	tw := startSMS(t, nil)
	in := start(t, smsConfig(t, tw.URL))
	in.putDevice(t, "2809", "phone", smsPhone)

	ec, out, errOut := run(t, in.dir, "explain", "-config", in.config, "-json", "/notify_cb?"+lineExample)
	if ec != 0 {
		t.Fatalf("explain: exit %d\n%s%s", ec, out, errOut)
	}
	var sawSMS bool
	for _, n := range explained(t, out).Notifiers {
		if n.Name == "sms" {
			sawSMS = true
			if n.Plugin != "sms" || n.Role != "fallback" || !n.Active || len(n.Devices) != 1 || n.Devices[0].Kind != "phone" {
				t.Errorf("explain sms: %+v", n)
			}
		}
	}
	if !sawSMS || strings.Contains(out, smsPhone) {
		t.Errorf("explain: want the sms fallback, without the whole number:\n%s", out)
	}

	in.accept(t, lineSID, "2809")
	r := smsWait(t, tw, 1)[0]
	if r.Path != "/2010-04-01/Accounts/"+tw.AccountSID+"/Messages.json" || r.User != tw.AccountSID || r.Pass != smsAuthToken || r.Status != 201 {
		t.Errorf("request: %+v", r)
	}
	want := url.Values{"To": {smsPhone}, "From": {smsFrom}, "Body": {"Incoming audio call from 9286: 151ad995"}}
	if r.Form.Encode() != want.Encode() {
		t.Errorf("form: got %v; want %v", r.Form, want)
	}
	in.waitMetric(t, `ringside_deliveries_total{notifier="sms",outcome="delivered"}`, 1, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := len(tw.Messages()); n != 1 {
		t.Errorf("fake Twilio saw %d requests; want 1", n)
	}
	logs := in.logs.String()
	for _, secret := range []string{smsPhone, smsAuthToken, lineParam} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

// Twilio's 429 is retried after its Retry-After; 21211 (invalid To) is
// permanent and sent once.
func TestE2ESMSErrors(t *testing.T) {
	const busy, invalid = "+818000000429", "+818000021211"
	tw := startSMS(t, map[string][]int{busy: {429}, invalid: {400, 400, 400}})
	in := start(t, smsConfig(t, tw.URL))
	in.putDevice(t, "1001", "phone", busy)
	in.putDevice(t, "1002", "phone", invalid)
	for i, user := range []string{"1001", "1002"} {
		in.accept(t, fmt.Sprintf("151ad995-749c-4a28-893f-63670046900%d", i), user)
	}
	in.waitMetric(t, `ringside_deliveries_total{notifier="sms",outcome="delivered"}`, 1, 10*time.Second)
	in.waitMetric(t, `ringside_deliveries_total{notifier="sms",outcome="permanent"}`, 1, 10*time.Second)
	var toBusy, toInvalid int
	for _, r := range tw.Messages() {
		switch r.Form.Get("To") {
		case busy:
			toBusy++
		case invalid:
			toInvalid++
		}
	}
	if toBusy != 2 || toInvalid != 1 {
		t.Errorf("requests: %d to the busy number (want 2: 429, then 201), %d to the invalid one (want 1)", toBusy, toInvalid)
	}
	for _, secret := range []string{busy, invalid, smsAuthToken} {
		if strings.Contains(in.logs.String(), secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

// The body template is type-checked at load: a list, or a call field that
// does not exist, is refused at its line.
func TestE2ESMSValidate(t *testing.T) {
	for _, bad := range []string{`["call from", call.from_user_id]`, `"call from ${call.from_user}"`} {
		config := strings.Replace(smsConfig(t, "http://127.0.0.1:1"), `body        = "Incoming`, "body        = "+bad+"\n  # was: \"Incoming", 1)
		path := writeConfig(t, config)
		code, out, errOut := run(t, t.TempDir(), "validate", "-config", path)
		if code != 1 || !strings.Contains(out+errOut, "config.hcl:") || !strings.Contains(out+errOut, "body") {
			t.Errorf("validate %s: exit %d\n%s%s", bad, code, out, errOut)
		}
		if strings.Contains(out+errOut, smsAuthToken) {
			t.Error("validate printed the auth token")
		}
	}
}

// An SMS notifier whose from is a Messaging Service SID texts through the
// service: the real plugin process sends MessagingServiceSid, not From, and
// Twilio accepts it. A malformed SID is refused by validate at from.
func TestE2ESMSMessagingService(t *testing.T) {
	const service = "MG9752274e9e519418a7406176694466fa"
	tw := startSMS(t, nil)
	fromLine := fmt.Sprintf("from        = %q", smsFrom)
	config := smsConfig(t, tw.URL)
	if !strings.Contains(config, fromLine) {
		t.Fatalf("smsConfig has no line %q:\n%s", fromLine, config)
	}
	config = strings.Replace(config, fromLine, fmt.Sprintf("from        = %q", service), 1)

	in := start(t, config)
	in.putDevice(t, "2809", "phone", smsPhone)
	in.accept(t, lineSID, "2809")
	r := smsWait(t, tw, 1)[0]
	want := url.Values{"To": {smsPhone}, "MessagingServiceSid": {service}, "Body": {"Incoming audio call from 9286: 151ad995"}}
	if r.Form.Encode() != want.Encode() {
		t.Errorf("form: got %v; want %v", r.Form, want)
	}
	if r.Status != 201 {
		t.Errorf("fake Twilio answered %d; want 201", r.Status)
	}
	in.waitMetric(t, `ringside_deliveries_total{notifier="sms",outcome="delivered"}`, 1, 10*time.Second)

	bad := strings.Replace(config, service, service[:33], 1)
	code, out, errOut := run(t, t.TempDir(), "validate", "-config", writeConfig(t, bad))
	if code != 1 || !strings.Contains(out+errOut, "from") || !strings.Contains(out+errOut, "Messaging Service SID") {
		t.Errorf("validate with a 33-character SID: exit %d; want 1 and an error at from naming a Messaging Service SID\n%s%s", code, out, errOut)
	}
}
