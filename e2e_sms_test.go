package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	smsAccountSID = "AC0123456789abcdef0123456789abcdef"
	smsAuthToken  = "e2e-twilio-auth-token-0123456789"
	smsFrom       = "+15005550006"
	smsPhone      = "+818012345678"
)

// smsTwilio is a fake Twilio Messages API: it records each form and answers
// 201 with a message sid, except for the numbers of smsAnswers.
type smsTwilio struct {
	URL  string
	mu   sync.Mutex
	reqs []smsRequest
	// answers maps a To number to the statuses to answer in turn (then 201).
	answers map[string][]int
}

type smsRequest struct {
	Path       string
	User, Pass string
	Form       url.Values
}

func newSMSTwilio(t *testing.T, answers map[string][]int) *smsTwilio {
	t.Helper()
	tw := &smsTwilio{answers: answers}
	tw.URL = newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		user, pass, _ := r.BasicAuth()
		tw.mu.Lock()
		tw.reqs = append(tw.reqs, smsRequest{Path: r.URL.Path, User: user, Pass: pass, Form: form})
		n := len(tw.reqs)
		status := http.StatusCreated
		if q := tw.answers[form.Get("To")]; len(q) > 0 {
			status, tw.answers[form.Get("To")] = q[0], q[1:]
		}
		tw.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch status {
		case http.StatusCreated:
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"sid":"SM%032d","status":"queued"}`, n)
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			fmt.Fprint(w, `{"code":20429,"message":"Too Many Requests","status":429}`)
		default:
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"code":21211,"message":"The 'To' number %s is not a valid phone number.","status":%d}`, form.Get("To"), status)
		}
	}))
	return tw
}

func (tw *smsTwilio) requests() []smsRequest {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return append([]smsRequest(nil), tw.reqs...)
}

// smsWait waits until the fake Twilio has seen n requests.
func (tw *smsTwilio) smsWait(t *testing.T, n int) []smsRequest {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if reqs := tw.requests(); len(reqs) >= n {
			return reqs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fake Twilio saw %d requests within 15s; want %d", len(tw.requests()), n)
	return nil
}

// smsConfig routes every call to the console plugin, with SMS as the
// fallback.
func smsConfig(twilioURL string) string {
	return testServer + fmt.Sprintf(`
plugin "console" {
  command = [%q]
}

notifier "desk" {
  plugin = "console"
}

notifier "sms" {
  plugin      = "sms"
  account_sid = %q
  auth_token  = %q
  from        = %q
  endpoint    = %q
  body        = "Incoming ${call.type == "V" ? "video" : "audio"} call from ${call.from_user_id}: ${substr(call.sid, 0, 8)}"
}

route "all" {
  notify   = ["desk"]
  fallback = ["sms"]
}
`, consoleBin, smsAccountSID, smsAuthToken, smsFrom, twilioURL)
}

// smsMetric waits for a metric line.
func smsMetric(t *testing.T, in *instance, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var metrics string
	for time.Now().Before(deadline) {
		_, _, metrics = do(t, "GET", in.adminURL+"/metrics", nil)
		if strings.Contains(metrics, line) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("metrics lack %s:\n%s", line, grep(metrics, "ringside_deliveries"))
}

// A callee with only a phone: the console notifier reaches no device, so the
// route's SMS fallback texts the phone through Twilio with the rendered body.
func TestE2ESMSFallback(t *testing.T) {
	tw := newSMSTwilio(t, nil)
	in := startRingside(t, smsConfig(tw.URL))

	code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/2809/phone/"+url.PathEscape(smsPhone), nil)
	if code != 204 {
		t.Fatalf("PUT device: %d %s", code, body)
	}

	ec, out, errOut := run(t, in.dir, "explain", "-config", in.config, "-json", "/notify_cb?"+lineExample)
	if ec != 0 {
		t.Fatalf("explain: exit %d\n%s%s", ec, out, errOut)
	}
	var ex struct {
		Notifiers []struct {
			Name, Plugin, Role string
			Active             bool
			Devices            []struct{ Kind, Token string }
		}
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	var sawSMS bool
	for _, n := range ex.Notifiers {
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

	code, _, body = do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	if code != 200 || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("notify_cb: %d %s", code, body)
	}
	r := tw.smsWait(t, 1)[0]
	if r.Path != "/2010-04-01/Accounts/"+smsAccountSID+"/Messages.json" || r.User != smsAccountSID || r.Pass != smsAuthToken {
		t.Errorf("request: %+v", r)
	}
	want := url.Values{"To": {smsPhone}, "From": {smsFrom}, "Body": {"Incoming audio call from 9286: 151ad995"}}
	if r.Form.Encode() != want.Encode() {
		t.Errorf("form: got %v; want %v", r.Form, want)
	}
	smsMetric(t, in, `ringside_deliveries_total{notifier="sms",outcome="delivered"} 1`)
	time.Sleep(200 * time.Millisecond)
	if n := len(tw.requests()); n != 1 {
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
	tw := newSMSTwilio(t, map[string][]int{busy: {429}, invalid: {400, 400, 400}})
	in := startRingside(t, smsConfig(tw.URL))
	for user, phone := range map[string]string{"1001": busy, "1002": invalid} {
		if code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/"+user+"/phone/"+url.PathEscape(phone), nil); code != 204 {
			t.Fatalf("PUT device: %d %s", code, body)
		}
	}
	for i, user := range []string{"1001", "1002"} {
		q := strings.Replace(lineExample, "to_user_id=2809", "to_user_id="+user, 1)
		q = strings.Replace(q, "151ad995-749c-4a28-893f-636700469db1", fmt.Sprintf("151ad995-749c-4a28-893f-63670046900%d", i), 1)
		if code, _, body := do(t, "GET", in.notifyURL+"?"+q, nil); code != 200 || !strings.Contains(body, "accepted") {
			t.Fatalf("notify_cb: %d %s", code, body)
		}
	}
	smsMetric(t, in, `ringside_deliveries_total{notifier="sms",outcome="delivered"} 1`)
	smsMetric(t, in, `ringside_deliveries_total{notifier="sms",outcome="permanent"} 1`)
	var toBusy, toInvalid int
	for _, r := range tw.requests() {
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
		config := strings.Replace(smsConfig("http://127.0.0.1:1"), `body        = "Incoming`, "body        = "+bad+"\n  # was: \"Incoming", 1)
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
