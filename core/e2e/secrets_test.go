package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// cc_param, device tokens, phone numbers and credentials never appear
// whole in logs, errors, traces or metric labels. The test below
// plants distinctive values of each kind in a run that uses every built-in
// plugin and an external one, with failures, and scans every output.

// Planted values. Each is distinctive, so any occurrence is a leak.
const (
	secNotifyToken  = "ntok-PLANTED-3f9a1c77e2b04d6d"
	secAdminToken   = "atok-PLANTED-8c21e5fa90d3b7a4"
	secWebhookKey   = "planted-webhook-key-K9x2Qm7Z" // secret = whsec_ + base64(this)
	secTwilioToken  = "twilPLANTEDauthT0ken5ecret0099"
	secTwilioSID    = "AC00112233445566778899aabbccddeeff"
	secSID          = "5ec7e75a-1d2c-4b3a-9e8f-0a1b2c3d4e5f"
	secCCParamInner = "PLANTEDccParamMpKey0123456789zz"

	// APNs device tokens (hex): answered 200, 400, 410, 403, and 500 then 200.
	secAPNSGood   = "c0ffee01a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c"
	secAPNSBad    = "baddec02a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c"
	secAPNSGone   = "90eeee03a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c"
	secAPNSForbid = "f0bbed04a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c"
	secAPNSFlaky  = "f1a4e705a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c"

	// FCM registration tokens: 200, 404 UNREGISTERED, 400 INVALID_ARGUMENT
	// (FCM's message quotes the token), 403 SENDER_ID_MISMATCH, 500 then 200.
	secFCMGood   = "fcmGOODplanted0001:APA91bPlantedRegistrationTokenGood_0123456789"
	secFCMGone   = "fcmGONEplanted0002:APA91bPlantedRegistrationTokenGone_0123456789"
	secFCMBad    = "fcmBADDplanted0003:APA91bPlantedRegistrationTokenBadd_0123456789"
	secFCMForbid = "fcmFRBDplanted0004:APA91bPlantedRegistrationTokenFrbd_0123456789"
	secFCMFlaky  = "fcmFLKYplanted0005:APA91bPlantedRegistrationTokenFlky_0123456789"

	// Phones: 201, 400 (Twilio's message quotes the number), 500 then 201.
	secPhoneGood  = "+819011112278"
	secPhoneBad   = "+819022223378"
	secPhoneFlaky = "+819033334478"

	secConsoleToken = "console-PLANTED-device-7f3e2a9b"

	// Credentials in the webhook URL (userinfo, query) and in the OTLP
	// exporter's headers (OTEL_* reach every plugin).
	secHookPassword = "hookpassPLANTED5c1d"
	secHookQueryKey = "hookqueryPLANTED77e0"
	secOTLPHeader   = "otlpkeyPLANTED0b4f9a"
)

func secWebhookSecret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(secWebhookKey))
}

// secCCParam is the planted param (standard padded base64).
func secCCParam() string {
	return base64.StdEncoding.EncodeToString([]byte(`{"plantedCallFlow":"M","commParam":"{\"mpkey\":\"` + secCCParamInner + `\"}","callType":"A"}`))
}

func secQuery(sid, token string) string {
	q := "from_user_id=9286&from_service_id=linecorp.com&to_user_id=2809&to_service_id=linecorp.com&sid=" + sid +
		"&type=A&stid=stid&param=" + url.QueryEscape(secCCParam())
	if token != "" {
		q += "&token=" + url.QueryEscape(token)
	}
	return q
}

// ---- the scanner ----

// leakScanner looks for planted values in text. A value is found whole, or
// as any window of windowLen consecutive characters of it (so a token cut to
// its first 20 characters is still found, while the allowed short form, at
// most 6 characters, "…" and at most 4, is not), or in any of its other forms (URL-encoded, without
// the "+", one line of a PEM body, ...).
type leakScanner struct {
	values []planted
}

type planted struct {
	name    string
	needles []string
}

type leak struct {
	value, where, excerpt string
}

func (l leak) String() string {
	return fmt.Sprintf("%s leaked at %s: %s", l.value, l.where, l.excerpt)
}

const windowLen = 16

