package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The diff tests run in testdata/diff: live.hcl and candidate.hcl differ
// in one route's `when` (user 2809's video calls move from route video to
// route all) and in the desk notifier's payload title; records.json holds
// full records (with their devices), calls.json the list the admin API
// answers (summaries, without devices).

func runDiff(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"diff"}, args...), &out, &errb, testBuiltins)
	return code, out.String(), errb.String()
}

func TestDiff(t *testing.T) {
	t.Chdir(filepath.Join(testdataDir, "diff"))
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string // golden file of stdout and stderr
		stdout string // else substrings
		stderr string
	}{
		{name: "records", args: []string{"-config", "candidate.hcl", "-live", "live.hcl", "-calls", "records.json"}, code: ExitError, golden: "diff/records.golden"},
		{name: "records json", args: []string{"-config", "candidate.hcl", "-live", "live.hcl", "-calls", "records.json", "-json"}, code: ExitError, golden: "diff/records_json.golden"},
		{name: "summaries have no devices", args: []string{"-config", "candidate.hcl", "-live", "live.hcl", "-calls", "calls.json"}, code: ExitError, golden: "diff/summaries.golden"},
		{name: "values the log does not keep", args: []string{"-config", "extra.hcl", "-live", "live.hcl", "-calls", "records.json"}, code: ExitError, golden: "diff/extra.golden"},
		{name: "no change", args: []string{"-config", "live.hcl", "-live", "live.hcl", "-calls", "records.json"}, code: ExitOK, stdout: "routes changed: 0 calls\n", stderr: ""},
		{name: "no change counts", args: []string{"-config", "live.hcl", "-live", "live.hcl", "-calls", "records.json"}, code: ExitOK, stdout: "0 of 4 calls would change (replayed from records.json, live live.hcl, candidate live.hcl)\n"},
		{name: "limit in file mode", args: []string{"-config", "live.hcl", "-live", "live.hcl", "-calls", "records.json", "-limit", "1"}, code: ExitOK, stdout: "0 of 1 call would change"},
		{name: "no candidate", args: []string{"-live", "live.hcl", "-calls", "records.json"}, code: ExitUsage, stderr: "-config CANDIDATE is required"},
		{name: "an argument", args: []string{"-config", "live.hcl", "records.json"}, code: ExitUsage, stderr: `unexpected argument "records.json"`},
		{name: "limit out of range", args: []string{"-config", "live.hcl", "-limit", "1001"}, code: ExitUsage, stderr: "-limit must be from 1 to 1000"},
		{name: "unknown flag", args: []string{"-config", "live.hcl", "-bogus"}, code: ExitUsage, stderr: "flags of ringside diff:"},
		{name: "help", args: []string{"-h"}, code: ExitOK, stdout: "-calls file"},
		{name: "missing calls file", args: []string{"-config", "live.hcl", "-live", "live.hcl", "-calls", "nope.json"}, code: ExitError, stderr: "ringside diff: error: open nope.json"},
		{name: "calls file not JSON", args: []string{"-config", "live.hcl", "-live", "live.hcl", "-calls", "live.hcl"}, code: ExitError, stderr: "ringside diff: error: live.hcl: not JSON (want the JSON of GET /v1/calls"},
		{name: "invalid candidate", args: []string{"-config", "../bad.hcl", "-live", "live.hcl", "-calls", "records.json"}, code: ExitError, stderr: "ringside diff: error: the candidate config ../bad.hcl is invalid"},
		{name: "missing live", args: []string{"-config", "live.hcl", "-calls", "records.json"}, code: ExitError, stderr: "ringside diff: error: the live config config.hcl is invalid"},
		{name: "admin unreachable", args: []string{"-config", "live.hcl", "-live", "live.hcl", "-admin", "127.0.0.1:1"}, code: ExitError, stderr: "ringside diff: error: admin API at http://127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runDiff(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit: got %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				golden(t, tc.golden, out+errOut)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout: got %q; want it to contain %q", out, tc.stdout)
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr: got %q; want it to contain %q", errOut, tc.stderr)
			}
		})
	}
}

