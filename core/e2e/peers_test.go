package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// The fake peers of plugins/fakes, run on loopback until the test ends,
// and the configs that reach them.

// hookSecret is the webhook notifiers' signing secret.
const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// startWebhook starts a fake app server.
func startWebhook(t *testing.T, o fakes.WebhookOptions) *fakes.Webhook {
	t.Helper()
	f := fakes.StartWebhook(o)
	t.Cleanup(f.Close)
	return f
}

// answerStatus answers every webhook with status.
func answerStatus(status int) func(*fakes.WebhookRequest) fakes.WebhookAnswer {
	return func(*fakes.WebhookRequest) fakes.WebhookAnswer { return fakes.WebhookAnswer{Status: status} }
}

// retryAfter is an answer of status with a Retry-After of secs.
func retryAfter(status int, secs string) fakes.WebhookAnswer {
	return fakes.WebhookAnswer{Status: status, Header: map[string]string{"Retry-After": secs}}
}

// webhookConfig is one signed webhook notifier to url, with a payload,
// routed for every call.
func webhookConfig(url string) string {
	return testServer + "\n" + oneWebhook(url, fmt.Sprintf("secret  = %q", hookSecret), `payload = {
    video  = call.type == "V"
    caller = upper(call.from_user_id)
  }`)
}

// waitWebhooks polls hook until cond holds for the requests of every sid.
func waitWebhooks(t *testing.T, hook *fakes.Webhook, sids []string, timeout time.Duration, what string, cond func([]fakes.WebhookRequest) bool) {
	t.Helper()
	var missing []string
	eventually(t, timeout, what, func() bool {
		missing = missing[:0]
		for _, sid := range sids {
			if !cond(hook.Requests(sid)) {
				missing = append(missing, sid)
			}
		}
		return len(missing) == 0
	}, func() string { return fmt.Sprintf("%d of %d sids not: %v", len(missing), len(sids), missing) })
}

// waitDelivered waits until every sid got a 2xx answer at hook.
func waitDelivered(t *testing.T, hook *fakes.Webhook, sids []string, timeout time.Duration) {
	t.Helper()
	waitWebhooks(t, hook, sids, timeout, "delivered at the fake app", func(reqs []fakes.WebhookRequest) bool {
		for _, r := range reqs {
			if r.Status >= 200 && r.Status < 300 {
				return true
			}
		}
		return false
	})
}

// waitSeen waits until every sid reached hook at least once.
func waitSeen(t *testing.T, hook *fakes.Webhook, sids []string, timeout time.Duration) {
	t.Helper()
	waitWebhooks(t, hook, sids, timeout, "seen at the fake app", func(reqs []fakes.WebhookRequest) bool { return len(reqs) > 0 })
}

// waitRequests waits until hook received n requests, and returns them all.
func waitRequests(t *testing.T, hook *fakes.Webhook, n int) []fakes.WebhookRequest {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d webhooks arrived", n), func() bool { return len(hook.Requests("")) >= n })
	return hook.Requests("")
}

// quiet checks that hook receives nothing more than its n requests for a
// while.
func quiet(t *testing.T, hook *fakes.Webhook, n int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if reqs := hook.Requests(""); len(reqs) > n {
		t.Errorf("unexpected webhook: %s", reqs[n].Body)
	}
}

// ringAt sends a callback for sid to callee, checks it is accepted and
// waits until it reaches hook.
func ringAt(t *testing.T, in *instance, hook *fakes.Webhook, sid, callee string) {
	t.Helper()
	in.accept(t, sid, callee)
	waitSeen(t, hook, []string{sid}, 10*time.Second)
}

// apnsPeer is a fake APNs with its team key and certificate written for
// ringside.
type apnsPeer struct {
	*fakes.APNs
	keyFile string
	caFile  string
}

// env is the environment that makes ringside and its plugins trust the
// fake.
func (p *apnsPeer) env() string { return "SSL_CERT_FILE=" + p.caFile }