// plant adds a value: whole, its windows (for values longer than
// windowLen) and extra forms.
func (s *leakScanner) plant(name, value string, extra ...string) {
	p := planted{name: name}
	add := func(n string) {
		for _, o := range p.needles {
			if o == n {
				return
			}
		}
		p.needles = append(p.needles, n)
	}
	add(value)
	if len(value) > windowLen {
		for i := 0; i+windowLen <= len(value); i++ {
			add(value[i : i+windowLen])
		}
	}
	if e := url.QueryEscape(value); e != value {
		add(e)
	}
	if e := url.PathEscape(value); e != value {
		add(e)
	}
	for _, e := range extra {
		add(e)
	}
	s.values = append(s.values, p)
}

// plantPEM adds a PEM private key: every line of its base64 body.
func (s *leakScanner) plantPEM(name string, pemText string) {
	p := planted{name: name}
	for _, l := range strings.Split(pemText, "\n") {
		if len(l) >= windowLen && !strings.HasPrefix(l, "-----") {
			p.needles = append(p.needles, l)
		}
	}
	s.values = append(s.values, p)
}

// scan reports every line of text holding a planted value; where names the
// source, lines are numbered from 1. skip names values not checked here.
func (s *leakScanner) scan(where, text string, skip ...string) []leak {
	var out []leak
	for i, line := range strings.Split(text, "\n") {
		for _, p := range s.values {
			if contains(skip, p.name) {
				continue
			}
			for _, n := range p.needles {
				if j := strings.Index(line, n); j >= 0 {
					out = append(out, leak{value: p.name, where: fmt.Sprintf("%s:%d", where, i+1), excerpt: excerpt(line, j, len(n))})
					break
				}
			}
		}
	}
	return out
}

// excerpt is up to 300 bytes of line around [j, j+n).
func excerpt(line string, j, n int) string {
	from, to := max(0, j-150), min(len(line), j+n+150)
	return fmt.Sprintf("%q", line[from:to])
}

// spanText renders every field of every span, one line per field, each
// prefixed with where it sits (span name and field path).
func spanText(spans []fakes.Span) string {
	var b strings.Builder
	str := func(v *commonpb.AnyValue) string {
		if v == nil {
			return ""
		}
		if s, ok := v.Value.(*commonpb.AnyValue_StringValue); ok {
			return s.StringValue
		}
		j, _ := protojson.Marshal(v)
		return string(j)
	}
	for i, s := range spans {
		p := fmt.Sprintf("span[%d] %q", i, s.Name)
		fmt.Fprintf(&b, "%s name: %s\n", p, s.Name)
		keys := make([]string, 0, len(s.Resource))
		for k := range s.Resource {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s resource.%s: %s\n", p, k, s.Resource[k])
		}
		for _, kv := range s.Attributes {
			fmt.Fprintf(&b, "%s attribute.%s: %s\n", p, kv.Key, str(kv.Value))
		}
		for ei, e := range s.Events {
			fmt.Fprintf(&b, "%s event[%d].name: %s\n", p, ei, e.Name)
			for _, kv := range e.Attributes {
				fmt.Fprintf(&b, "%s event[%d] %q attribute.%s: %s\n", p, ei, e.Name, kv.Key, str(kv.Value))
			}
		}
		for li, l := range s.Links {
			for _, kv := range l.Attributes {
				fmt.Fprintf(&b, "%s link[%d] attribute.%s: %s\n", p, li, kv.Key, str(kv.Value))
			}
		}
		if st := s.Status; st != nil {
			fmt.Fprintf(&b, "%s status: %v %s\n", p, st.Code, st.Message)
		}
		if s.TraceState != "" {
			fmt.Fprintf(&b, "%s tracestate: %s\n", p, s.TraceState)
		}
		// Anything else the proto holds, whole, as a safety net.
		j, _ := protojson.Marshal(s.Span)
		fmt.Fprintf(&b, "%s proto: %s\n", p, j)
	}
	return b.String()
}

// ---- peers answering per device ----

// firstTime reports whether key is seen for the first time.
type firstTime struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *firstTime) first(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	first := !f.seen[key]
	f.seen[key] = true
	return first
}

