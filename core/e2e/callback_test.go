package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// The LINE example reaches the app server as a signed webhook carrying
// cc_param byte for byte.
func TestE2EWebhookDelivery(t *testing.T) {
	hook := startWebhook(t, fakes.WebhookOptions{Secret: hookSecret})
	in := start(t, webhookConfig(hook.URL+"/ringside/incoming-call"))

	code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	if code != 200 {
		t.Fatalf("notify_cb: got %d %s; want 200", code, body)
	}
	want := `{"sid":"151ad995-749c-4a28-893f-636700469db1","status":"accepted","route":"all","routes":["all"]}`
	if strings.TrimSpace(body) != want {
		t.Errorf("body: got %s; want %s", body, want)
	}

	req := waitRequests(t, hook, 1)[0]
	if req.SigErr != nil {
		t.Errorf("signature: %v", req.SigErr)
	}
	if req.Path != "/ringside/incoming-call" {
		t.Errorf("path %q", req.Path)
	}
	var got struct {
		SID, ToUserID, CCParam, AppSvrData, Route string
		Payload                                   map[string]any
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(req.Body, &raw); err != nil {
		t.Fatalf("webhook body %s: %v", req.Body, err)
	}
	for _, k := range []string{"sid", "from_service_id", "from_user_id", "to_service_id", "to_user_id", "type", "cc_param", "app_svr_data", "route", "payload"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("webhook body lacks %q: %s", k, req.Body)
		}
	}
	dec := func(k string, v any) {
		if err := json.Unmarshal(raw[k], v); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	dec("sid", &got.SID)
	dec("cc_param", &got.CCParam)
	dec("to_user_id", &got.ToUserID)
	dec("app_svr_data", &got.AppSvrData)
	dec("route", &got.Route)
	dec("payload", &got.Payload)
	if got.CCParam != lineParam {
		t.Errorf("cc_param: got %q; want %q", got.CCParam, lineParam)
	}
	if got.SID != lineSID || got.ToUserID != "2809" || got.AppSvrData != "stid" || got.Route != "all" {
		t.Errorf("call fields: got %+v", got)
	}
	wantPayload := lineApp(map[string]any{
		"cc_param": lineParam, "sid": lineSID,
		"video": false, "caller": "9286",
	})
	for k, v := range wantPayload {
		if got.Payload[k] != v {
			t.Errorf("payload[%s]: got %#v; want %#v", k, got.Payload[k], v)
		}
	}
	if len(got.Payload) != len(wantPayload) {
		t.Errorf("payload: got %v; want exactly %v", got.Payload, wantPayload)
	}

	// The same callback again is a duplicate and rings nothing more.
	code, _, body = do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	if code != 200 || !strings.Contains(body, `"status":"duplicate"`) {
		t.Errorf("repeat: got %d %s; want 200 duplicate", code, body)
	}

	// One log line per callback, without the whole cc_param.
	line, err := in.waitLog(5*time.Second, func(l map[string]any) bool { return l["msg"] == "callback" && l["status"] == "accepted" })
	if err != nil {
		t.Fatalf("callback log line: %v", err)
	}
	if line["sid"] != lineSID || line["route"] != "all" || line["delivered"] != float64(1) {
		t.Errorf("callback log line: got %v", line)
	}
	if strings.Contains(in.logs.String(), lineParam) {
		t.Error("logs contain the whole cc_param")
	}
}

// A webhook secret spelled without whsec_ and without its base64 padding
// signs exactly as the canonical spelling: an app server holding the
// canonical secret verifies every request.
func TestE2EWebhookSecretSpelling(t *testing.T) {
	const (
		canonical = "whsec_lTiACyFOCpXjmfnEup7KtRAGqLEoaS/5YZyQkB7KAGo="
		spelled   = "lTiACyFOCpXjmfnEup7KtRAGqLEoaS/5YZyQkB7KAGo"
	)
	hook := startWebhook(t, fakes.WebhookOptions{Secret: canonical})
	secretLine := fmt.Sprintf("secret  = %q", hookSecret)
	config := webhookConfig(hook.URL + "/ringside/incoming-call")
	if !strings.Contains(config, secretLine) {
		t.Fatalf("webhookConfig has no line %q:\n%s", secretLine, config)
	}
	in := start(t, strings.Replace(config, secretLine, fmt.Sprintf("secret  = %q", spelled), 1))

	if code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil); code != 200 {
		t.Fatalf("notify_cb: got %d %s; want 200", code, body)
	}
	req := waitRequests(t, hook, 1)[0]
	if req.SigErr != nil {
		t.Errorf("signature with the unprefixed, unpadded secret, verified with the canonical one: %v", req.SigErr)
	}
	if strings.Contains(in.logs.String(), spelled) {
		t.Error("logs contain the secret")
	}
}

