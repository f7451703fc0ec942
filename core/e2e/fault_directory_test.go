package e2e

// Fault tests of the directory and the public listener, against the real
// binary: the directory file removed or replaced while serving, a full
// disk, two serves on one directory, and unclean notify_cb paths. Before,
// a device registered after `rm ringside.db*` was answered 204 and lost
// at the next start, a full disk left /readyz ready, a second serve with
// the journal off shared the file, and //notify_cb was redirected.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// directoryConfig is a config serving a webhook notifier, its directory
// at ringside.db beside it (or at dbPath), with extra appended.
func directoryConfig(t *testing.T, dbPath, extra string) string {
	t.Helper()
	hook := startWebhook(t, fakes.WebhookOptions{})
	if dbPath == "" {
		dbPath = "ringside.db"
	}
	return testServer + directoryAt(dbPath) + oneWebhook(hook.URL+"/hook") + extra
}

// hasLog reports whether a log line of level says msg within 5s.
func hasLog(in *instance, level, msg string) bool {
	_, err := in.waitLog(5*time.Second, func(l map[string]any) bool { return l["level"] == level && l["msg"] == msg })
	return err == nil
}

// `rm ringside.db*` while serving: the directory is rebuilt from the open
// database (ERROR, then INFO), a device registered afterwards is a 204 and
// survives a restart with every device registered before.
func TestE2EFaultDirectoryRemoved(t *testing.T) {
	path := writeConfig(t, directoryConfig(t, "", ""))
	in := startConfig(t, path)
	db := filepath.Join(in.dir, "ringside.db")
	in.putDevice(t, "2809", "fcm", "before")
	for _, s := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(db + s); err != nil {
			t.Fatal(err)
		}
	}
	code, _, body := do(t, "PUT", in.deviceURL("2809", "fcm", "after"), nil)
	if code != http.StatusNoContent && code < 500 {
		t.Fatalf("PUT after the removal: got %d %s; want 204, or a 5xx", code, body)
	}
	if !hasLog(in, "ERROR", "directory file removed while serving; rebuilding it from the open database") ||
		!hasLog(in, "INFO", "directory file rebuilt from the open database; no device was lost") {
		t.Errorf("no ERROR then INFO about the rebuild in the logs:\n%s", in.logs.String())
	}
	in.waitReady(t, http.StatusOK, 5*time.Second)
	if _, err := os.Stat(db); err != nil {
		t.Errorf("directory file: %v", err)
	}
	if v := in.metric(t, "ringside_durable"); v != 1 {
		t.Errorf("ringside_durable = %v; want 1", v)
	}
	in.stop()

	in2 := startConfig(t, path)
	got := in2.tokens(t, "2809")
	if !got["before"] {
		t.Error("the device registered before the removal is lost")
	}
	if code == http.StatusNoContent && !got["after"] {
		t.Error("the device registered (204) after the removal is lost")
	}
}

