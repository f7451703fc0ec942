package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// The harness: the binaries, a running ringside (start, stop, kill,
// signals, its logs, metrics and readiness), callbacks, devices, the CLI,
// and the processes ringside starts.

var (
	// root is the module's folder: binaries are built from it.
	root string
	// binDir holds the binaries the tests build.
	binDir string
	// ringsideBin is the ringside binary, built once per test run.
	ringsideBin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go list -m:", err)
		return 1
	}
	root = strings.TrimSpace(string(out))
	if binDir, err = os.MkdirTemp("", "ringside-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	ringsideBin = filepath.Join(binDir, "ringside")
	cmd := exec.Command("go", "build", "-o", ringsideBin, ".")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build ringside: %v\n", err)
		return 1
	}
	return m.Run()
}

var builds struct {
	mu   sync.Mutex
	bins map[string]string
}

// binary builds the main package at pkg (a folder of the module) on first
// use and returns the binary's path.
func binary(t *testing.T, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[pkg]; ok {
		return bin
	}
	bin := filepath.Join(binDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, "./"+pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	if builds.bins == nil {
		builds.bins = map[string]string{}
	}
	builds.bins[pkg] = bin
	return bin
}

// consolePlugin is the example console plugin, an external plugin built
// on the SDK alone.
func consolePlugin(t *testing.T) string { return binary(t, "examples/console-plugin") }

// ---------------------------------------------------------------------------
// Configs.

// serverBlock is the server and log blocks a test config starts with:
// ports chosen by the kernel, JSON logs at level (the harness reads them),
// shutdown_grace grace, and extra server attributes.
func serverBlock(grace, level, extra string) string {
	if extra != "" {
		extra += "\n"
	}
	return fmt.Sprintf(`
server {
  listen       = "127.0.0.1:0"
  admin_listen = "127.0.0.1:0"
  shutdown_grace = %q
%s}
log {
  format = "json"
  level  = %q
}
`, grace, extra, level)
}

// testServer is the usual server block: shutdown_grace 2s, debug logs.
var testServer = serverBlock("2s", "debug", "")

// writeConfig writes text as config.hcl into a new folder and returns its
// path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	return writeConfigIn(t, t.TempDir(), text)
}

// writeConfigIn writes text as dir/config.hcl and returns its path.
func writeConfigIn(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "config.hcl")
	writeFile(t, path, []byte(text))
	return path
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes b to path through a rename, so that the file watcher
// sees the whole of it at once.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	writeFile(t, path+".tmp", b)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// A running ringside.

// instance is a running ringside.
type instance struct {
	t         *testing.T
	cmd       *exec.Cmd
	dir       string // the config's folder
	config    string // the config file
	notifyURL string
	adminURL  string
	logs      *logBuffer
	env       []string // besides this process's
	done      chan error
}

// start serves config (the text of config.hcl) from a new folder and waits
// until it listens. It is stopped with SIGTERM at the end of the test,
// which must exit 0.
func start(t *testing.T, config string, env ...string) *instance {
	t.Helper()
	return startConfig(t, writeConfig(t, config), env...)
}

// startConfig serves the config file at path, from its folder (a second
// start on the same folder finds the directory and journal of the first).
func startConfig(t *testing.T, path string, env ...string) *instance {
	t.Helper()
	return startIn(t, path, filepath.Dir(path), env...)
}

// startIn serves the config file at path from the folder cwd.
func startIn(t *testing.T, path, cwd string, env ...string) *instance {
	t.Helper()
	in := &instance{t: t, dir: filepath.Dir(path), config: path, logs: &logBuffer{}, env: env, done: make(chan error, 1)}
	in.cmd = exec.Command(ringsideBin, "serve", "-config", path)
	in.cmd.Dir = cwd
	in.cmd.Env = append(os.Environ(), env...)
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	t.Cleanup(in.stop)
	line, err := in.waitLog(20*time.Second, func(l map[string]any) bool { return l["msg"] == "ringside serving" })
	if err != nil {
		t.Fatalf("ringside did not start: %v\nlogs:\n%s", err, in.logs.String())
	}
	in.notifyURL, _ = line["notify_cb"].(string)
	in.adminURL, _ = line["admin"].(string)
	return in
}