// Invalid callbacks, other methods and HEAD are answered without delivery.
func TestE2ECallbackAnswers(t *testing.T) {
	hook := startWebhook(t, fakes.WebhookOptions{})
	in := start(t, webhookConfig(hook.URL))

	missing := strings.Replace(lineExample, "sid="+lineSID+"&", "", 1)
	code, _, body := do(t, "GET", in.notifyURL+"?"+missing, nil)
	if code != 400 || !strings.Contains(body, `"error":"invalid_callback"`) || !strings.Contains(body, `"field":"sid"`) {
		t.Errorf("missing sid: got %d %s", code, body)
	}
	code, hdr, body := do(t, "POST", in.notifyURL+"?"+lineExample, nil)
	if code != 405 || hdr.Get("Allow") != "GET, HEAD" || strings.TrimSpace(body) != `{"error":"method_not_allowed"}` {
		t.Errorf("POST: got %d Allow=%q %s", code, hdr.Get("Allow"), body)
	}
	code, _, body = do(t, "HEAD", in.notifyURL+"?"+lineExample, nil)
	if code != 200 || body != "" {
		t.Errorf("HEAD: got %d %q; want 200 and no body", code, body)
	}
	// HEAD delivered nothing: the first webhook to arrive is the GET's.
	other := "00000000-0000-4000-8000-000000000001"
	if code, body, err := in.call(other, "2809"); code != 200 {
		t.Fatalf("GET: got %d %s %v", code, body, err)
	}
	if req := waitRequests(t, hook, 1)[0]; req.SID != other {
		t.Errorf("first webhook is not the GET's: %s", req.Body)
	}
	if code, _, _ := do(t, "GET", strings.Replace(in.notifyURL, "/notify_cb", "/other", 1), nil); code != 404 {
		t.Errorf("other path: got %d; want 404", code)
	}
}

// An external plugin built only on the SDK runs under ringside with its
// sha256 pinned, rings a registered device, and explain sees that device
// while serve runs.
func TestE2EConsolePlugin(t *testing.T) {
	console := consolePlugin(t)
	config := testServer + pluginBlock("console", console, fmt.Sprintf("sha256  = %q", fileSHA256(t, console)), `env     = { CONSOLE_COLOR = "0" }`) +
		notifierBlock("desk", "console", `prefix = "ring"`) + webhookNotifier("hook", "http://127.0.0.1:1/unused") +
		fallbackRoute("console", `call.to_service_id == "linecorp.com"`, "desk", "hook")
	in := start(t, config)

	token := "0123456789abcdef-console-token"
	in.putDevice(t, "2809", "console", token)
	if body := in.devices(t, "2809"); !strings.Contains(body, token) {
		t.Fatalf("GET devices: %s", body)
	}

	// explain reads the directory while serve holds it.
	ec, out, errOut := run(t, in.dir, "explain", "-config", in.config, "-json", "/notify_cb?"+lineExample)
	if ec != 0 {
		t.Fatalf("explain: exit %d\n%s\n%s", ec, out, errOut)
	}
	ex := explained(t, out)
	if ex.Status != "accepted" || ex.Route != "console" || len(ex.Notifiers) != 2 {
		t.Fatalf("explain: got %+v", ex)
	}
	desk := ex.Notifiers[0]
	if desk.Name != "desk" || desk.Role != "notify" || !desk.Active || len(desk.Devices) != 1 ||
		desk.Devices[0].Kind != "console" || desk.Devices[0].Token != "012345…ken" || desk.Payload["cc_param"] != lineParam {
		t.Errorf("explain desk: got %+v", desk)
	}
	if hook := ex.Notifiers[1]; hook.Name != "hook" || hook.Role != "fallback" || hook.Active {
		t.Errorf("explain hook: got %+v", hook)
	}
	if strings.Contains(out, token) {
		t.Error("explain printed a whole device token")
	}

	code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	if code != 200 || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("notify_cb: got %d %s", code, body)
	}
	// The plugin's own log line comes out of ringside's log, under its notifier.
	if _, err := in.waitLog(10*time.Second, func(l map[string]any) bool {
		return l["notifier"] == "desk" && strings.Contains(fmt.Sprint(l["msg"]), "ring")
	}); err != nil {
		t.Fatalf("console plugin log: %v\n%s", err, in.logs.String())
	}
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool { return l["msg"] == "callback" && l["delivered"] == float64(1) }); err != nil {
		t.Fatalf("callback line: %v", err)
	}
	if n := in.metric(t, `ringside_deliveries_total{notifier="desk",outcome="delivered"}`); n != 1 {
		t.Errorf("desk deliveries %v; want 1:\n%s", n, grep(in.metrics(t), "ringside_"))
	}
	if strings.Contains(in.logs.String(), token) {
		t.Error("logs contain a whole device token")
	}
}

