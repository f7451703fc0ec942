package e2e

// Fault tests of the configuration, against the real binary: a reload to
// an empty, truncated or non-UTF-8 file; a config that routes nobody at
// start; secrets planted where diagnostics print them; a SIGTERM while a
// reload is stuck starting a plugin; and a payload that fails to render
// for one notifier. Calls are counted at the fake webhook peers.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// (a) An empty file, and a file saved half-way (cut after a complete block,
// which still parses; cut inside a block), are refused by the watcher and
// by SIGHUP: the old config keeps ringing. The rest of the write then
// reloads normally.
func TestE2EFaultConfigEmptyAndTruncatedReload(t *testing.T) {
	hook := startWebhook(t, fakes.WebhookOptions{})
	config := webhookConfig(hook.URL + "/hook")
	in := start(t, config)
	n := 0
	ring := func() { n++; ringAt(t, in, hook, sidN(0xfc00000a, n), "2809") }
	ring()

	refusals := 0
	refuse := func(reason, want string) {
		t.Helper()
		refusals++
		l := waitNth(t, in, refusals, 15*time.Second, "refused reload ("+reason+")", refused(""))
		if l["reason"] != reason || !strings.Contains(fmt.Sprint(l["diagnostics"]), want) {
			t.Errorf("refused reload: reason %v, diagnostics %q; want %q and %q", l["reason"], l["diagnostics"], reason, want)
		}
		ring()
	}

	// An empty file: by the watcher, then by SIGHUP.
	writeFile(t, in.config, []byte(""))
	refuse("file changed", "config.hcl:1:1: error: The configuration has no route")
	in.signal(t, syscall.SIGHUP)
	refuse("SIGHUP", "The configuration has no route")

	reloads := 0
	restore := func() {
		t.Helper()
		writeFile(t, in.config, []byte(config))
		reloads++
		waitNth(t, in, reloads, 15*time.Second, "reload of the whole file", reloaded("file changed"))
		ring()
	}
	restore()

	// Saved half-way, the writer still busy: the watcher sees the half.
	for _, cut := range []struct {
		name string
		at   int
		want string
	}{
		{"after a complete block", strings.Index(config, "route \"all\""), "The configuration has no route"},
		{"inside a block", strings.Index(config, "route \"all\"") + len("route \"all\" {\n  noti"), "error:"},
		{"half the bytes", len(config) / 2, "error:"},
	} {
		f, err := os.OpenFile(in.config, os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(config[:cut.at]); err != nil {
			t.Fatal(err)
		}
		refuse("file changed", cut.want)
		if _, err := f.WriteString(config[cut.at:]); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		reloads++
		waitNth(t, in, reloads, 15*time.Second, "reload once the write ends ("+cut.name+")", reloaded("file changed"))
		ring()
	}

	if got := in.metric(t, `ringside_config_reloads_total{result="error"}`); got != float64(refusals) {
		t.Errorf("reloads{result=error}: %v; want %d", got, refusals)
	}
}

// nonUTF8 is the 161-byte config file that made the diagnostics renderer
// panic: 140 ASCII characters, then bytes that are not UTF-8.
var nonUTF8 = append(bytes.Repeat([]byte("A"), 140), bytes.Repeat([]byte{0x80}, 21)...)

// (b) The non-UTF-8 file, by SIGHUP and by the watcher: refused, the
// process alive and ringing; validate reports it and exits 1.
func TestE2EFaultConfigNonUTF8(t *testing.T) {
	hook := startWebhook(t, fakes.WebhookOptions{})
	config := webhookConfig(hook.URL + "/hook")
	in := start(t, config)
	ringAt(t, in, hook, sidN(0xfc00000b, 1), "2809")

	// SIGHUP: the file is replaced at once (rename), so the watcher
	// reloads it too, later; both are refused.
	tmp := in.config + ".tmp"
	if err := os.WriteFile(tmp, nonUTF8, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, in.config); err != nil {
		t.Fatal(err)
	}
	in.signal(t, syscall.SIGHUP)
	l := waitNth(t, in, 1, 15*time.Second, "refused reload (SIGHUP)", refused("SIGHUP"))
	if d := fmt.Sprint(l["diagnostics"]); !strings.Contains(d, "Invalid character encoding") {
		t.Errorf("diagnostics: %q", d)
	}
	waitNth(t, in, 1, 15*time.Second, "refused reload (file changed)", refused("file changed"))
	ringAt(t, in, hook, sidN(0xfc00000b, 2), "2809")

	// The watcher alone, after a good reload.
	writeFile(t, in.config, []byte(config))
	waitNth(t, in, 1, 15*time.Second, "reload", reloaded("file changed"))
	if err := os.WriteFile(in.config, nonUTF8, 0o600); err != nil {
		t.Fatal(err)
	}
	waitNth(t, in, 2, 15*time.Second, "refused reload (file changed)", refused("file changed"))
	ringAt(t, in, hook, sidN(0xfc00000b, 3), "2809")
	if strings.Contains(in.logs.String(), "panic") {
		t.Errorf("a panic was logged:\n%s", in.logs.String())
	}

	code, out, errOut := run(t, in.dir, "validate", "-config", in.config)
	if code != 1 || !strings.Contains(out, in.config+":1:141: error: Invalid character encoding") || strings.Contains(out+errOut, "panic") {
		t.Errorf("validate: exit %d; want 1 and the encoding error at 1:141\n%s%s", code, out, errOut)
	}
}

// (c) serve refuses, at start, a config with no route, saying why at the
// file's end; one that says ring_nobody = true starts, warns, and answers
// every call unrouted.
func TestE2EFaultConfigNoRouteAtStart(t *testing.T) {
	config := testServer + `
notifier "app" {
  plugin = "webhook"
  url    = "http://127.0.0.1:1/hook"
}
`
	path := writeConfig(t, config)
	lines := strings.Count(config, "\n")
	for _, cmd := range []string{"serve", "validate"} {
		code, out, errOut := runWith(t, filepath.Dir(path), nil, 20*time.Second, cmd, "-config", path)
		want := fmt.Sprintf("%s:%d:1: error: The configuration has no route", path, lines)
		if code != 1 || !strings.Contains(out+errOut, want) || !strings.Contains(out+errOut, "ring_nobody") {
			t.Errorf("%s: exit %d; want 1 and %q\n%s%s", cmd, code, want, out, errOut)
		}
	}

	in := start(t, "ring_nobody = true\n"+config)
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "config warning" && strings.Contains(fmt.Sprint(l["diagnostic"]), "rings nobody")
	}); err != nil {
		t.Errorf("no warning: %v\n%s", err, in.logs.String())
	}
	if code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil); code != 200 || !strings.Contains(body, `"status":"unrouted"`) {
		t.Errorf("callback: %d %s; want 200 unrouted", code, body)
	}
}