// secAPNS is a fake APNs answering by device token.
func secAPNS(t *testing.T) *apnsPeer {
	var flaky firstTime
	return startAPNs(t, fakes.APNsOptions{Topic: apnsTopic, Answer: func(p *fakes.Push) fakes.Answer {
		switch {
		case p.Token == secAPNSBad:
			return fakes.Answer{Status: 400, Reason: "BadDeviceToken"}
		case p.Token == secAPNSGone:
			return fakes.Answer{Status: 410, Reason: "Unregistered", Timestamp: time.Now().Add(2 * time.Second).UnixMilli()}
		case p.Token == secAPNSForbid:
			return fakes.Answer{Status: 403, Reason: "InvalidProviderToken"}
		case p.Token == secAPNSFlaky && flaky.first(p.Token):
			return fakes.Answer{Status: 500, Reason: "InternalServerError"}
		}
		return fakes.Answer{}
	}})
}

// secFCM is a fake FCM v1 endpoint answering by registration token.
func secFCM(t *testing.T) (*fakes.FCM, string) {
	var flaky firstTime
	return startFCM(t, fakes.FCMOptions{Answer: func(s *fakes.FCMSend) fakes.FCMAnswer {
		switch tok := s.Token; {
		case tok == secFCMGone:
			return fcmError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
		case tok == secFCMBad:
			return fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token: "+tok)
		case tok == secFCMForbid:
			return fcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch for token "+tok)
		case tok == secFCMFlaky && flaky.first(tok):
			return fcmError(500, "INTERNAL", "INTERNAL", "Internal error encountered.")
		}
		return fakes.FCMAnswer{}
	}})
}

// distinct counts the distinct values of key over items.
func distinct[T any](items []T, key func(T) string) int {
	seen := map[string]bool{}
	for _, it := range items {
		seen[key(it)] = true
	}
	return len(seen)
}

// secRecorder keeps every HTTP answer (status line, headers, body) or
// error the test got from ringside.
type secRecorder struct {
	t   *testing.T
	buf strings.Builder
}

func (r *secRecorder) do(method, u string, hdr map[string]string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// The request itself (with its token) is not part of the answer.
	path := req.URL.Path
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(&r.buf, "%s %s: error %s\n", method, path, strings.ReplaceAll(err.Error(), u, "<request URL>"))
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(&r.buf, "%s %s: %s\n", method, path, resp.Status)
	for k, vs := range resp.Header {
		fmt.Fprintf(&r.buf, "%s %s: header %s: %s\n", method, path, k, strings.Join(vs, ", "))
	}
	for _, l := range strings.Split(string(b), "\n") {
		fmt.Fprintf(&r.buf, "%s %s: body %s\n", method, path, l)
	}
	return resp.StatusCode, string(b)
}

func secConfig(consolePath, hookURL, apnsURL, keyFile, fcmURL, creds, twilioURL, otlpURL string) string {
	return serverBlock("2s", "debug", "  notify_token   = env(\"RS_NOTIFY_TOKEN\")\n  admin_token    = env(\"RS_ADMIN_TOKEN\")") +
		tracing(otlpURL, "ringside-secrets-ctl") +
		consolePluginBlock(consolePath) + notifierBlock("desk", "console") +
		webhookNotifier("app", hookURL, fmt.Sprintf("secret = %q", secWebhookSecret())) +
		apnsNotifier(keyFile, apnsURL, apnsTopic) +
		notifierBlock("android", "fcm", fmt.Sprintf("credentials_file = %q", creds), fmt.Sprintf("endpoint         = %q", fcmURL)) +
		notifierBlock("sms", "sms", fmt.Sprintf("account_sid = %q", secTwilioSID), fmt.Sprintf("auth_token  = %q", secTwilioToken),
			`from        = "+15005550006"`, fmt.Sprintf("endpoint    = %q", twilioURL)) +
		routeTo("all", "", "desk", "app", "ios", "android", "sms")
}

