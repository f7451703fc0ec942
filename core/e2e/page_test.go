package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
)

// The call log page, driven in a real headless Chromium: it asks for the
// admin token and sends it only as a header; a callback sent after the
// page loaded appears without a reload; a click shows the call's timeline
// with a retry then the delivery; a filter lists again; the callee's
// devices show shortened tokens; explain answers a pasted notify_cb URL.
func TestE2EPage(t *testing.T) {
	ctx := startBrowser(t)
	const token = "adm-page-3f9c1e7a5b2d"
	app := startWebhook(t, fakes.WebhookOptions{Secret: hookSecret, Answer: func(r *fakes.WebhookRequest) fakes.WebhookAnswer {
		if r.N == 1 {
			return fakes.WebhookAnswer{Status: http.StatusServiceUnavailable}
		}
		return fakes.WebhookAnswer{Status: http.StatusOK}
	}})
	config := strings.Replace(webhookConfig(app.URL+"/hook"), "server {", "server {\n  admin_token = env(\"RS_ADMIN_TOKEN\")", 1)
	in := start(t, config, "RS_ADMIN_TOKEN="+token)
	req, _ := http.NewRequest("PUT", in.deviceURL("2809", "apns", apnsToken), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT a device: %s", resp.Status)
	}

	var mu sync.Mutex
	var urls, problems []string
	authorized := 0 // /v1/ requests that carried the token as a header
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls = append(urls, e.Request.URL+e.Request.URLFragment)
			for k, v := range e.Request.Headers {
				if strings.EqualFold(k, "Authorization") && v == "Bearer "+token && strings.Contains(e.Request.URL, "/v1/") {
					authorized++
				}
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *cdplog.EventEntryAdded:
			// Errors but the network's (the first request's 401): a
			// Content-Security-Policy violation, a failed script.
			if e.Entry.Level == cdplog.EntryLevelError && e.Entry.Source != cdplog.EntrySourceNetwork {
				problems = append(problems, fmt.Sprintf("%s error: %s", e.Entry.Source, e.Entry.Text))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}

	// Without the token, the page asks for it.
	browse(t, ctx, "open the page", chromedp.Navigate(in.adminURL+"/"))
	waitPage(t, ctx, "the token form", `!document.querySelector('#auth').hidden`)
	browse(t, ctx, "enter the token",
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#token-form button")))
	waitPage(t, ctx, "the live stream open", `document.querySelector('#live').dataset.state === 'open' && document.querySelector('#auth').hidden`)
	browse(t, ctx, "mark the document", chromedp.Evaluate[chromedp.Void](`window.ringsideMark = 'not reloaded'`))

	// A callback sent now arrives through the live stream.
	sid := sidN(0x9a9e0001, 0)
	in.accept(t, sid, "2809")
	row := fmt.Sprintf(`#calls tr[data-sid=%q]`, sid)
	waitPage(t, ctx, "the call's row", fmt.Sprintf(`document.querySelector(%q) !== null`, row))
	waitDelivered(t, app, []string{sid}, 15*time.Second)
	waitPage(t, ctx, "the row delivered", fmt.Sprintf(`document.querySelector(%q).dataset.outcome === 'delivered'`, row))
	if mark, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(window.ringsideMark)`)); err != nil || mark != "not reloaded" {
		t.Errorf("the page was reloaded (mark %q, %v)", mark, err)
	}

	// A click on the row shows the timeline: a retry, then delivered.
	browse(t, ctx, "click the call", chromedp.Click(chromedp.CSS(row+" td:nth-child(3)")))
	waitPage(t, ctx, "the timeline's attempts", `Array.from(document.querySelectorAll('#timeline tbody tr[data-type="attempt"]'), r => r.dataset.outcome).join() === 'retry,delivered'`)
	timeline := pageText(t, ctx, "#timeline")
	for _, want := range []string{"callback", "attempt", "retry", "delivered", "finished", "app"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("the timeline does not show %q:\n%s", want, timeline)
		}
	}
	if notifiers := pageText(t, ctx, "#call-notifiers"); !strings.Contains(notifiers, "app") || !strings.Contains(notifiers, "yes") {
		t.Errorf("the notifiers table does not show app active:\n%s", notifiers)
	}
	checkNotifierHead(t, ctx, "#call-notifiers")
	if results := pageText(t, ctx, "#results"); !strings.Contains(results, "delivered") {
		t.Errorf("the results do not show delivered:\n%s", results)
	}

	// A filter lists again; Clear brings the call back.
	browse(t, ctx, "filter on another callee",
		chromedp.SetValue(chromedp.CSS(`#filters input[name="callee"]`), "nobody"),
		chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
	waitPage(t, ctx, "the list filtered", fmt.Sprintf(`document.querySelector(%q) === null && !document.querySelector('#no-calls').hidden`, row))
	browse(t, ctx, "clear the filters", chromedp.Click(chromedp.CSS(`#filters button[type="reset"]`)))
	waitPage(t, ctx, "the call listed again", fmt.Sprintf(`document.querySelector(%q) !== null`, row))

	// The callee's devices, tokens shortened.
	browse(t, ctx, "open the devices", chromedp.Click(chromedp.CSS("#devices-link")))
	short := sdk.ShortToken(apnsToken)
	waitPage(t, ctx, "the callee's devices", fmt.Sprintf(`document.querySelector('#device-list tbody').textContent.includes(%q)`, short))

	// Explain a pasted notify_cb URL.
	explainURL := in.notifyURL + "?" + query(sidN(0x9a9e0001, 1), "2809")
	browse(t, ctx, "explain a callback",
		chromedp.SetValue(chromedp.CSS("#explain-query"), explainURL),
		chromedp.Click(chromedp.CSS("#explain-form button")))
	waitPage(t, ctx, "the explanation", `!document.querySelector('#explained').hidden && document.querySelector('#explain-summary').textContent.includes('accepted')`)
	if got := pageText(t, ctx, "#explain-notifiers"); !strings.Contains(got, "app") {
		t.Errorf("explain does not name the notifier app:\n%s", got)
	}
	checkNotifierHead(t, ctx, "#explain-notifiers")

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), "page.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	if body := pageText(t, ctx, "body"); strings.Contains(body, apnsToken) {
		t.Error("the page shows a whole device token")
	}
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.length + ' ' + document.cookie`))
	if err != nil || stored != "0 " {
		t.Errorf("local storage and cookies: %q %v; want none", stored, err)
	}

	// Forgetting the token asks for it again.
	browse(t, ctx, "forget the token", chromedp.Click(chromedp.CSS("#forget")))
	waitPage(t, ctx, "the token form again", `!document.querySelector('#auth').hidden && sessionStorage.length === 0`)

	mu.Lock()
	defer mu.Unlock()
	for _, u := range urls {
		if strings.Contains(u, token) || strings.Contains(u, url.QueryEscape(token)) {
			t.Errorf("the page requested a URL with the admin token: %s", u)
		}
	}
	if authorized == 0 {
		t.Errorf("no /v1/ request carried the token as a header; requests:\n%s", strings.Join(urls, "\n"))
	}
	if len(problems) > 0 {
		t.Errorf("the browser reported:\n%s", strings.Join(problems, "\n"))
	}
}

// startBrowser starts a headless Chromium with its own profile, closed at
// the end of the test, and skips the test when there is none.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no chromium, chromium-browser or google-chrome on PATH: the page's browser test needs one (.ci/run installs Debian's chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", "new"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; it must not have a deadline, which
	// would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}

// pageWait bounds each step of a browser test.
const pageWait = 20 * time.Second

// browse runs steps in the browser, failing the test with what it did.
func browse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, pageWait)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v\npage:\n%s", what, err, pageText(t, ctx, "body"))
	}
}

// waitPage polls the JavaScript expression cond until it is true, and
// fails the test saying what it waited for, with the page's text.
func waitPage(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, pageWait+time.Second)
	defer cancel()
	_, err := chromedp.Run(sctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(pageWait)))
	if err != nil {
		t.Fatalf("not %s within %v: %v\npage:\n%s", what, pageWait, err, pageText(t, ctx, "body"))
	}
}

// checkNotifierHead checks that the notifier table sel has the header
// naming each column of a notifier row.
func checkNotifierHead(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	got := pageText(t, ctx, sel+" thead")
	for _, col := range []string{"Notifier", "Plugin", "Route", "Role", "Device kind", "Devices", "Active", "Reason"} {
		if !strings.Contains(got, col) {
			t.Errorf("%s header: got %q; want a column %s", sel, got, col)
		}
	}
}

// pageText returns the text of the first element sel selects, "" when
// there is none.
func pageText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ''`, sel)))
	if err != nil {
		return fmt.Sprintf("(no text: %v)", err)
	}
	return s
}