// Planted secrets of the config test.
const (
	plantedURLPassword = "urlpassPLANTED7c2e"
	plantedURLQuery    = "urlqueryPLANTED91ab"
	plantedHeaderValue = "hdrvaluePLANTED44d0"
	plantedSlackPath   = "slackpathPLANTED0f3a"
	plantedRotatedKey  = "whsec_cm90YXRlZFBMQU5URURzaWduaW5nS2V5MDE="
)

// (d) Secrets on the lines diagnostics print — a URL's userinfo and query,
// a header value, an attribute the plugin's schema marks sensitive under
// a name that says nothing, a signing secret — never appear: not in a
// start warning, a refused reload's log, validate's or explain's output.
func TestE2EFaultConfigSecretsNeverPrinted(t *testing.T) {
	slack := slackPlugin(t)
	hook := startWebhook(t, fakes.WebhookOptions{})
	hookURL := strings.Replace(hook.URL, "http://", "http://ringside:"+plantedURLPassword+"@", 1) + "/hook?apikey=" + plantedURLQuery
	good := testServer + fmt.Sprintf(`
plugin "slack" {
  command = [%q]
}

notifier "desk" {
  plugin      = "slack"
  webhook_url = "https://slack-proxy.example/services/T0/B0/%s"
}

notifier "app" {
  plugin  = "webhook"
  url     = %q
  secret  = %q
  headers = { Authorization = "Bearer %s" }
}

route "all" {
  notify = ["app"]
}
`, slack, plantedSlackPath, hookURL, hookSecret, plantedHeaderValue)
	// The same with mistakes on the secrets' lines: for the parser (a
	// rotated secret missing its closing quote), and for the schemas and
	// plugins (a URL and a secret in lists, a header name with a space).
	unparsable := strings.Replace(good, fmt.Sprintf("secret  = %q", hookSecret), `secret  = "`+plantedRotatedKey, 1)
	rejected := strings.NewReplacer(
		fmt.Sprintf("url     = %q", hookURL), fmt.Sprintf("url     = [%q]", hookURL),
		fmt.Sprintf("secret  = %q", hookSecret), fmt.Sprintf("secret  = [%q]", plantedRotatedKey),
		`route "all" {`, fmt.Sprintf(`notifier "app2" {
  plugin  = "webhook"
  url     = %q
  headers = { "Bad Header" = "x", Authorization = "Bearer %s" }
}

route "all" {`, hook.URL+"/hook2", plantedHeaderValue),
	).Replace(good)
	if unparsable == good || strings.Count(rejected, "[") < 2 {
		t.Fatal("no mistake planted")
	}

	in := start(t, good)
	ringAt(t, in, hook, sidN(0xfc00000d, 1), "2809")
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "config warning" && strings.Contains(fmt.Sprint(l["diagnostic"]), "webhook_url")
	}); err != nil {
		t.Errorf("no start warning at webhook_url (the control): %v", err)
	}
	for i, text := range []string{unparsable, rejected} {
		writeFile(t, in.config, []byte(text))
		in.signal(t, syscall.SIGHUP)
		l := waitNth(t, in, i+1, 15*time.Second, "refused reload", refused("SIGHUP"))
		if !strings.Contains(fmt.Sprint(l["diagnostics"]), "<redacted>") {
			t.Errorf("the refused reload's diagnostics show no hidden line (the control):\n%v", l["diagnostics"])
		}
	}
	in.stop()

	// The tools, on each file.
	paths := map[string]string{"good": in.config, "unparsable": filepath.Join(in.dir, "unparsable.hcl"), "rejected": filepath.Join(in.dir, "rejected.hcl")}
	writeFile(t, paths["good"], []byte(good))
	writeFile(t, paths["unparsable"], []byte(unparsable))
	writeFile(t, paths["rejected"], []byte(rejected))
	outputs := map[string]string{"ringside logs": in.logs.String()}
	for name, path := range paths {
		for _, args := range [][]string{
			{"validate", "-config", path},
			{"explain", "-config", path, "-json", lineExample},
			{"explain", "-config", path, lineExample},
		} {
			_, out, errOut := run(t, in.dir, args...)
			key := args[0] + " " + name
			if len(args) == 5 {
				key += " -json"
			}
			outputs[key] = out + errOut
		}
	}
	if v := outputs["validate rejected"]; !strings.Contains(v, "url     = [\"http://<redacted>@") || !strings.Contains(v, "Authorization = <redacted>") {
		t.Errorf("validate: no hidden url or header line (the control):\n%s", v)
	}
	if v := outputs["validate good"]; !strings.Contains(v, "webhook_url = <redacted>") {
		t.Errorf("validate: no hidden webhook_url line (the control):\n%s", v)
	}

	s := &leakScanner{}
	s.plant("URL password", plantedURLPassword)
	s.plant("URL query value", plantedURLQuery)
	s.plant("header value", plantedHeaderValue)
	s.plant("sensitive webhook_url", plantedSlackPath)
	s.plant("webhook secret", hookSecret, strings.TrimPrefix(hookSecret, "whsec_"))
	s.plant("rotated webhook secret", plantedRotatedKey, strings.TrimPrefix(plantedRotatedKey, "whsec_"))
	for name, text := range outputs {
		for _, leak := range s.scan(name, text) {
			t.Errorf("LEAK: %s", leak)
		}
	}
}

