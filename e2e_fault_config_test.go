package main

// Fault tests of the configuration, against the real binary: a reload to
// an empty, truncated or non-UTF-8 file; a config that routes nobody at
// start; secrets planted where diagnostics print them; a SIGTERM while a
// reload is stuck starting a plugin; and a payload that fails to render
// for one notifier. Calls are counted at the fake webhook peers.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fcConfig is one webhook notifier to url, routed for every call.
func fcConfig(url string) string {
	return testServer + fmt.Sprintf(`
notifier "app" {
  plugin  = "webhook"
  url     = %q
  payload = {
    caller = upper(call.from_user_id)
  }
}

route "all" {
  notify = ["app"]
}
`, url)
}

// fcSID is the n-th session id of a test (tag tells tests apart).
func fcSID(tag, n int) string {
	return fmt.Sprintf("fc%06x-0000-4000-8000-%012x", tag&0xffffff, n)
}

// fcQuery is the LINE example with another sid and callee.
func fcQuery(sid, callee string) string {
	q := strings.Replace(lineExample, "sid=151ad995-749c-4a28-893f-636700469db1", "sid="+sid, 1)
	return strings.Replace(q, "to_user_id=2809", "to_user_id="+callee, 1)
}

// fcRing sends a callback for the LINE example's callee and checks it is
// accepted and reaches hook.
func fcRing(t *testing.T, in *instance, hook *hookServer, sid string) {
	t.Helper()
	fcRingAt(t, in, hook, sid, "2809")
}

// fcQuiet checks that hook receives nothing for a while.
func fcQuiet(t *testing.T, hook *hookServer, d time.Duration) {
	t.Helper()
	select {
	case r := <-hook.reqs:
		t.Errorf("unexpected webhook: %s", r.Body)
	case <-time.After(d):
	}
}

// fcWaitCount waits until n log lines match ok, and returns the n-th.
func fcWaitCount(t *testing.T, in *instance, n int, timeout time.Duration, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got []map[string]any
		for _, l := range in.logs.JSONLines() {
			if ok(l) {
				got = append(got, l)
			}
		}
		if len(got) >= n {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d log lines within %v; want %d\nlogs:\n%s", what, len(got), timeout, n, in.logs.String())
		}
		if in.cmd.ProcessState != nil || fcExited(in) {
			t.Fatalf("%s: ringside exited\nlogs:\n%s", what, in.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fcExited reports whether the instance's process has ended (without
// consuming its exit for stop).
func fcExited(in *instance) bool {
	select {
	case err := <-in.done:
		in.done <- err
		return true
	default:
		return false
	}
}

func fcRefused(reason string) func(map[string]any) bool {
	return func(l map[string]any) bool {
		return l["msg"] == "config reload refused; the previous config keeps serving" && l["reason"] == reason
	}
}

func fcReloaded(reason string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["msg"] == "config reloaded" && l["reason"] == reason }
}

// fcMetric returns the value of a metric line (name with labels) or -1.
func fcMetric(t *testing.T, in *instance, series string) float64 {
	t.Helper()
	_, _, body := do(t, "GET", in.adminURL+"/metrics", nil)
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, l)
			}
			return f
		}
	}
	return -1
}

func fcWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// (a) An empty file, and a file saved half-way (cut after a complete block,
// which still parses; cut inside a block), are refused by the watcher and
// by SIGHUP: the old config keeps ringing. The rest of the write then
// reloads normally.
func TestE2EFaultConfigEmptyAndTruncatedReload(t *testing.T) {
	hook := newHookServer(t, http.StatusNoContent)
	config := fcConfig(hook.URL + "/hook")
	in := startRingside(t, config)
	n := 0
	ring := func() { n++; fcRing(t, in, hook, fcSID(0xa, n)) }
	ring()

	refusals := 0
	refused := func(reason, want string) {
		t.Helper()
		refusals++
		l := fcWaitCount(t, in, refusals, 15*time.Second, "refused reload ("+reason+")", func(l map[string]any) bool {
			return l["msg"] == "config reload refused; the previous config keeps serving"
		})
		if l["reason"] != reason || !strings.Contains(fmt.Sprint(l["diagnostics"]), want) {
			t.Errorf("refused reload: reason %v, diagnostics %q; want %q and %q", l["reason"], l["diagnostics"], reason, want)
		}
		ring()
	}

	// An empty file: by the watcher, then by SIGHUP.
	fcWrite(t, in.config, "")
	refused("file changed", "config.hcl:1:1: error: The configuration has no route")
	_ = in.cmd.Process.Signal(syscall.SIGHUP)
	refused("SIGHUP", "The configuration has no route")

	reloads := 0
	restore := func() {
		t.Helper()
		fcWrite(t, in.config, config)
		reloads++
		fcWaitCount(t, in, reloads, 15*time.Second, "reload of the whole file", fcReloaded("file changed"))
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
		refused("file changed", cut.want)
		if _, err := f.WriteString(config[cut.at:]); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		reloads++
		fcWaitCount(t, in, reloads, 15*time.Second, "reload once the write ends ("+cut.name+")", fcReloaded("file changed"))
		ring()
	}

	if got := fcMetric(t, in, `ringside_config_reloads_total{result="error"}`); got != float64(refusals) {
		t.Errorf("reloads{result=error}: %v; want %d", got, refusals)
	}
}

