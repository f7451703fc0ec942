package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// slackPlugin is the example Slack plugin, whose webhook_url is sensitive
// in its schema though its name says nothing of it.
func slackPlugin(t *testing.T) string { return binary(t, "examples/slack-plugin") }

// slackConfig routes linecorp.com's calls to the Slack plugin at bin,
// pinned by sha256, posting to webhookURL.
func slackConfig(bin, sha256, webhookURL string) string {
	return testServer + pluginBlock("slack", bin, fmt.Sprintf("sha256  = %q", sha256)) +
		notifierBlock("desk", "slack", fmt.Sprintf("webhook_url = %q", webhookURL), `username    = "ringside"`,
			`text        = "*${call.from_user_id}* is calling *${call.to_user_id}* (${call.type == "V" ? "video" : "audio"})"`) +
		routeTo("desk", `call.to_service_id == "linecorp.com"`, "desk")
}

// The Slack example plugin, built and pinned by sha256, posts a routed call
// to a (fake) Slack incoming webhook with the rendered text.
func TestE2EExampleSlack(t *testing.T) {
	bin := slackPlugin(t)
	slack := startWebhook(t, fakes.WebhookOptions{Answer: func(*fakes.WebhookRequest) fakes.WebhookAnswer {
		return fakes.WebhookAnswer{Status: 200, Header: map[string]string{"X-Slack-Req-Id": "slack-req-1"}, Body: "ok"}
	}})
	const hookPath = "/services/T000/B000/XXXXe2eSecretXXXX"
	config := slackConfig(bin, fileSHA256(t, bin), slack.URL+hookPath)
	if code, out, errOut := run(t, t.TempDir(), "validate", "-config", writeConfig(t, config)); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}

	in := start(t, config)
	code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	if code != 200 || !strings.Contains(body, `"status":"accepted"`) || !strings.Contains(body, `"route":"desk"`) {
		t.Fatalf("notify_cb: %d %s", code, body)
	}
	got := waitRequests(t, slack, 1)[0]
	var msg map[string]any
	_ = json.Unmarshal(got.Body, &msg)
	if got.Path != hookPath || msg["text"] != "*9286* is calling *2809* (audio)" || msg["username"] != "ringside" {
		t.Errorf("Slack got %s %s", got.Path, got.Body)
	}
	in.waitMetric(t, `ringside_deliveries_total{notifier="desk",outcome="delivered"}`, 1, 10*time.Second)
	if strings.Contains(in.logs.String(), "XXXXe2eSecretXXXX") {
		t.Error("logs contain the secret webhook URL")
	}
}

// A plugin binary whose sha256 does not match its pin is refused.
func TestE2EExampleSlackPinned(t *testing.T) {
	bin := slackPlugin(t)
	config := slackConfig(bin, strings.Repeat("ab", 32), "https://hooks.slack.com/services/T/B/x")
	code, out, errOut := run(t, t.TempDir(), "validate", "-config", writeConfig(t, config))
	if code != 1 || !strings.Contains(out+errOut, fileSHA256(t, bin)) {
		t.Errorf("validate with a wrong pin: exit %d\n%s%s", code, out, errOut)
	}
}