// The scanner finds what it should and lets the allowed short forms pass.
func TestSecretScannerSelfCheck(t *testing.T) {
	s := &leakScanner{}
	s.plant("notify token", secNotifyToken)
	s.plant("apns token", secAPNSGood)
	s.plant("phone", secPhoneGood, strings.TrimPrefix(secPhoneGood, "+"))
	text := strings.Join([]string{
		`{"msg":"ok","device":"c0ffee…","phone":"+81…78"}`,
		`{"msg":"bad","url":"/notify_cb?token=` + secNotifyToken + `"}`,
		`{"msg":"cut","device":"` + secAPNSGood[:24] + `"}`,
		`{"msg":"escaped","to":"%2B` + strings.TrimPrefix(secPhoneGood, "+") + `"}`,
	}, "\n")
	got := s.scan("synthetic", text)
	want := []string{"notify token@synthetic:2", "apns token@synthetic:3", "phone@synthetic:4"}
	var gotS []string
	for _, l := range got {
		gotS = append(gotS, l.value+"@"+l.where)
	}
	if strings.Join(gotS, " ") != strings.Join(want, " ") {
		t.Errorf("scanner found %v; want %v", gotS, want)
	}
}

func TestE2ESecretsNeverLeak(t *testing.T) {
	// Peers.
	recv := startOTLP(t)
	var hookFailed atomic.Bool
	hook := startWebhook(t, fakes.WebhookOptions{Secret: secWebhookSecret(), Answer: func(*fakes.WebhookRequest) fakes.WebhookAnswer {
		if hookFailed.CompareAndSwap(false, true) {
			return fakes.WebhookAnswer{Status: 500, Body: "internal error"}
		}
		return fakes.WebhookAnswer{}
	}})
	apns := secAPNS(t)
	fcm, creds := secFCM(t)
	tw := startTwilio(t, fakes.TwilioOptions{AccountSID: secTwilioSID, AuthToken: secTwilioToken}, map[string][]int{secPhoneBad: {400, 400, 400}, secPhoneFlaky: {500}})

	hookURL := strings.Replace(hook.URL, "http://", "http://ringside:"+secHookPassword+"@", 1) + "/hook?apikey=" + secHookQueryKey
	config := secConfig(consolePlugin(t), hookURL, apns.URL, apns.keyFile, fcm.Endpoint(), creds, tw.URL, recv.URL)
	in := start(t, config,
		"RS_NOTIFY_TOKEN="+secNotifyToken, "RS_ADMIN_TOKEN="+secAdminToken,
		apns.env(), quickExport,
		"OTEL_EXPORTER_OTLP_HEADERS=x-api-key="+secOTLPHeader)
	rec := &secRecorder{t: t}
	auth := map[string]string{"Authorization": "Bearer " + secAdminToken}

	// Devices, through the admin API (one without the token: 401).
	if code, _ := rec.do("PUT", in.adminURL+"/v1/devices/linecorp.com/2809/apns/"+secAPNSGood, nil); code != 401 {
		t.Errorf("PUT without admin token: %d; want 401", code)
	}
	if code, _ := rec.do("PUT", in.adminURL+"/v1/devices/linecorp.com/2809/apns/"+secAPNSGood, map[string]string{"Authorization": "Bearer " + secAdminToken + "x"}); code != 401 {
		t.Errorf("PUT with a wrong admin token: %d; want 401", code)
	}
	devices := map[string][]string{
		"apns":    {secAPNSGood, secAPNSBad, secAPNSGone, secAPNSForbid, secAPNSFlaky},
		"fcm":     {secFCMGood, secFCMGone, secFCMBad, secFCMForbid, secFCMFlaky},
		"phone":   {secPhoneGood, secPhoneBad, secPhoneFlaky},
		"console": {secConsoleToken},
	}
	for kind, toks := range devices {
		for _, tok := range toks {
			if code, body := rec.do("PUT", in.adminURL+"/v1/devices/linecorp.com/2809/"+kind+"/"+url.PathEscape(tok), auth); code != 204 {
				t.Fatalf("PUT %s device: %d %s", kind, code, body)
			}
		}
	}
	// A bad device path (token with a control character) is a 400 naming the field.
	rec.do("PUT", in.adminURL+"/v1/devices/linecorp.com/2809/fcm/"+url.PathEscape(secFCMGood+"\x01"), auth)
	if code, body := rec.do("GET", in.adminURL+"/v1/devices/linecorp.com/2809", auth); code != 200 || !strings.Contains(body, secAPNSGood) {
		// The devices API is where tokens are supposed to be: it is not scanned.
		t.Fatalf("GET devices: %d", code)
	}
	rec.buf.Reset() // the devices listing above legitimately holds the tokens

	// Callbacks: no token, wrong token, wrong token with a bad field, right
	// token with a bad field, then the real one, its duplicate, and HEAD.
	good := in.notifyURL + "?" + secQuery(secSID, secNotifyToken)
	for _, c := range []struct {
		name, url string
		code      int
	}{
		{"no token", in.notifyURL + "?" + secQuery(secSID, ""), 401},
		{"wrong token", in.notifyURL + "?" + secQuery(secSID, secNotifyToken+"0"), 401},
		{"wrong token, bad field", in.notifyURL + "?" + strings.Replace(secQuery(secSID, "x"+secNotifyToken), "type=A", "type=Q", 1), 401},
		{"bad field", in.notifyURL + "?" + strings.Replace(secQuery(secSID, secNotifyToken), "type=A", "type=Q", 1), 400},
		{"bad param", in.notifyURL + "?" + strings.Replace(secQuery(secSID, secNotifyToken), "param=", "param=%21", 1), 400},
		{"accepted", good, 200},
		{"duplicate", good, 200},
	} {
		if code, body := rec.do("GET", c.url, nil); code != c.code {
			t.Errorf("%s: %d %s; want %d", c.name, code, body, c.code)
		}
	}
	rec.do("HEAD", good, nil)
	rec.do("POST", good, nil)

	// Deliveries end: every device was tried, the flaky ones twice.
	if _, err := in.waitLog(30*time.Second, func(l map[string]any) bool {
		return l["msg"] == "callback" && l["sid"] == secSID && l["delivered"] != nil
	}); err != nil {
		t.Fatalf("the callback's deliveries did not end: %v\n%s", err, in.logs.String())
	}
	if n := distinct(apns.Pushes(), func(p fakes.Push) string { return p.Token }); n != 5 {
		t.Errorf("fake APNs saw %d tokens; want 5", n)
	}
	if n := distinct(fcm.Sends(), func(s fakes.FCMSend) string { return s.Token }); n != 5 {
		t.Errorf("fake FCM saw %d tokens; want 5", n)
	}
	if n := len(tw.Messages()); n != 4 {
		t.Errorf("fake Twilio saw %d requests; want 4 (good, bad, flaky twice)", n)
	}
	if n := len(hook.Requests("")); n != 2 {
		t.Errorf("webhook receiver saw %d requests; want 2 (500, then 204)", n)
	}

	// A failing reload: the plugin's schema rejects an attribute.
	broken := strings.Replace(config, `  from        = "+15005550006"`, "  from        = \"+15005550006\"\n  retries     = 3", 1)
	if err := os.WriteFile(in.config, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	in.signal(t, syscall.SIGHUP)
	if _, err := in.waitLog(15*time.Second, func(l map[string]any) bool { return strings.HasPrefix(fmt.Sprint(l["msg"]), "config reload refused") }); err != nil {
		t.Errorf("no refused reload: %v", err)
	}

	// Operations endpoints.
	rec.do("GET", in.adminURL+"/healthz", nil)
	rec.do("GET", in.adminURL+"/readyz", nil)
	_, metrics := rec.do("GET", in.adminURL+"/metrics", nil)
	rec.do("GET", in.adminURL+"/v1/devices/linecorp.com/2809/apns", auth) // 404/405: not a listing
	rec.do("GET", strings.Replace(in.notifyURL, "/notify_cb", "/other", 1)+"?token="+secNotifyToken, nil)

	// Spans from the host and from every plugin process's HTTP client.
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := 0
		for _, s := range recv.Spans() {
			if s.Resource["ringside.process"] == "plugin" && s.Kind == tracepb.Span_SPAN_KIND_CLIENT {
				n++
			}
		}
		if n >= 14 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.stop() // flushes the last spans and logs

	// Tools an operator runs on the same config.
	if err := os.WriteFile(in.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"RS_NOTIFY_TOKEN=" + secNotifyToken, "RS_ADMIN_TOKEN=" + secAdminToken}
	_, vout, verr := runWith(t, in.dir, env, time.Minute, "validate", "-config", in.config)
	_, eout, eerr := runWith(t, in.dir, env, time.Minute, "explain", "-config", in.config, "-json", secQuery(secSID, secNotifyToken))
	_, e2out, e2err := runWith(t, in.dir, env, time.Minute, "explain", "-config", in.config, secQuery(secSID, secNotifyToken))

	jwts := map[string]bool{}
	for _, p := range apns.Pushes() {
		if p.JWTErr != nil {
			t.Errorf("push to %s…: provider token: %v", p.Token[:6], p.JWTErr)
		}
		jwts[p.Bearer] = true
	}
	if len(jwts) == 0 {
		t.Error("the fake APNs saw no provider token")
	}

	// What must not leak.
	s := &leakScanner{}
	s.plant("notify_token", secNotifyToken)
	s.plant("admin_token", secAdminToken)
	s.plant("webhook secret", secWebhookSecret(), strings.TrimPrefix(secWebhookSecret(), "whsec_"), secWebhookKey)
	s.plant("twilio auth token", secTwilioToken, base64.StdEncoding.EncodeToString([]byte(secTwilioSID+":"+secTwilioToken)))
	s.plantPEM("apns .p8 key", string(apns.P8()))
	s.plantPEM("fcm RSA key", fcm.KeyPEM())
	i := 0
	for j := range jwts {
		sig := j[strings.LastIndexByte(j, '.')+1:]
		s.plant(fmt.Sprintf("apns provider token %d (signature)", i), sig)
		i++
	}
	s.plant("fcm access token", fcm.AccessToken)
	s.plant("webhook URL password", secHookPassword)
	s.plant("webhook URL query key", secHookQueryKey)
	s.plant("OTLP exporter header", secOTLPHeader)
	s.plant("cc_param", secCCParam(), secCCParamInner)
	for kind, toks := range devices {
		for _, tok := range toks {
			if kind == "phone" {
				digits := strings.TrimPrefix(tok, "+")
				s.plant("phone "+tok, tok, digits, "%2B"+digits, digits[2:])
				continue
			}
			s.plant(kind+" device "+tok[:10], tok)
		}
	}

	// Controls: values that are supposed to be there prove each source is
	// scanned at all.
	ctl := &leakScanner{}
	ctl.plant("sid", secSID)
	ctl.plant("service name", "ringside-secrets-ctl")
	ctl.plant("notifier label", `notifier="android"`)
	spans := spanText(recv.Spans())
	for _, c := range []struct{ source, text, value string }{
		{"ringside logs", in.logs.String(), "sid"},
		{"HTTP answers", rec.buf.String(), "sid"},
		{"spans", spans, "service name"},
		{"metrics", metrics, "notifier label"},
	} {
		found := false
		for _, l := range ctl.scan(c.source, c.text) {
			found = found || l.value == c.value
		}
		if !found {
			t.Errorf("control: the scanner did not find the %s in %s: the source is not scanned", c.value, c.source)
		}
	}
	if !strings.Contains(spans, `resource.ringside.process: plugin`) {
		t.Errorf("no span from a plugin process arrived:\n%s", recv.Dump())
	}

	var leaks []leak
	leaks = append(leaks, s.scan("ringside stdout+stderr", in.logs.String())...)
	leaks = append(leaks, s.scan("HTTP answer", rec.buf.String())...)
	leaks = append(leaks, s.scan("spans", spans)...)
	leaks = append(leaks, s.scan("/metrics", metrics)...)
	leaks = append(leaks, s.scan("validate output", vout+verr)...)
	// explain prints the rendered payload, cc_param included, by design.
	leaks = append(leaks, s.scan("explain -json output", eout+eerr, "cc_param")...)
	leaks = append(leaks, s.scan("explain output", e2out+e2err, "cc_param")...)
	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
	}
	t.Logf("%d log lines, %d spans, %d bytes of HTTP answers scanned", strings.Count(in.logs.String(), "\n"), len(recv.Spans()), rec.buf.Len())
}