// TestDiffJSONReport: -json says the counts, each changed call's kinds and
// both outcomes, with cc_param hidden.
func TestDiffJSONReport(t *testing.T) {
	t.Chdir(filepath.Join(testdataDir, "diff"))
	code, out, errOut := runDiff(t, "-config", "candidate.hcl", "-live", "live.hcl", "-calls", "records.json", "-json")
	if code != ExitError {
		t.Fatalf("exit %d; want %d\n%s%s", code, ExitError, out, errOut)
	}
	var rep diffReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"routes": 1, "notifiers": 1, "devices": 1, "payload": 1}
	if fmt.Sprint(rep.Counts) != fmt.Sprint(want) || rep.Calls != 4 || len(rep.Changed) != 2 {
		t.Fatalf("counts %v, calls %d, changed %d; want %v, 4, 2", rep.Counts, rep.Calls, len(rep.Changed), want)
	}
	if got := strings.Join(rep.Changed[0].Kinds, ","); got != "routes,notifiers,devices" {
		t.Errorf("first call's kinds: %s; want routes,notifiers,devices", got)
	}
	if strings.Contains(out, replayParam) {
		t.Errorf("the report shows the placeholder cc_param:\n%s", out)
	}
}

// TestDiffAdmin: the calls come from the admin API, the devices from its
// devices API once per callee; the whole tokens are never printed and
// the token flag is sent.
func TestDiffAdmin(t *testing.T) {
	t.Chdir(filepath.Join(testdataDir, "diff"))
	calls, err := os.ReadFile("calls.json")
	if err != nil {
		t.Fatal(err)
	}
	const whole2809 = "abcdef0123456789abcdef0123456789-desk-of-2809"
	const whole3000 = "0123456789abcdef0123456789abcdef-desk-of-3000"
	var mu sync.Mutex
	asked := map[string]int{}
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.Path]++
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/v1/calls":
			if r.URL.Query().Get("limit") != "50" {
				http.Error(w, "want limit=50", http.StatusBadRequest)
				return
			}
			w.Write(calls)
		case "/v1/devices/linecorp.com/2809":
			fmt.Fprintf(w, `{"devices":[{"kind":"console","token":%q,"updated_at":"2026-12-04T08:00:00Z"}]}`, whole2809)
		case "/v1/devices/linecorp.com/3000":
			fmt.Fprintf(w, `{"devices":[{"kind":"console","token":%q,"updated_at":"2026-12-04T08:00:00Z"}]}`, whole3000)
		default:
			http.NotFound(w, r)
		}
	}))
	defer admin.Close()

	for _, asJSON := range []bool{false, true} {
		args := []string{"-config", "candidate.hcl", "-live", "live.hcl", "-admin", admin.URL, "-token", "s3cret", "-limit", "50"}
		if asJSON {
			args = append(args, "-json")
		}
		code, out, errOut := runDiff(t, args...)
		if code != ExitError {
			t.Fatalf("exit %d; want %d\n%s%s", code, ExitError, out, errOut)
		}
		for _, secret := range []string{whole2809, whole3000, "s3cret"} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("output holds %q:\n%s%s", secret, out, errOut)
			}
		}
		if !asJSON {
			for _, want := range []string{
				"routes changed: 1 call\n  0a1b2c3d-0000-4000-8000-000000000001 9286→2809 V  routes: [video] → [all]\n",
				"devices: desk: console abcdef…2809 → none",
				"1 of 2 calls would change (replayed from " + admin.URL + ", live live.hcl, candidate candidate.hcl)",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if errOut != "" {
				t.Errorf("stderr: %q; want nothing (the devices were fetched)", errOut)
			}
		}
	}
	mu.Lock()
	if asked["/v1/devices/linecorp.com/2809"] != 2 || asked["/v1/devices/linecorp.com/3000"] != 2 {
		t.Errorf("device requests %v; want one per callee and run", asked)
	}
	mu.Unlock()

	// A refused token is an error, said as one.
	code, _, errOut := runDiff(t, "-config", "candidate.hcl", "-live", "live.hcl", "-admin", admin.URL, "-token", "wrong")
	if code != ExitError || !strings.Contains(errOut, "ringside diff: error: admin API at "+admin.URL+": 401") {
		t.Errorf("wrong token: exit %d, stderr %q", code, errOut)
	}
}