// (e) SIGTERM while a reload is starting a plugin that never completes
// the go-plugin handshake, with more reloads queued behind it: ringside
// exits 0 within shutdown_grace plus 2 s, and the plugin process is gone.
func TestE2EFaultConfigSIGTERMDuringHungReload(t *testing.T) {
	const grace, bound = 2 * time.Second, 2 * time.Second // testServer's shutdown_grace
	hook := startWebhook(t, fakes.WebhookOptions{})
	config := webhookConfig(hook.URL + "/hook")
	in := start(t, config)
	ringAt(t, in, hook, sidN(0xfc00000e, 1), "2809")

	pidFile := filepath.Join(in.dir, "hung.pid")
	script := filepath.Join(in.dir, "hung-plugin.sh")
	writeFile(t, script, []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 600\n"))
	if err := os.Chmod(script, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, in.config, []byte(config+pluginBlock("hung", script)+notifierBlock("stuck", "hung")+routeTo("stuck", "", "stuck")))
	in.signal(t, syscall.SIGHUP)
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0; {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hung plugin did not start\n%s", in.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Two more reloads behind the stuck one (and the watcher's).
	in.signal(t, syscall.SIGHUP)
	in.signal(t, syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	ringAt(t, in, hook, sidN(0xfc00000e, 2), "2809") // still serving the old config

	start := time.Now()
	in.signal(t, syscall.SIGTERM)
	if err, ok := in.waitExit(grace + bound + 5*time.Second); ok {
		took := time.Since(start)
		if err != nil {
			t.Errorf("exit: %v; want 0\n%s", err, in.logs.String())
		}
		if took > grace+bound {
			t.Errorf("exited %v after SIGTERM; want at most %v", took, grace+bound)
		}
		t.Logf("exited %v after SIGTERM", took)
	} else {
		_ = in.cmd.Process.Kill()
		t.Fatalf("no exit %v after SIGTERM (shutdown_grace %v)\n%s", grace+bound+5*time.Second, grace, in.logs.String())
	}
	for deadline := time.Now().Add(2 * time.Second); alive(pid); {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the hung plugin %d outlived ringside", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// (f) A payload that fails at run time (an absent call.extra key) on one
// notifier: the call is accepted, the other notifier rings, a route that
// only had that notifier falls back, and the failure is logged at WARN
// with the expression's place (not cc_param) and counted.
func TestE2EFaultConfigRenderFailure(t *testing.T) {
	broken := startWebhook(t, fakes.WebhookOptions{})
	other := startWebhook(t, fakes.WebhookOptions{})
	config := testServer + webhookNotifier("broken", broken.URL+"/hook", `payload = {
    caller = call.extra["caller_name"]
  }`) + webhookNotifier("other", other.URL+"/hook") +
		fallbackRoute("solo", `call.to_user_id == "solo"`, "broken", "other") + routeTo("all", "", "broken", "other")
	in := start(t, config)
	line := 1 + strings.Count(config[:strings.Index(config, "call.extra")], "\n")

	// Both notifiers routed: the other rings.
	sid := sidN(0xfc00000f, 1)
	ringAt(t, in, other, sid, "2809")
	// The broken one was the route's only way: fallback.
	sid2 := sidN(0xfc00000f, 2)
	ringAt(t, in, other, sid2, "solo")
	quiet(t, broken, 0, 300*time.Millisecond)

	for _, s := range []string{sid, sid2} {
		l := waitNth(t, in, 1, 5*time.Second, "render warning", func(l map[string]any) bool {
			return l["level"] == "WARN" && l["msg"] == "payload did not render; notifier skipped for this call" && l["sid"] == s
		})
		if e := fmt.Sprint(l["error"]); !strings.Contains(e, fmt.Sprintf("%s:%d:", in.config, line)) || strings.Contains(e, lineParam) {
			t.Errorf("warning: %q; want the place %s:%d and no cc_param", e, in.config, line)
		}
	}
	if got := in.metric(t, `ringside_render_errors_total{notifier="broken"}`); got != 2 {
		t.Errorf("render errors: %v; want 2", got)
	}

	code, out, errOut := run(t, in.dir, "explain", "-config", in.config, lineExample)
	if code != 0 || !strings.Contains(out, "render error:") || !strings.Contains(out, "notifier other") {
		t.Errorf("explain: exit %d; want 0 and the render error\n%s%s", code, out, errOut)
	}
}

// waitNth waits until n log lines match ok, and returns the n-th.
func waitNth(t *testing.T, in *instance, n int, timeout time.Duration, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	return in.waitLogs(t, n, timeout, what, ok)[n-1]
}