// startAPNs starts a fake APNs and writes its key and certificate into a
// new folder.
func startAPNs(t *testing.T, o fakes.APNsOptions) *apnsPeer {
	t.Helper()
	f := fakes.StartAPNs(o)
	t.Cleanup(f.Close)
	p := &apnsPeer{APNs: f}
	dir := t.TempDir()
	var err error
	if p.keyFile, err = f.WriteP8(dir); err != nil {
		t.Fatal(err)
	}
	if p.caFile, err = f.WriteCA(dir); err != nil {
		t.Fatal(err)
	}
	return p
}

// apnsKey writes an APNs team key into dir and returns its path.
func apnsKey(t *testing.T, dir string) string {
	t.Helper()
	path, err := fakes.NewAPNs(fakes.APNsOptions{}).WriteP8(dir)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	apnsTopic = "com.example.planet.voip"
	apnsToken = "8b5f3f7a0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbc"
)

// apnsNotifier is an apns notifier named ios of the fake's team, with the
// key in keyFile, pushing to topic at endpoint, with more attribute lines.
func apnsNotifier(keyFile, endpoint, topic string, attrs ...string) string {
	return notifierBlock("ios", "apns", append([]string{
		fmt.Sprintf("team_id  = %q", fakes.APNsTeamID),
		fmt.Sprintf("key_id   = %q", fakes.APNsKeyID),
		fmt.Sprintf("key_file = %q", keyFile),
		fmt.Sprintf("topic    = %q", topic),
		fmt.Sprintf("endpoint = %q", endpoint),
	}, attrs...)...)
}

// apnsConfig routes every call to one apns notifier.
func apnsConfig(keyFile, endpoint, topic string) string {
	return testServer + "\n" + apnsNotifier(keyFile, endpoint, topic) + routeTo("all", "", "ios")
}

// apnsWaitPushes waits until the fake APNs received n pushes, and returns
// them all.
func apnsWaitPushes(t *testing.T, f *apnsPeer, n int) []fakes.Push {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d pushes reached the fake APNs", n), func() bool { return len(f.Pushes()) >= n })
	return f.Pushes()
}