// fcNonUTF8 is the 161-byte file that made the diagnostics renderer panic:
// 140 ASCII characters, then bytes that are not UTF-8.
var fcNonUTF8 = append(bytes.Repeat([]byte("A"), 140), bytes.Repeat([]byte{0x80}, 21)...)

// (b) The non-UTF-8 file, by SIGHUP and by the watcher: refused, the
// process alive and ringing; validate reports it and exits 1.
func TestE2EFaultConfigNonUTF8(t *testing.T) {
	hook := newHookServer(t, http.StatusNoContent)
	config := fcConfig(hook.URL + "/hook")
	in := startRingside(t, config)
	fcRing(t, in, hook, fcSID(0xb, 1))

	// SIGHUP: the file is replaced at once (rename), so the watcher
	// reloads it too, later; both are refused.
	tmp := in.config + ".tmp"
	if err := os.WriteFile(tmp, fcNonUTF8, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, in.config); err != nil {
		t.Fatal(err)
	}
	_ = in.cmd.Process.Signal(syscall.SIGHUP)
	l := fcWaitCount(t, in, 1, 15*time.Second, "refused reload (SIGHUP)", fcRefused("SIGHUP"))
	if d := fmt.Sprint(l["diagnostics"]); !strings.Contains(d, "Invalid character encoding") {
		t.Errorf("diagnostics: %q", d)
	}
	fcWaitCount(t, in, 1, 15*time.Second, "refused reload (file changed)", fcRefused("file changed"))
	fcRing(t, in, hook, fcSID(0xb, 2))

	// The watcher alone, after a good reload.
	fcWrite(t, in.config, config)
	fcWaitCount(t, in, 1, 15*time.Second, "reload", fcReloaded("file changed"))
	if err := os.WriteFile(in.config, fcNonUTF8, 0o600); err != nil {
		t.Fatal(err)
	}
	fcWaitCount(t, in, 2, 15*time.Second, "refused reload (file changed)", fcRefused("file changed"))
	fcRing(t, in, hook, fcSID(0xb, 3))
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
		code, out, errOut := fcRun(t, filepath.Dir(path), 20*time.Second, cmd, "-config", path)
		want := fmt.Sprintf("%s:%d:1: error: The configuration has no route", path, lines)
		if code != 1 || !strings.Contains(out+errOut, want) || !strings.Contains(out+errOut, "ring_nobody") {
			t.Errorf("%s: exit %d; want 1 and %q\n%s%s", cmd, code, want, out, errOut)
		}
	}

	in := startRingside(t, "ring_nobody = true\n"+config)
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "config warning" && strings.Contains(fmt.Sprint(l["diagnostic"]), "rings nobody")
	}); err != nil {
		t.Errorf("no warning: %v\n%s", err, in.logs.String())
	}
	if code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil); code != 200 || !strings.Contains(body, `"status":"unrouted"`) {
		t.Errorf("callback: %d %s; want 200 unrouted", code, body)
	}
}

