package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests build the real ringside binary and the example
// console plugin once, and run them as separate processes against fake
// peers on loopback.
var (
	ringsideBin string
	consoleBin  string
)

// lineExample is LINE Planet's documented notify_cb example, verbatim.
const lineExample = "from_user_id=9286&from_service_id=linecorp.com&to_user_id=2809&to_service_id=linecorp.com&sid=151ad995-749c-4a28-893f-636700469db1&type=A&stid=stid&param=eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ%3D%3D"

// lineParam is the example's param after percent-decoding.
const lineParam = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ringside-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ringsideBin = filepath.Join(dir, "ringside")
	consoleBin = filepath.Join(dir, "console-plugin")
	for _, b := range [][2]string{{ringsideBin, "."}, {consoleBin, "./examples/console-plugin"}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", b[1], err)
			return 1
		}
	}
	return m.Run()
}

// instance is a running ringside.
type instance struct {
	t         *testing.T
	cmd       *exec.Cmd
	dir       string
	config    string
	notifyURL string
	adminURL  string
	logs      *logBuffer
	done      chan error
}

// testServer is the server block every test config starts with: ports
// chosen by the kernel, JSON logs the harness reads.
const testServer = `
server {
  listen       = "127.0.0.1:0"
  admin_listen = "127.0.0.1:0"
  shutdown_grace = "2s"
}
log {
  format = "json"
  level  = "debug"
}
`

// writeConfig writes config.hcl into a new folder and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startRingside serves config (the text of config.hcl) from a new folder
// and waits until it listens. It is stopped with SIGTERM at the end of the
// test, which must exit 0.
func startRingside(t *testing.T, config string, env ...string) *instance {
	t.Helper()
	return startConfig(t, writeConfig(t, config), env...)
}

// startConfig serves the config file at path, from its folder (a second
// start on the same folder finds the directory and journal of the first).
func startConfig(t *testing.T, path string, env ...string) *instance {
	t.Helper()
	in := &instance{t: t, dir: filepath.Dir(path), config: path, logs: &logBuffer{}, done: make(chan error, 1)}
	in.cmd = exec.Command(ringsideBin, "serve", "-config", path)
	in.cmd.Dir = in.dir
	in.cmd.Env = append(os.Environ(), env...)
	in.cmd.Stdout = in.logs
	in.cmd.Stderr = in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	t.Cleanup(func() { in.stop() })

	line, err := in.waitLog(20*time.Second, func(l map[string]any) bool { return l["msg"] == "ringside serving" })
	if err != nil {
		t.Fatalf("ringside did not start: %v\nlogs:\n%s", err, in.logs.String())
	}
	in.notifyURL = line["notify_cb"].(string)
	in.adminURL = line["admin"].(string)
	return in
}

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

// waitLog waits for a JSON log line matching ok.
func (in *instance) waitLog(timeout time.Duration, ok func(map[string]any) bool) (map[string]any, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, l := range in.logs.JSONLines() {
			if ok(l) {
				return l, nil
			}
		}
		select {
		case err := <-in.done:
			in.done <- err
			return nil, fmt.Errorf("ringside exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("no such log line within %v", timeout)
}

// get performs a request and returns status, headers and body.
func do(t *testing.T, method, url string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// run runs ringside with args and returns its exit code, stdout and stderr.
func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(ringsideBin, args...)
	cmd.Dir = dir
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

// logBuffer collects a process's output safely.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// JSONLines returns every line that is a JSON object.
func (b *logBuffer) JSONLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// hookServer is a fake app server that records the webhooks it receives.
type hookServer struct {
	URL  string
	reqs chan hookRequest
}

type hookRequest struct {
	Header http.Header
	Body   []byte
}

func newHookServer(t *testing.T, status int) *hookServer {
	t.Helper()
	h := &hookServer{reqs: make(chan hookRequest, 100)}
	srv := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.reqs <- hookRequest{Header: r.Header.Clone(), Body: b}
		w.WriteHeader(status)
	}))
	h.URL = srv
	return h
}

func (h *hookServer) next(t *testing.T) hookRequest {
	t.Helper()
	select {
	case r := <-h.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived within 10s")
		return hookRequest{}
	}
}

// newLoopbackServer serves h on 127.0.0.1 until the test ends.
func newLoopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newTLSServer serves h over HTTP/2 TLS on 127.0.0.1 until the test ends,
// and writes its certificate as PEM to caFile, for SSL_CERT_FILE (Go reads
// it once, and built-in plugins inherit it).
func newTLSServer(t *testing.T, h http.Handler) (url, caFile string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile
}
