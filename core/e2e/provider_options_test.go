package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

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