func (in *instance) pid() int { return in.cmd.Process.Pid }

// stop sends SIGTERM and checks the exit status is 0.
func (in *instance) stop() {
	if in.cmd.ProcessState != nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.done:
		if err != nil {
			in.t.Errorf("ringside exited with %v after SIGTERM; logs:\n%s", err, in.logs.String())
		}
	case <-time.After(15 * time.Second):
		_ = in.cmd.Process.Kill()
		in.t.Errorf("ringside did not exit after SIGTERM; logs:\n%s", in.logs.String())
	}
}

// signal sends sig to ringside.
func (in *instance) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for ringside to exit and returns its error (nil: 0).
func (in *instance) waitExit(timeout time.Duration) (error, bool) {
	select {
	case err := <-in.done:
		in.done <- err
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// exited reports whether ringside has exited.
func (in *instance) exited() bool {
	select {
	case err := <-in.done:
		in.done <- err
		return true
	default:
		return false
	}
}

// kill SIGKILLs ringside and waits for it. Its plugin children are
// orphaned: they are returned, and killed at the end of the test if they
// are still there.
func (in *instance) kill(t *testing.T) []int {
	t.Helper()
	kids := children(in.pid())
	if err := in.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, ok := in.waitExit(10 * time.Second); !ok {
		t.Fatal("ringside did not die after SIGKILL")
	}
	t.Cleanup(func() { reap(kids) })
	return kids
}

// crash SIGKILLs ringside, then the plugin processes it orphaned that are
// still there 3s later.
func (in *instance) crash(t *testing.T) {
	t.Helper()
	reap(waitGone(in.kill(t), 3*time.Second))
}

// restart starts another ringside on the same config file and folder,
// with the same environment.
func (in *instance) restart(t *testing.T) *instance {
	t.Helper()
	return startConfig(t, in.config, in.env...)
}

// ---------------------------------------------------------------------------
// Logs.

// logBuffer is a process's output, split into lines as it is written;
// each line that is a JSON object is decoded once, then.
type logBuffer struct {
	mu    sync.Mutex
	text  strings.Builder // all of it
	rest  []byte          // the line not ended yet
	lines []map[string]any
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.text.Write(p)
	b.rest = append(b.rest, p...)
	for {
		line, rest, ok := bytes.Cut(b.rest, []byte{'\n'})
		if !ok {
			break
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			b.lines = append(b.lines, m)
		}
		b.rest = rest
	}
	b.rest = append([]byte(nil), b.rest...)
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.text.String()
}

// JSONLines returns every line so far that is a JSON object.
func (b *logBuffer) JSONLines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lines[:len(b.lines):len(b.lines)]
}

// tail returns the last n lines of the logs.
func (in *instance) tail(n int) string {
	lines := strings.Split(strings.TrimRight(in.logs.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// lines returns the JSON log lines ok accepts.
func (in *instance) lines(ok func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, l := range in.logs.JSONLines() {
		if ok(l) {
			out = append(out, l)
		}
	}
	return out
}

// waitLog waits for a JSON log line ok accepts.
func (in *instance) waitLog(timeout time.Duration, ok func(map[string]any) bool) (map[string]any, error) {
	deadline := time.Now().Add(timeout)
	for {
		exited := in.exited() // before reading: all its output is in
		if l := in.lines(ok); len(l) > 0 {
			return l[0], nil
		}
		if exited {
			err, _ := in.waitExit(time.Second)
			return nil, fmt.Errorf("ringside exited: %v", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no such log line within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLogs waits until n JSON log lines match ok, and returns all that do.
func (in *instance) waitLogs(t *testing.T, n int, timeout time.Duration, what string, ok func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		exited := in.exited() // before reading: all its output is in
		got := in.lines(ok)
		switch {
		case len(got) >= n:
			return got
		case exited:
			t.Fatalf("%s: %d log lines; want %d; ringside exited\nlogs:\n%s", what, len(got), n, in.tail(80))
		case time.Now().After(deadline):
			t.Fatalf("%s: %d log lines within %v; want %d\nlogs:\n%s", what, len(got), timeout, n, in.tail(80))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// callbackDone matches the "callback" log line of sid once its deliveries
// ended.
func callbackDone(sid string) func(map[string]any) bool {
	return func(l map[string]any) bool {
		return l["msg"] == "callback" && l["sid"] == sid && l["status"] == "accepted" && l["notifiers"] != nil
	}
}

// reloaded and refused match the log lines of a reload for reason
// ("file changed", "SIGHUP"), done or refused.
func reloaded(reason string) func(map[string]any) bool {
	return func(l map[string]any) bool { return l["msg"] == "config reloaded" && l["reason"] == reason }
}

func refused(reason string) func(map[string]any) bool {
	return func(l map[string]any) bool {
		return l["msg"] == "config reload refused; the previous config keeps serving" && (reason == "" || l["reason"] == reason)
	}
}

// ---------------------------------------------------------------------------
// Metrics and readiness.

// metrics returns the admin /metrics text.
func (in *instance) metrics(t *testing.T) string {
	t.Helper()
	code, _, body := do(t, "GET", in.adminURL+"/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return body
}

// metric returns the value of one series of /metrics, e.g.
// `ringside_deliveries_total{notifier="app",outcome="delivered"}`; 0 when
// absent.
func (in *instance) metric(t *testing.T, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(in.metrics(t), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return f
		}
	}
	return 0
}

// waitMetric polls /metrics until series equals want.
func (in *instance) waitMetric(t *testing.T, series string, want float64, timeout time.Duration) {
	t.Helper()
	var got float64
	eventually(t, timeout, fmt.Sprintf("metric %s = %v", series, want), func() bool {
		got = in.metric(t, series)
		return got == want
	}, func() string { return fmt.Sprintf("it is %v\n%s", got, grep(in.metrics(t), "ringside_")) })
}

// waitReadyz polls /readyz until ok accepts its answer, and returns its
// body.
func (in *instance) waitReadyz(t *testing.T, timeout time.Duration, what string, ok func(code int, body string) bool) string {
	t.Helper()
	var code int
	var body string
	eventually(t, timeout, "/readyz "+what, func() bool {
		resp, err := client.Get(in.adminURL + "/readyz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, body = resp.StatusCode, string(b)
		return ok(code, body)
	}, func() string { return fmt.Sprintf("it answered %d %s", code, body) })
	return body
}

// waitReady polls /readyz until it answers code, and returns its body.
func (in *instance) waitReady(t *testing.T, code int, timeout time.Duration) string {
	t.Helper()
	return in.waitReadyz(t, timeout, strconv.Itoa(code), func(c int, _ string) bool { return c == code })
}

// eventually polls cond until it holds, and fails the test after timeout
// saying what it waited for (and detail(), if given).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("not %s within %v", what, timeout)
			for _, d := range detail {
				msg += "; " + d()
			}
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grep returns the lines of text that contain substr.
func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ---------------------------------------------------------------------------
// HTTP, callbacks and devices.

var client = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second},
}

// do performs a request and returns status, headers and body.
func do(t *testing.T, method, url string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Parts of LINE Planet's documented callback example.
const (
	lineExample = fakes.LineExample
	lineParam   = fakes.LineParam
	lineSID     = fakes.LineSID
)

// lineApp is more with the app_* keys every default payload carries for
// the LINE example callback to user 2809.
func lineApp[V any](more map[string]V) map[string]V {
	for k, v := range map[string]string{
		"app_caller_sid": "linecorp.com", "app_caller_uid": "9286",
		"app_callee_sid": "linecorp.com", "app_callee_uid": "2809",
		"app_call_type": "A", "app_svr_data": "stid",
	} {
		more[k] = any(v).(V)
	}
	return more
}

// sidN is a distinct valid sid (8-4-4-4-12 hex) for a test's tag and an
// index.
func sidN(tag uint32, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", tag, i)
}

// query is the LINE example with another sid and callee user.
func query(sid, toUser string) string {
	q := strings.Replace(lineExample, "sid="+lineSID, "sid="+sid, 1)
	return strings.Replace(q, "to_user_id=2809", "to_user_id="+url.QueryEscape(toUser), 1)
}

// get sends a GET of the callback query q and returns the status code and
// body; err is a transport error (e.g. connection refused).
func (in *instance) get(q string) (int, string, error) {
	resp, err := client.Get(in.notifyURL + "?" + q)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// call sends the LINE example for sid to toUser.
func (in *instance) call(sid, toUser string) (int, string, error) { return in.get(query(sid, toUser)) }

// accept sends a callback that must be answered 200 accepted.
func (in *instance) accept(t *testing.T, sid, toUser string) {
	t.Helper()
	code, body, err := in.call(sid, toUser)
	if err != nil || code != 200 || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("callback %s → %s: got %d %s %v; want 200 accepted", sid, toUser, code, body, err)
	}
}

// acceptN sends n callbacks to toUser, with the sids sidN(tag, 0…n-1),
// that must each be answered 200 accepted, and returns the sids.
func (in *instance) acceptN(t *testing.T, tag uint32, n int, toUser string) []string {
	t.Helper()
	sids := make([]string, n)
	for i := range sids {
		sids[i] = sidN(tag, i)
		in.accept(t, sids[i], toUser)
	}
	return sids
}

// deviceURL is the devices API URL of a device of a linecorp.com user.
func (in *instance) deviceURL(user, kind, token string) string {
	return in.adminURL + "/v1/devices/linecorp.com/" + user + "/" + kind + "/" + url.PathEscape(token)
}

// putDevice registers a device of a linecorp.com user.
func (in *instance) putDevice(t *testing.T, user, kind, token string) {
	t.Helper()
	if code, _, body := do(t, "PUT", in.deviceURL(user, kind, token), nil); code != http.StatusNoContent {
		t.Fatalf("PUT %s device of %s: %d %s", kind, user, code, body)
	}
}

// putDevices registers devices (user → tokens) of kind, a few at a time,
// and returns how many.
func (in *instance) putDevices(t *testing.T, kind string, devices map[string][]string) int {
	t.Helper()
	type dev struct{ user, token string }
	jobs := make(chan dev)
	var failed atomic.Value
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for d := range jobs {
				req, _ := http.NewRequest("PUT", in.deviceURL(d.user, kind, d.token), nil)
				resp, err := client.Do(req)
				if err != nil {
					failed.Store(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					failed.Store(fmt.Sprintf("PUT device of %.20s…: %d %s", d.user, resp.StatusCode, b))
					continue
				}
				n.Add(1)
			}
		})
	}
	for user, toks := range devices {
		for _, tok := range toks {
			jobs <- dev{user, tok}
		}
	}
	close(jobs)
	wg.Wait()
	if v := failed.Load(); v != nil {
		t.Fatal(v)
	}
	return int(n.Load())
}

// devices returns the devices API's listing of a linecorp.com user.
func (in *instance) devices(t *testing.T, user string) string {
	t.Helper()
	code, _, body := do(t, "GET", in.adminURL+"/v1/devices/linecorp.com/"+user, nil)
	if code != http.StatusOK {
		t.Fatalf("GET devices: %d %s", code, body)
	}
	return body
}

// tokens returns the device tokens of a linecorp.com user.
func (in *instance) tokens(t *testing.T, user string) map[string]bool {
	t.Helper()
	var got struct{ Devices []struct{ Token string } }
	if err := json.Unmarshal([]byte(in.devices(t, user)), &got); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range got.Devices {
		out[d.Token] = true
	}
	return out
}

// ---------------------------------------------------------------------------
// The command line.

// run runs ringside with args from dir and returns its exit code, stdout
// and stderr.
func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	return runWith(t, dir, nil, time.Minute, args...)
}

// runWith runs ringside with args from dir, with extra environment; one
// still running after timeout is killed and its exit code is -1 (a serve
// that should have refused to start).
func runWith(t *testing.T, dir string, env []string, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ringsideBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// ---------------------------------------------------------------------------
// Processes, read from /proc.

// ours reports whether pid runs one of the binaries the tests built (or a
// copy of the console plugin).
func ours(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(b), "\x00")
	return strings.HasPrefix(argv0, binDir+string(os.PathSeparator)) || strings.HasSuffix(argv0, "console-plugin")
}

// reap SIGKILLs the pids that are still ours, so no orphan outlives the
// test.
func reap(pids []int) {
	for _, pid := range pids {
		if alive(pid) && ours(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// procStat returns the state and parent pid of pid from /proc/pid/stat.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0][0], ppid, err == nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, _, ok := procStat(pid)
	return ok && st != 'Z'
}

// children lists the live child processes of pid.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ppid, ok := procStat(p); ok && ppid == pid && st != 'Z' {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// pluginPid returns the pid of the plugin child of ringside that serves
// notifier (ringside names it in OTEL_RESOURCE_ATTRIBUTES), or 0. Of the
// serving process and its spare it is the serving one: the older, since a
// spare is always started after the process it backs up.
func (in *instance) pluginPid(notifier string) int {
	best, bestStart := 0, uint64(0)
	for _, pid := range children(in.pid()) {
		if started, ok := startTime(pid); ok && servesNotifier(pid, notifier) && (best == 0 || started < bestStart) {
			best, bestStart = pid, started
		}
	}
	return best
}

// startTime is when pid started, in clock ticks since boot.
func startTime(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// Field 22 of stat; f[0] is field 3.
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

// servesNotifier reports whether plugin process pid serves notifier.
func servesNotifier(pid int, notifier string) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "OTEL_RESOURCE_ATTRIBUTES="); ok {
			for _, attr := range strings.Split(v, ",") {
				if attr == "ringside.notifier="+notifier {
					return true
				}
			}
		}
	}
	return false
}

// pluginPids lists the plugin children of ringside serving notifier: the
// serving process and its spare.
func (in *instance) pluginPids(notifier string) []int {
	var out []int
	for _, pid := range children(in.pid()) {
		if servesNotifier(pid, notifier) {
			out = append(out, pid)
		}
	}
	return out
}

// waitPluginPid waits for a plugin child of notifier whose pid is not
// not, and returns it.
func (in *instance) waitPluginPid(t *testing.T, notifier string, not int, timeout time.Duration) int {
	t.Helper()
	var pid int
	eventually(t, timeout, fmt.Sprintf("a plugin process for notifier %q other than %d", notifier, not), func() bool {
		pid = in.pluginPid(notifier)
		return pid != 0 && pid != not
	}, func() string { return fmt.Sprintf("children %v", children(in.pid())) })
	return pid
}

// waitGone waits until none of pids is alive, and returns those still
// alive after timeout.
func waitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var live []int
		for _, p := range pids {
			if alive(p) {
				live = append(live, p)
			}
		}
		if len(live) == 0 || time.Now().After(deadline) {
			return live
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rss is the resident set size of pid in KiB.
func rss(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// pct returns the q-quantile of sorted durations.
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))].Round(time.Microsecond)
}

// envDuration and envInt read a test's load setting from the environment,
// or return def.
func envDuration(t *testing.T, name string, def, least time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least || d <= 0 {
		t.Fatalf("%s=%q: want a duration of at least %v", name, v, max(least, time.Nanosecond))
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