// TestCompareOutcomes: each kind of change is found and said alone;
// cc_param's value is never said.
func TestCompareOutcomes(t *testing.T) {
	base := func() *diffOutcome {
		return &diffOutcome{
			Status: "accepted", Routes: []string{"video"},
			Notifiers: []diffNotifier{{"desk", "notify", diffDelivers}, {"hook", "fallback", diffNotNeeded}},
			Devices:   map[string][]string{"desk": {"console abc…1"}},
			Payloads: map[string]json.RawMessage{
				"desk": json.RawMessage(`{"cc_param":"one","title":"a"}`),
				"hook": json.RawMessage(`{"cc_param":"one"}`),
			},
		}
	}
	tests := []struct {
		name   string
		change func(o *diffOutcome)
		kinds  string
		detail string
	}{
		{"nothing", func(*diffOutcome) {}, "", ""},
		{"routes", func(o *diffOutcome) { o.Routes = []string{"video", "all"} }, "routes", "routes: [video] → [video, all]"},
		{"notifier removed and added", func(o *diffOutcome) {
			o.Notifiers = []diffNotifier{{"desk", "notify", diffDelivers}, {"sms", "fallback", diffNotNeeded}}
		}, "notifiers", "notifiers: hook (fallback) removed; sms (fallback) added, not needed"},
		{"notifier state", func(o *diffOutcome) { o.Notifiers[0].State = diffNoDevice }, "notifiers", "notifiers: desk (notify) delivers → reaches no device"},
		{"devices", func(o *diffOutcome) { o.Devices["desk"] = []string{"console abc…1", "console def…2"} }, "devices", "devices: desk: console abc…1 → console abc…1, console def…2"},
		{"payload value", func(o *diffOutcome) { o.Payloads["desk"] = json.RawMessage(`{"cc_param":"one","title":"b"}`) }, "payload", `notifier desk: payload.title "a" → "b"`},
		{"payload keys", func(o *diffOutcome) { o.Payloads["hook"] = json.RawMessage(`{"cc_param":"one","n":1}`) }, "payload", `notifier hook: payload.n 1 added`},
		{"cc_param hidden", func(o *diffOutcome) { o.Payloads["hook"] = json.RawMessage(`{"cc_param":"two"}`) }, "payload", "notifier hook: payload.cc_param changed (value not shown)"},
		{"payload of a notifier on one side only", func(o *diffOutcome) { delete(o.Payloads, "hook") }, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.change(b)
			d := compareOutcomes(base(), b)
			if got := strings.Join(d.Kinds, ","); got != tc.kinds {
				t.Fatalf("kinds %q; want %q (%v)", got, tc.kinds, d.Details)
			}
			if tc.kinds != "" && d.Details[tc.kinds] != tc.detail {
				t.Errorf("detail %q; want %q", d.Details[tc.kinds], tc.detail)
			}
			if strings.Contains(fmt.Sprint(d.Details), "two") {
				t.Errorf("details show cc_param: %v", d.Details)
			}
		})
	}
}

// TestReadCallsFile: the accepted forms of an exported file.
func TestReadCallsFile(t *testing.T) {
	dir := t.TempDir()
	const rec = `{"sid":"s1","received":"2026-12-04T08:00:01Z","status":"accepted","caller":{"service_id":"a","user_id":"1"},"callee":{"service_id":"b","user_id":"2"},"type":"V","routes":["r"],"notifiers":[{"name":"n","route":"r","role":"notify","active":true,"devices":1}],"devices":[{"kind":"apns","token":"abcdef…0000"}],"events":[]}`
	const sum = `{"sid":"s2","received":"2026-12-04T08:00:02Z","status":"accepted","caller":{"service_id":"a","user_id":"1"},"callee":{"service_id":"b","user_id":"3"},"type":"A","routes":["r"],"notifiers":["n"],"callbacks":1}`
	tests := []struct {
		name, text string
		want       string // sid:known:devices per call
		err        string
	}{
		{"list answer", `{"calls":[` + sum + `]}`, "s2:false:0", ""},
		{"empty list", `{"calls":[]}`, "", ""},
		{"array of records", "[" + rec + "," + sum + "]", "s1:true:1 s2:false:0", ""},
		{"one record", rec, "s1:true:1", ""},
		{"not JSON", "sid=1", "", "not JSON"},
		{"broken JSON", "[{", "", "unexpected end of JSON input"},
		{"no sid", `[{"callee":{"service_id":"b","user_id":"2"}}]`, "", "call 1: no sid"},
		{"no callee", `[{"sid":"x"}]`, "", "call 1: x: no callee"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "calls.json")
			if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			calls, err := readCallsFile(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v; want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range calls {
				got = append(got, fmt.Sprintf("%s:%v:%d", c.SID, c.known, len(c.Devices)))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %q; want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}