// A directory file replaced by another while serving (a backup moved over
// it): writes are refused with 503 and counted, /readyz is 503 naming the
// reason, ringside_durable is 0; the refused device is not listed.
func TestE2EFaultDirectoryReplaced(t *testing.T) {
	path := writeConfig(t, directoryConfig(t, "", ""))
	in := startConfig(t, path)
	db := filepath.Join(in.dir, "ringside.db")
	in.putDevice(t, "2809", "fcm", "before")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db+".restored", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(db+".restored", db); err != nil {
		t.Fatal(err)
	}
	code, _, body := do(t, "PUT", in.deviceURL("2809", "fcm", "refused"), nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"not_durable"`) || !strings.Contains(body, "replaced") {
		t.Errorf("PUT after the replacement: got %d %s; want 503 not_durable naming the replacement", code, body)
	}
	if ready := in.waitReady(t, http.StatusServiceUnavailable, 5*time.Second); !strings.Contains(ready, "replaced") {
		t.Errorf("/readyz body %s does not say why", ready)
	}
	if v := in.metric(t, "ringside_directory_write_errors_total"); v < 1 {
		t.Errorf("ringside_directory_write_errors_total = %v; want ≥ 1", v)
	}
	if v := in.metric(t, "ringside_durable"); v != 0 {
		t.Errorf("ringside_durable = %v; want 0", v)
	}
	if !hasLog(in, "ERROR", "directory file replaced while serving; writes are refused until it is moved back or ringside restarts") {
		t.Errorf("no ERROR about the replacement in the logs")
	}
	if got := in.tokens(t, "2809"); got["refused"] || !got["before"] {
		t.Errorf("devices: got %v; want before, not refused", got)
	}
}

// A full disk: device writes answer 503 (never 204 and lost), are
// counted, /readyz is 503 and ringside_durable 0; once room is freed,
// /readyz is 200 again by itself and writes are 204; every device answered
// 204 is there after a restart.
func TestE2EFaultDirectoryDiskFull(t *testing.T) {
	path := writeConfig(t, directoryConfig(t, "data/ringside.db", "delivery {\n  journal = false\n}\n"))
	data := filepath.Join(filepath.Dir(path), "data")
	mountTmpfs(t, data, "2m")
	in := startConfig(t, path)
	in.waitReady(t, http.StatusOK, 5*time.Second)

	filler := filepath.Join(data, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for block := make([]byte, 4096); ; {
		if _, err := f.Write(block); err != nil {
			break
		}
	}
	f.Close()

	var stored []string
	code, body := 0, ""
	for i := range 2000 {
		tok := fmt.Sprintf("%0500d", i)
		code, _, body = do(t, "PUT", in.deviceURL("2809", "fcm", tok), nil)
		if code != http.StatusNoContent {
			break
		}
		stored = append(stored, tok)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"not_durable"`) {
		t.Fatalf("PUT on a full disk: got %d %s; want 503 not_durable", code, body)
	}
	if ready := in.waitReady(t, http.StatusServiceUnavailable, 5*time.Second); !strings.Contains(ready, "full") {
		t.Errorf("/readyz body %s does not say the disk is full", ready)
	}
	time.Sleep(1500 * time.Millisecond) // a probe or two: still full
	if code, _, body := do(t, "GET", in.adminURL+"/readyz", nil); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a full disk after probes: %d %s; want 503", code, body)
	}
	if v := in.metric(t, "ringside_directory_write_errors_total"); v < 1 {
		t.Errorf("ringside_directory_write_errors_total = %v; want ≥ 1", v)
	}
	if v := in.metric(t, "ringside_durable"); v != 0 {
		t.Errorf("ringside_durable = %v; want 0", v)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	in.waitReady(t, http.StatusOK, 5*time.Second)
	if code, _, body := do(t, "PUT", in.deviceURL("2809", "fcm", "later"), nil); code != http.StatusNoContent {
		t.Errorf("PUT with room again: got %d %s; want 204", code, body)
	} else {
		stored = append(stored, "later")
	}
	if v := in.metric(t, "ringside_durable"); v != 1 {
		t.Errorf("ringside_durable = %v; want 1", v)
	}
	in.stop()

	in2 := startConfig(t, path)
	got := in2.tokens(t, "2809")
	for _, tok := range stored {
		if !got[tok] {
			t.Errorf("device %s… answered 204 is lost after a restart", tok[:8])
		}
	}
}

