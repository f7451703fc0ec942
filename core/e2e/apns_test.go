package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

func TestE2EAPNS(t *testing.T) {
	fake := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	in := start(t, apnsConfig(fake.keyFile, fake.URL, apnsTopic), fake.env())
	in.putDevice(t, "2809", "apns", apnsToken)

	// 200: the VoIP push as APNs wants it.
	sent := time.Now()
	in.accept(t, "151ad995-749c-4a28-893f-636700469db1", "2809")
	p := apnsWaitPushes(t, fake, 1)[0]
	if p.JWTErr != nil {
		t.Errorf("provider token: %v", p.JWTErr)
	}
	if p.Proto != 2 || p.Token != apnsToken {
		t.Errorf("HTTP/%d to token %q; want HTTP/2 to %q", p.Proto, p.Token, apnsToken)
	}
	for h, want := range map[string]string{"apns-push-type": "voip", "apns-topic": apnsTopic, "apns-priority": "10"} {
		if got := p.Header.Get(h); got != want {
			t.Errorf("%s: %q; want %q", h, got, want)
		}
	}
	exp, err := strconv.ParseInt(p.Header.Get("apns-expiration"), 10, 64)
	if want := sent.Add(60 * time.Second).Unix(); err != nil || exp < want-2 || exp > want+2 {
		t.Errorf("apns-expiration %q; want about %d (now + 60s)", p.Header.Get("apns-expiration"), want)
	}
	var body map[string]any
	if err := json.Unmarshal(p.Body, &body); err != nil {
		t.Fatalf("body %s: %v", p.Body, err)
	}
	want := lineApp(map[string]any{"cc_param": lineParam, "sid": "151ad995-749c-4a28-893f-636700469db1"})
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %v; want %v", k, body[k], v)
		}
	}
	in.waitMetric(t, `ringside_deliveries_total{notifier="ios",outcome="delivered"}`, 1, 10*time.Second)

	// 400 BadDeviceToken: permanent, the device is kept.
	fake.SetAnswer(func(*fakes.Push) fakes.Answer { return fakes.Answer{Status: 400, Reason: "BadDeviceToken"} })
	in.accept(t, "251ad995-749c-4a28-893f-636700469db1", "2809")
	apnsWaitPushes(t, fake, 2)
	in.waitMetric(t, `ringside_deliveries_total{notifier="ios",outcome="permanent"}`, 1, 10*time.Second)
	if !strings.Contains(in.devices(t, "2809"), apnsToken) {
		t.Error("BadDeviceToken removed the device")
	}
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["notifier"] == "ios" && strings.Contains(fmt.Sprint(l["cause"]), "not valid in this APNs environment")
	}); err != nil {
		t.Errorf("no log line with the likely cause: %v", err)
	}

	// 410 Unregistered with APNs' timestamp (later than the registration;
	// apns2 keeps whole seconds): gone, pruned.
	ts := time.Now().Add(2 * time.Second).UnixMilli()
	fake.SetAnswer(func(*fakes.Push) fakes.Answer {
		return fakes.Answer{Status: 410, Reason: "Unregistered", Timestamp: ts}
	})
	in.accept(t, "351ad995-749c-4a28-893f-636700469db1", "2809")
	apnsWaitPushes(t, fake, 3)
	in.waitMetric(t, `ringside_tokens_pruned_total{kind="apns"}`, 1, 10*time.Second)
	if devs := in.devices(t, "2809"); strings.Contains(devs, apnsToken) {
		t.Errorf("the unregistered device is still listed: %s", devs)
	}

	if strings.Contains(in.logs.String(), apnsToken) {
		t.Error("logs contain a whole device token")
	}
}

// validate prints the plugin's warning about a VoIP topic without .voip
// and still exits 0.
func TestE2EAPNSValidateWarns(t *testing.T) {
	cfg := writeConfig(t, apnsConfig(apnsKey(t, t.TempDir()), "https://127.0.0.1:1", "com.example.planet"))
	code, out, errOut := run(t, t.TempDir(), "validate", "-config", cfg)
	if code != 0 || !strings.Contains(out+errOut, "warning") || !strings.Contains(out+errOut, ".voip") {
		t.Errorf("validate: exit %d; want 0 with a warning about .voip\n%s%s", code, out, errOut)
	}
}

// A payload that surely exceeds the provider's limit is refused at load,
// at the payload's line; one that fits only for small calls is accepted
// (and refused per delivery at send time).
func TestE2EPayloadSurelyTooLarge(t *testing.T) {
	base := apnsConfig(apnsKey(t, t.TempDir()), "https://127.0.0.1:1", apnsTopic)
	tests := []struct {
		name    string
		payload string
		code    int
	}{
		{"surely too large", `pad = "` + strings.Repeat("x", 5200) + `"`, 1},
		{"fits the smallest call", `pad = "` + strings.Repeat("x", 4000) + `"`, 0},
		{"depends on the call: left to send time", `pad = call.extra["missing"]`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, strings.Replace(base, `plugin = "apns"`, `plugin = "apns"
  payload  = { `+tc.payload+` }`, 1))
			code, out, errOut := run(t, t.TempDir(), "validate", "-config", cfg)
			if code != tc.code {
				t.Fatalf("validate: exit %d; want %d\n%s%s", code, tc.code, out, errOut)
			}
			if tc.code == 1 && (!strings.Contains(out, "payload is too large for plugin apns") || !strings.Contains(out, cfg+":14:")) {
				t.Errorf("want the error at the payload's line:\n%s", out)
			}
		})
	}
}

// validate and explain start the apns plugin only to check its block: it
// opens no connection to APNs, while serve's process warms one before the
// first push. (Without check_only the warm dial races the commands' end,
// so this test catches its return most of the time; the apns plugin's
// TestConfigureCheckOnlyDialsNothing catches it every time.)
func TestE2ECheckCommandsDialNoProvider(t *testing.T) {
	fake := startAPNs(t, fakes.APNsOptions{Topic: apnsTopic})
	text := apnsConfig(fake.keyFile, fake.URL, apnsTopic)
	config := writeConfig(t, text)
	dir := filepath.Dir(config)
	env := []string{fake.env()}
	for _, args := range [][]string{
		{"validate", "-config", config},
		{"explain", "-config", config, "/notify_cb?" + lineExample},
	} {
		if code, out, errOut := runWith(t, dir, env, time.Minute, args...); code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", args[0], code, out, errOut)
		}
	}
	n := fake.Conns()
	if n != 0 {
		t.Errorf("%d connections to APNs after validate and explain; want none", n)
	}
	start(t, text, fake.env())
	eventually(t, 10*time.Second, "serve's apns plugin warmed a connection to APNs", func() bool { return fake.Conns() > n })
}