// fcRun is run, but a command still running after timeout is killed
// (exit -1): a serve that should have refused to start.
func fcRun(t *testing.T, dir string, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(ringsideBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

var (
	fcSlackOnce sync.Once
	fcSlackBin  string
	fcSlackErr  error
)

// fcSlackPlugin builds the example Slack plugin, whose webhook_url is
// sensitive in its schema though its name says nothing of it.
func fcSlackPlugin(t *testing.T) string {
	t.Helper()
	fcSlackOnce.Do(func() {
		fcSlackBin = filepath.Join(filepath.Dir(ringsideBin), "slack-plugin")
		out, err := exec.Command("go", "build", "-o", fcSlackBin, "./examples/slack-plugin").CombinedOutput()
		if err != nil {
			fcSlackErr = fmt.Errorf("build slack-plugin: %v\n%s", err, out)
		}
	})
	if fcSlackErr != nil {
		t.Fatal(fcSlackErr)
	}
	return fcSlackBin
}

// Planted secrets of the config test.
const (
	fcURLPassword  = "urlpassPLANTED7c2e"
	fcURLQuery     = "urlqueryPLANTED91ab"
	fcHeaderValue  = "hdrvaluePLANTED44d0"
	fcSlackPath    = "slackpathPLANTED0f3a"
	fcRotatedWHKey = "whsec_cm90YXRlZFBMQU5URURzaWduaW5nS2V5MDE="
)

// (d) Secrets on the lines diagnostics print — a URL's userinfo and query,
// a header value, an attribute the plugin's schema marks sensitive under
// a name that says nothing, a signing secret — never appear: not in a
// start warning, a refused reload's log, validate's or explain's output.
func TestE2EFaultConfigSecretsNeverPrinted(t *testing.T) {
	slack := fcSlackPlugin(t)
	hook := newHookServer(t, http.StatusNoContent)
	hookURL := strings.Replace(hook.URL, "http://", "http://ringside:"+fcURLPassword+"@", 1) + "/hook?apikey=" + fcURLQuery
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
`, slack, fcSlackPath, hookURL, hookSecret, fcHeaderValue)
	// The same with mistakes on the secrets' lines: for the parser (a
	// rotated secret missing its closing quote), and for the schemas and
	// plugins (a URL and a secret in lists, a header name with a space).
	unparsable := strings.Replace(good, fmt.Sprintf("secret  = %q", hookSecret), `secret  = "`+fcRotatedWHKey, 1)
	rejected := strings.NewReplacer(
		fmt.Sprintf("url     = %q", hookURL), fmt.Sprintf("url     = [%q]", hookURL),
		fmt.Sprintf("secret  = %q", hookSecret), fmt.Sprintf("secret  = [%q]", fcRotatedWHKey),
		`route "all" {`, fmt.Sprintf(`notifier "app2" {
  plugin  = "webhook"
  url     = %q
  headers = { "Bad Header" = "x", Authorization = "Bearer %s" }
}

route "all" {`, hook.URL+"/hook2", fcHeaderValue),
	).Replace(good)
	if unparsable == good || strings.Count(rejected, "[") < 2 {
		t.Fatal("no mistake planted")
	}

	in := startRingside(t, good)
	fcRing(t, in, hook, fcSID(0xd, 1))
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "config warning" && strings.Contains(fmt.Sprint(l["diagnostic"]), "webhook_url")
	}); err != nil {
		t.Errorf("no start warning at webhook_url (the control): %v", err)
	}
	for i, text := range []string{unparsable, rejected} {
		fcWrite(t, in.config, text)
		_ = in.cmd.Process.Signal(syscall.SIGHUP)
		l := fcWaitCount(t, in, i+1, 15*time.Second, "refused reload", fcRefused("SIGHUP"))
		if !strings.Contains(fmt.Sprint(l["diagnostics"]), "<redacted>") {
			t.Errorf("the refused reload's diagnostics show no hidden line (the control):\n%v", l["diagnostics"])
		}
	}
	in.stop()

	// The tools, on each file.
	paths := map[string]string{"good": in.config, "unparsable": filepath.Join(in.dir, "unparsable.hcl"), "rejected": filepath.Join(in.dir, "rejected.hcl")}
	fcWrite(t, paths["good"], good)
	fcWrite(t, paths["unparsable"], unparsable)
	fcWrite(t, paths["rejected"], rejected)
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
	s.plant("URL password", fcURLPassword)
	s.plant("URL query value", fcURLQuery)
	s.plant("header value", fcHeaderValue)
	s.plant("sensitive webhook_url", fcSlackPath)
	s.plant("webhook secret", hookSecret, strings.TrimPrefix(hookSecret, "whsec_"))
	s.plant("rotated webhook secret", fcRotatedWHKey, strings.TrimPrefix(fcRotatedWHKey, "whsec_"))
	for name, text := range outputs {
		for _, leak := range s.scan(name, text) {
			t.Errorf("LEAK: %s", leak)
		}
	}
}