// startFCM starts a fake FCM and writes its service account's key into a
// new folder; the test fails if the token endpoint refused an assertion.
func startFCM(t *testing.T, o fakes.FCMOptions) (*fakes.FCM, string) {
	t.Helper()
	f := fakes.StartFCM(o)
	t.Cleanup(f.Close)
	t.Cleanup(func() {
		if errs := f.TokenErrors(); len(errs) > 0 {
			t.Errorf("token requests refused by the fake: %v", errs)
		}
	})
	creds, err := f.WriteServiceAccount(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return f, creds
}

// fcmError is an FCM v1 error answer with an FcmError detail.
func fcmError(status int, rpcStatus, code, msg string) fakes.FCMAnswer {
	return fakes.FCMAnswer{Status: status, RPCStatus: rpcStatus, ErrorCode: code, Message: msg}
}

// startTwilio starts a fake Twilio whose answers to the numbers of answers
// are the statuses listed, in turn (then 201): 429 with Retry-After: 1, the
// rest Twilio's error 21211 (invalid To), quoting the number.
func startTwilio(t *testing.T, o fakes.TwilioOptions, answers map[string][]int) *fakes.Twilio {
	t.Helper()
	queue := map[string][]int{}
	for k, v := range answers {
		queue[k] = append([]int(nil), v...)
	}
	var mu sync.Mutex
	o.Answer = func(m *fakes.SMS) fakes.SMSAnswer {
		mu.Lock()
		defer mu.Unlock()
		to := m.Form.Get("To")
		q := queue[to]
		if len(q) == 0 {
			return fakes.SMSAnswer{}
		}
		status := q[0]
		queue[to] = q[1:]
		if status == http.StatusTooManyRequests {
			return fakes.SMSAnswer{Status: status, Code: 20429, Message: "Too Many Requests", Header: map[string]string{"Retry-After": "1"}}
		}
		return fakes.SMSAnswer{Status: status, Code: 21211, Message: fmt.Sprintf("The 'To' number %s is not a valid phone number.", to)}
	}
	f := fakes.StartTwilio(o)
	t.Cleanup(f.Close)
	return f
}

// startOTLP starts an OTLP/HTTP trace receiver.
func startOTLP(t *testing.T) *fakes.OTLP {
	t.Helper()
	f := fakes.StartOTLP()
	t.Cleanup(f.Close)
	return f
}

// tracedPeers starts an OTLP receiver and a webhook fake that checks
// hookSecret's signature; telemetry is the block that exports ringside's
// spans to the receiver. Start ringside with quickExport so that it and
// its plugins export soon.
func tracedPeers(t *testing.T) (recv *fakes.OTLP, hook *fakes.Webhook, telemetry string) {
	t.Helper()
	recv = startOTLP(t)
	hook = startWebhook(t, fakes.WebhookOptions{Secret: hookSecret})
	return recv, hook, tracing(recv.URL, "ringside-e2e")
}

// quickExport is the environment that has ringside and its plugins (the
// OTEL_* variables reach them) export their spans every 100ms.
const quickExport = "OTEL_BSP_SCHEDULE_DELAY=100"

// tracing is a telemetry block exporting to the receiver at url.
func tracing(url, service string) string {
	return fmt.Sprintf(`
telemetry {
  traces       = "otlp"
  endpoint     = %q
  service_name = %q
}
`, url, service)
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Config blocks.

// block is an HCL block of type kind labelled name, one attribute line
// after another, each indented by two spaces.
func block(kind, name string, lines ...string) string {
	b := fmt.Sprintf("%s %q {\n", kind, name)
	for _, l := range lines {
		b += "  " + l + "\n"
	}
	return b + "}\n"
}

// notifierBlock is a notifier block named name, of plugin, with
// attribute lines.
func notifierBlock(name, plugin string, attrs ...string) string {
	return block("notifier", name, append([]string{fmt.Sprintf("plugin = %q", plugin)}, attrs...)...)
}

// webhookNotifier is a webhook notifier block named name, to url, with
// more attribute lines.
func webhookNotifier(name, url string, attrs ...string) string {
	return notifierBlock(name, "webhook", append([]string{fmt.Sprintf("url    = %q", url)}, attrs...)...)
}

// routeTo is a route block that sends the calls when accepts ("": every
// call) to notify.
func routeTo(name, when string, notify ...string) string { return route(name, when, notify, nil) }

// fallbackRoute is routeTo one notifier, with a fallback for when it
// fails.
func fallbackRoute(name, when, notify, fallback string) string {
	return route(name, when, []string{notify}, []string{fallback})
}

func route(name, when string, notify, fallback []string) string {
	list := func(names []string) string {
		q := make([]string, len(names))
		for i, n := range names {
			q[i] = strconv.Quote(n)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	var lines []string
	if when != "" {
		lines = append(lines, "when     = "+when)
	}
	lines = append(lines, "notify   = "+list(notify))
	if fallback != nil {
		lines = append(lines, "fallback = "+list(fallback))
	}
	return block("route", name, lines...)
}

// onRoute is a route block for callbacks of kind on, with more attribute
// lines.
func onRoute(name, on string, attrs ...string) string {
	return block("route", name, append([]string{fmt.Sprintf("on = %q", on)}, attrs...)...)
}

// oneWebhook is one webhook notifier named app, to url with more
// attribute lines, routed for every call.
func oneWebhook(url string, attrs ...string) string {
	return webhookNotifier("app", url, attrs...) + routeTo("all", "", "app")
}

// directoryAt is the embedded directory (and journal) at path.
func directoryAt(path string) string {
	return block("directory", "embedded", fmt.Sprintf("path = %q", path))
}

// pluginBlock declares the external plugin name at command, with more
// attribute lines.
func pluginBlock(name, command string, attrs ...string) string {
	return block("plugin", name, append([]string{fmt.Sprintf("command = [%q]", command)}, attrs...)...)
}

// consolePluginBlock declares the console plugin at command.
func consolePluginBlock(command string) string { return pluginBlock("console", command) }