// A second serve on the directory of a running one fails at start, naming
// the file and the other ringside, even with the journal off (whose lock
// kept a second serve out before); explain still reads the directory.
func TestE2EFaultDirectoryTwoServes(t *testing.T) {
	path := writeConfig(t, directoryConfig(t, "", "delivery {\n  journal = false\n}\n"))
	in := startConfig(t, path)
	in.putDevice(t, "2809", "fcm", "desk")

	code, stdout, stderr := runWith(t, in.dir, nil, 20*time.Second, "serve", "-config", path)
	out := stdout + stderr
	if code == -1 {
		t.Fatalf("the second serve was still running after 20s; output:\n%s", out)
	}
	if code == 0 {
		t.Fatalf("the second serve exited 0; output:\n%s", out)
	}
	db := filepath.Join(in.dir, "ringside.db")
	if !strings.Contains(out, db) || !strings.Contains(out, "another ringside") {
		t.Errorf("the second serve's error does not name %s and the other ringside:\n%s", db, out)
	}

	code, stdout, stderr = run(t, in.dir, "explain", "-config", path, "-json", lineExample)
	if code != 0 || !strings.Contains(stdout, `"status": "accepted"`) {
		t.Errorf("explain while serving: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The first one still serves and writes.
	if code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/2809/fcm/desk2", nil); code != http.StatusNoContent {
		t.Errorf("PUT on the first serve: %d %s", code, body)
	}
}

// rawGet sends "GET target HTTP/1.1" as is (no client cleans the path) to
// the notify_cb listener and returns the status and Location.
func rawGet(t *testing.T, in *instance, target string) (int, string, string) {
	t.Helper()
	u, err := url.Parse(in.notifyURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, u.Host); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// Unclean paths to notify_cb are a JSON 404, never a redirect, and never
// step around allow_cidrs or notify_token.
func TestE2EFaultPublicPathsNoRedirect(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings string
		want     int // for the clean path
	}{
		{"notify_token", `  notify_token = "s3cr3t"`, http.StatusUnauthorized},
		{"allow_cidrs", `  allow_cidrs = ["192.0.2.0/24"]`, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := strings.Replace(directoryConfig(t, "", ""), "server {", "server {\n"+tc.settings, 1)
			in := start(t, config)
			if code, _, body := rawGet(t, in, "/notify_cb?"+lineExample); code != tc.want {
				t.Errorf("/notify_cb: got %d %s; want %d", code, body, tc.want)
			}
			for _, p := range []string{"//notify_cb", "/./notify_cb", "/notify_cb/../notify_cb", "/x/../notify_cb", "/notify_cb/"} {
				code, loc, body := rawGet(t, in, p+"?"+lineExample)
				if code != http.StatusNotFound || loc != "" || strings.TrimSpace(body) != `{"error":"not_found"}` {
					t.Errorf("%s: got %d (Location %.40q…) %.40s…; want 404 {\"error\":\"not_found\"}", p, code, loc, body)
				}
			}
		})
	}
}

// The directory block's cache_users bounds what serve preloads: a
// directory of three users is read whole at start with cache_users = 3,
// and not with cache_users = 2; callees ring either way.
func TestE2EDirectoryCacheUsers(t *testing.T) {
	app := startWebhook(t, fakes.WebhookOptions{})
	dir := t.TempDir()
	preloaded := func(l map[string]any) bool { return l["msg"] == "directory preloaded into memory" }
	var in *instance
	for i, users := range []int{3, 2} {
		path := writeConfigIn(t, dir, serverBlock("5s", "debug", "")+
			block("directory", "embedded", `path = "ringside.db"`, fmt.Sprintf("cache_users = %d", users))+
			oneWebhook(app.URL+"/hook"))
		if in != nil {
			in.stop()
		}
		in = startConfig(t, path)
		if i == 0 {
			for _, u := range []string{"2809", "2810", "2811"} {
				in.putDevice(t, u, "webhook", "tok-"+u)
			}
			in.stop()
			in = in.restart(t)
		}
		in.waitReady(t, 200, 10*time.Second)
		got := len(in.lines(preloaded)) > 0
		if want := users == 3; got != want {
			t.Errorf("cache_users = %d, three users: preloaded %t; want %t", users, got, want)
		}
		sid := sidN(0x5b000000, i)
		in.accept(t, sid, "2811")
		waitDelivered(t, app, []string{sid}, 10*time.Second)
	}
}
