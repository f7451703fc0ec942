package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exBuild builds the example plugin in pkg into a temporary folder and
// returns the binary's path.
func exBuild(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// exSlackMessage is what the fake Slack received.
type exSlackMessage struct {
	Path string
	Msg  map[string]any
}

// The Slack example plugin, built and pinned by sha256, posts a routed call
// to a (fake) Slack incoming webhook with the rendered text.
func TestE2EExampleSlack(t *testing.T) {
	bin := exBuild(t, "./examples/slack-plugin")
	msgs := make(chan exSlackMessage, 10)
	slack := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		msgs <- exSlackMessage{Path: r.URL.Path, Msg: m}
		w.Header().Set("X-Slack-Req-Id", "slack-req-1")
		_, _ = io.WriteString(w, "ok")
	}))
	const hookPath = "/services/T000/B000/XXXXe2eSecretXXXX"
	config := testServer + fmt.Sprintf(`
plugin "slack" {
  command = [%q]
  sha256  = %q
}

notifier "desk" {
  plugin      = "slack"
  webhook_url = %q
  username    = "ringside"
  text        = "*${call.from_user_id}* is calling *${call.to_user_id}* (${call.type == "V" ? "video" : "audio"})"
}

route "desk" {
  when   = call.to_service_id == "linecorp.com"
  notify = ["desk"]
}
`, bin, fileSHA256(t, bin), slack+hookPath)

	path := writeConfig(t, config)
	if code, out, errOut := run(t, t.TempDir(), "validate", "-config", path); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}

	in := startRingside(t, config)
	code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	if code != 200 || !strings.Contains(body, `"status":"accepted"`) || !strings.Contains(body, `"route":"desk"`) {
		t.Fatalf("notify_cb: %d %s", code, body)
	}
	var got exSlackMessage
	select {
	case got = <-msgs:
	case <-time.After(10 * time.Second):
		t.Fatalf("no Slack message within 10s; logs:\n%s", in.logs.String())
	}
	if got.Path != hookPath || got.Msg["text"] != "*9286* is calling *2809* (audio)" || got.Msg["username"] != "ringside" {
		t.Errorf("Slack got %+v", got)
	}
	smsMetric(t, in, `ringside_deliveries_total{notifier="desk",outcome="delivered"} 1`)
	if strings.Contains(in.logs.String(), "XXXXe2eSecretXXXX") {
		t.Error("logs contain the secret webhook URL")
	}
}

// A plugin binary whose sha256 does not match its pin is refused.
func TestE2EExampleSlackPinned(t *testing.T) {
	bin := exBuild(t, "./examples/slack-plugin")
	config := testServer + fmt.Sprintf(`
plugin "slack" {
  command = [%q]
  sha256  = %q
}
notifier "desk" {
  plugin      = "slack"
  webhook_url = "https://hooks.slack.com/services/T/B/x"
}
route "desk" { notify = ["desk"] }
`, bin, strings.Repeat("ab", 32))
	code, out, errOut := run(t, t.TempDir(), "validate", "-config", writeConfig(t, config))
	if code != 1 || !strings.Contains(out+errOut, fileSHA256(t, bin)) {
		t.Errorf("validate with a wrong pin: exit %d\n%s%s", code, out, errOut)
	}
}