// explanation is what explain -json prints.
type explanation struct {
	Status    string
	Route     string
	Notifiers []struct {
		Name, Plugin, Role string
		Active             bool
		Devices            []struct{ Kind, Token string }
		Payload            map[string]any
	}
}

func explained(t *testing.T, out string) explanation {
	t.Helper()
	var ex explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("explain -json: %v\n%s", err, out)
	}
	return ex
}

// A wrong sha256 refuses to start, naming the file.
func TestE2EPluginChecksum(t *testing.T) {
	console := consolePlugin(t)
	config := testServer + pluginBlock("console", console, fmt.Sprintf("sha256  = %q", strings.Repeat("0", 64))) +
		notifierBlock("desk", "console") + routeTo("all", "", "desk")
	path := writeConfig(t, config)
	code, out, errOut := run(t, t.TempDir(), "serve", "-config", path)
	if code != 1 {
		t.Fatalf("serve with a wrong sha256: exit %d; want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "config.hcl:") || !strings.Contains(errOut, "console-plugin") || !strings.Contains(errOut, fileSHA256(t, console)) {
		t.Errorf("error should point at the notifier and name the file and its real sha256:\n%s", errOut)
	}
}

// A callback that reaches no device is a 404 when reject_unreachable is set.
func TestE2ERejectUnreachable(t *testing.T) {
	config := serverBlock("2s", "debug", "  reject_unreachable = true") + consolePluginBlock(consolePlugin(t)) +
		notifierBlock("desk", "console") + routeTo("all", "", "desk")
	in := start(t, config)
	code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	want := `{"sid":"151ad995-749c-4a28-893f-636700469db1","status":"no_devices","route":"all","routes":["all"]}`
	if code != 404 || strings.TrimSpace(body) != want {
		t.Errorf("got %d %s; want 404 %s", code, body, want)
	}
}

// Operations endpoints answer without a token.
func TestE2EOperations(t *testing.T) {
	hook := startWebhook(t, fakes.WebhookOptions{Answer: answerStatus(http.StatusOK)})
	in := start(t, webhookConfig(hook.URL))
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, body := do(t, "GET", in.adminURL+p, nil); code != 200 {
			t.Errorf("%s: got %d %s", p, code, body)
		}
	}
	do(t, "GET", in.notifyURL+"?type=X", nil)
	if n := in.metric(t, `ringside_callbacks_total{code="400",status="invalid"}`); n != 1 {
		t.Errorf("400s counted %v; want 1:\n%s", n, grep(in.metrics(t), "ringside_"))
	}
}

func TestE2EValidate(t *testing.T) {
	good := writeConfig(t, webhookConfig("http://127.0.0.1:8080/hook"))
	code, out, errOut := run(t, t.TempDir(), "validate", "-config", good)
	if code != 0 {
		t.Fatalf("validate good: exit %d\n%s%s", code, out, errOut)
	}
	// The plugin's schema rejects an attribute: only a started plugin knows.
	bad := writeConfig(t, testServer+`
notifier "app" {
  plugin = "webhook"
  url    = "http://127.0.0.1:8080/hook"
  retries = 3
}
route "all" { notify = ["app"] }
`)
	code, out, _ = run(t, t.TempDir(), "validate", "-config", bad)
	if code != 1 || !strings.Contains(out, bad+":15:3: error:") || !strings.Contains(out, "retries") || !strings.Contains(out, "^") {
		t.Errorf("validate bad: exit %d; want 1 and %s:15:3 with a caret\n%s", code, bad, out)
	}
	code, out, errOut = run(t, t.TempDir(), "validate", "-config", "/nonexistent/ringside.hcl")
	if code != 1 || !strings.Contains(errOut+out, "/nonexistent/ringside.hcl") {
		t.Errorf("missing file: exit %d; output must name the path", code)
	}
}

func TestE2ECommandLine(t *testing.T) {
	code, out, _ := run(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "ringside ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if code, _, _ := run(t, t.TempDir(), "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d; want 2", code)
	}
	good := writeConfig(t, webhookConfig("http://127.0.0.1:8080/hook"))
	if code, out, errOut := run(t, t.TempDir(), "explain", "-config", good, "type=Q"); code != 2 {
		t.Errorf("explain with an invalid query: exit %d; want 2\n%s%s", code, out, errOut)
	}
	code, out, errOut := run(t, t.TempDir(), "explain", "-config", good, lineExample)
	if code != 0 || !strings.Contains(out, "accepted") || !strings.Contains(out, "notifier app") {
		t.Errorf("explain: exit %d\n%s%s", code, out, errOut)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
