package e2e

// `ringside diff` against a running ringside: calls sent across three
// routes are replayed from its call log (and its devices API) through the
// live config and a candidate that moves one route; exactly that route's
// calls are listed, no whole token is printed, and a candidate equal to
// the live config changes nothing. An export of GET /v1/calls replays the
// same.

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

func TestE2EDiff(t *testing.T) {
	const tag = 0xd1ff
	const vipToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	const salesToken = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
	app := startWebhook(t, fakes.WebhookOptions{Answer: answerStatus(http.StatusOK)})
	notifiers := webhookNotifier("desk", app.URL+"/desk", `devices = "console"`) + webhookNotifier("app", app.URL+"/app")
	live := testServer + notifiers +
		routeTo("vip", `call.to_user_id == "vip"`, "desk") +
		routeTo("sales", `call.to_user_id == "sales"`, "desk") +
		routeTo("all", "", "app")
	// The candidate moves route sales to other calls: the sales calls
	// fall through to route all.
	candidate := strings.Replace(live, `call.to_user_id == "sales"`, `call.to_user_id == "support"`, 1)
	if candidate == live {
		t.Fatal("the candidate is the live config")
	}
	in := start(t, live)
	in.putDevice(t, "vip", "console", vipToken)
	in.putDevice(t, "sales", "console", salesToken)

	var salesSIDs, sids []string
	for i, user := range []string{"vip", "sales", "other", "sales", "vip", "other"} {
		sid := sidN(tag, i)
		in.accept(t, sid, user)
		sids = append(sids, sid)
		if user == "sales" {
			salesSIDs = append(salesSIDs, sid)
		}
	}
	// delivered counts the requests at the fake app per call; each call
	// rings once before the replays, and no replay adds a request.
	delivered := func() []int {
		n := make([]int, len(sids))
		for i, sid := range sids {
			n[i] = len(app.Requests(sid))
		}
		return n
	}
	eventually(t, 10*time.Second, "each call delivered once", func() bool { return !slices.Contains(delivered(), 0) })
	writeFile(t, filepath.Join(in.dir, "candidate.hcl"), []byte(candidate))
	writeFile(t, filepath.Join(in.dir, "same.hcl"), []byte(live))
	sidRe := regexp.MustCompile(`[0-9a-f]{8}-0000-4000-8000-[0-9a-f]{12}`)
	// listed returns the sids the output names, each once, sorted.
	listed := func(out string) []string {
		sids := sidRe.FindAllString(out, -1)
		slices.Sort(sids)
		return slices.Compact(sids)
	}
	noWholeToken := func(t *testing.T, out string) {
		t.Helper()
		for _, tok := range []string{vipToken, salesToken} {
			if strings.Contains(out, tok) {
				t.Errorf("the output holds a whole token:\n%s", out)
			}
		}
	}

	t.Run("candidate moves a route", func(t *testing.T) {
		code, out, errOut := run(t, in.dir, "diff", "-config", "candidate.hcl", "-admin", in.adminURL)
		if code != 1 {
			t.Fatalf("exit %d; want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if got := listed(out); !slices.Equal(got, salesSIDs) {
			t.Errorf("listed %v; want the sales calls %v\n%s", got, salesSIDs, out)
		}
		for _, want := range []string{
			"routes changed: 2 calls\n",
			"routes: [sales] → [all]",
			"notifiers changed: 2 calls\n",
			"devices reached changed: 2 calls\n",
			"devices: desk: console f0e1d2…1e0f → none",
			"payload changed: 0 calls\n",
			"2 of 6 calls would change (replayed from " + in.adminURL,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(errOut, "error") {
			t.Errorf("stderr: %s", errOut)
		}
		noWholeToken(t, out+errOut)
	})

	t.Run("candidate equal to live", func(t *testing.T) {
		code, out, errOut := run(t, in.dir, "diff", "-config", "same.hcl", "-admin", in.adminURL)
		if code != 0 {
			t.Fatalf("exit %d; want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if !strings.Contains(out, "0 of 6 calls would change") || len(listed(out)) != 0 {
			t.Errorf("stdout:\n%s\nwant 0 of 6 calls and no sid", out)
		}
		noWholeToken(t, out+errOut)
	})

	t.Run("an export of the call list", func(t *testing.T) {
		code, _, body := do(t, "GET", in.adminURL+"/v1/calls", nil)
		if code != http.StatusOK {
			t.Fatalf("GET /v1/calls: %d %s", code, body)
		}
		if err := os.WriteFile(filepath.Join(in.dir, "calls.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		// With -admin, the summaries' devices come from the devices API.
		code, out, errOut := run(t, in.dir, "diff", "-config", "candidate.hcl", "-calls", "calls.json", "-admin", in.adminURL)
		if code != 1 || !slices.Equal(listed(out), salesSIDs) || !strings.Contains(out, "devices: desk: console f0e1d2…1e0f → none") {
			t.Errorf("exit %d; want 1 and the sales calls %v\nstdout:\n%s\nstderr:\n%s", code, salesSIDs, out, errOut)
		}
		noWholeToken(t, out+errOut)
		// Without, they replay with no device, and it says so.
		code, out, errOut = run(t, in.dir, "diff", "-config", "candidate.hcl", "-calls", "calls.json")
		if code != 1 || !slices.Equal(listed(out), salesSIDs) || !strings.Contains(errOut, "6 of 6 calls are summaries without their devices") {
			t.Errorf("exit %d; want 1, the sales calls %v and a warning\nstdout:\n%s\nstderr:\n%s", code, salesSIDs, out, errOut)
		}
	})

	t.Run("admin unreachable", func(t *testing.T) {
		code, _, errOut := run(t, in.dir, "diff", "-config", "candidate.hcl", "-admin", "127.0.0.1:1")
		if code != 1 || !strings.Contains(errOut, "ringside diff: error: admin API at http://127.0.0.1:1") {
			t.Errorf("exit %d, stderr %q; want 1 and an error", code, errOut)
		}
	})

	if got := delivered(); slices.ContainsFunc(got, func(n int) bool { return n != 1 }) {
		t.Errorf("requests per call at the fake app after the replays: %v; want 1 each (a replay delivers nothing)", got)
	}

	// A ringside that is stopped (SIGSTOP: its admin listener accepts and
	// answers nothing): diff gives up after the admin timeout, saying so.
	t.Run("ringside stopped", func(t *testing.T) {
		if err := syscall.Kill(in.pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Kill(in.pid(), syscall.SIGCONT) }()
		code, out, errOut := run(t, in.dir, "diff", "-config", "candidate.hcl", "-admin", in.adminURL)
		if code != 1 || out != "" || !strings.Contains(errOut, "ringside diff: error: admin API at "+in.adminURL+": no answer within 10s (is ringside stopped or hung?)") {
			t.Errorf("exit %d; want 1, nothing on stdout and the silence named\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})
}