// fcAlive reports whether pid runs (a zombie has ended).
func fcAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// (e) SIGTERM while a reload is starting a plugin that never completes
// the go-plugin handshake, with more reloads queued behind it: ringside
// exits 0 within shutdown_grace plus 2 s, and the plugin process is gone.
func TestE2EFaultConfigSIGTERMDuringHungReload(t *testing.T) {
	const grace, bound = 2 * time.Second, 2 * time.Second // testServer's shutdown_grace
	hook := newHookServer(t, http.StatusNoContent)
	config := fcConfig(hook.URL + "/hook")
	in := startRingside(t, config)
	fcRing(t, in, hook, fcSID(0xe, 1))

	pidFile := filepath.Join(in.dir, "hung.pid")
	script := filepath.Join(in.dir, "hung-plugin.sh")
	fcWrite(t, script, "#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 600\n")
	if err := os.Chmod(script, 0o700); err != nil {
		t.Fatal(err)
	}
	fcWrite(t, in.config, config+fmt.Sprintf(`
plugin "hung" {
  command = [%q]
}
notifier "stuck" {
  plugin = "hung"
}
route "stuck" {
  notify = ["stuck"]
}
`, script))
	_ = in.cmd.Process.Signal(syscall.SIGHUP)
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
	_ = in.cmd.Process.Signal(syscall.SIGHUP)
	_ = in.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	fcRing(t, in, hook, fcSID(0xe, 2)) // still serving the old config

	start := time.Now()
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.done:
		in.done <- err
		took := time.Since(start)
		if err != nil {
			t.Errorf("exit: %v; want 0\n%s", err, in.logs.String())
		}
		if took > grace+bound {
			t.Errorf("exited %v after SIGTERM; want at most %v", took, grace+bound)
		}
		t.Logf("exited %v after SIGTERM", took)
	case <-time.After(grace + bound + 5*time.Second):
		_ = in.cmd.Process.Kill()
		t.Fatalf("no exit %v after SIGTERM (shutdown_grace %v)\n%s", grace+bound+5*time.Second, grace, in.logs.String())
	}
	for deadline := time.Now().Add(2 * time.Second); fcAlive(pid); {
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
	broken := newHookServer(t, http.StatusNoContent)
	other := newHookServer(t, http.StatusNoContent)
	config := testServer + fmt.Sprintf(`
notifier "broken" {
  plugin  = "webhook"
  url     = %q
  payload = {
    caller = call.extra["caller_name"]
  }
}

notifier "other" {
  plugin = "webhook"
  url    = %q
}

route "solo" {
  when     = call.to_user_id == "solo"
  notify   = ["broken"]
  fallback = ["other"]
}

route "all" {
  notify = ["broken", "other"]
}
`, broken.URL+"/hook", other.URL+"/hook")
	in := startRingside(t, config)
	line := 1 + strings.Count(config[:strings.Index(config, "call.extra")], "\n")

	// Both notifiers routed: the other rings.
	sid := fcSID(0xf, 1)
	fcRingAt(t, in, other, sid, "2809")
	// The broken one was the route's only way: fallback.
	sid2 := fcSID(0xf, 2)
	fcRingAt(t, in, other, sid2, "solo")
	fcQuiet(t, broken, 300*time.Millisecond)

	for _, s := range []string{sid, sid2} {
		l := fcWaitCount(t, in, 1, 5*time.Second, "render warning", func(l map[string]any) bool {
			return l["level"] == "WARN" && l["msg"] == "payload did not render; notifier skipped for this call" && l["sid"] == s
		})
		if e := fmt.Sprint(l["error"]); !strings.Contains(e, fmt.Sprintf("%s:%d:", in.config, line)) || strings.Contains(e, lineParam) {
			t.Errorf("warning: %q; want the place %s:%d and no cc_param", e, in.config, line)
		}
	}
	if got := fcMetric(t, in, `ringside_render_errors_total{notifier="broken"}`); got != 2 {
		t.Errorf("render errors: %v; want 2", got)
	}

	code, out, errOut := run(t, in.dir, "explain", "-config", in.config, lineExample)
	if code != 0 || !strings.Contains(out, "render error:") || !strings.Contains(out, "notifier other") {
		t.Errorf("explain: exit %d; want 0 and the render error\n%s%s", code, out, errOut)
	}
}

// fcRingAt sends a callback to callee and checks it is accepted and
// reaches hook.
func fcRingAt(t *testing.T, in *instance, hook *hookServer, sid, callee string) {
	t.Helper()
	code, _, body := do(t, "GET", in.notifyURL+"?"+fcQuery(sid, callee), nil)
	if code != 200 || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("callback %s: %d %s; want 200 accepted\nlogs:\n%s", sid, code, body, in.logs.String())
	}
	for {
		r := hook.next(t)
		if bytes.Contains(r.Body, []byte(sid)) {
			return
		}
	}
}
