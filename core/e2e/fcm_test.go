package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// The FCM end-to-end tests run the real ringside binary, which serves the
// built-in fcm plugin as a child process, against a fake OAuth token
// endpoint (the service account's token_uri) and a fake FCM v1 endpoint.

const fcmDeviceToken = "eFcmE2eToken-0123456789:APA91bExampleRegistrationToken_abcdefghijklmnop"

// fcmConfig is a config with one fcm notifier routed for every call.
func fcmConfig(creds, endpoint string) string {
	return testServer + "\n" + notifierBlock("android", "fcm",
		fmt.Sprintf("credentials_file = %q", creds),
		fmt.Sprintf("endpoint         = %q", endpoint),
		`payload = {
    caller = call.from_user_id
    video  = call.type == "V"
  }`) + routeTo("all", "", "android")
}

// fcmWaitSends waits until the fake FCM received n messages, and returns
// them all.
func fcmWaitSends(t *testing.T, f *fakes.FCM, n int) []fakes.FCMSend {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d messages reached the fake FCM", n), func() bool { return len(f.Sends()) >= n })
	return f.Sends()
}

func TestE2EFCMDelivery(t *testing.T) {
	fake, creds := startFCM(t, fakes.FCMOptions{})
	in := start(t, fcmConfig(creds, fake.Endpoint()))

	if code, out, errOut := run(t, in.dir, "validate", "-config", in.config); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
	in.putDevice(t, "2809", "fcm", fcmDeviceToken)
	in.accept(t, lineSID, "2809")

	r := fcmWaitSends(t, fake, 1)[0]
	if r.Path != "/v1/projects/"+fake.Project+"/messages:send" {
		t.Errorf("path %q", r.Path)
	}
	var msg struct {
		Message struct {
			Token   string            `json:"token"`
			Data    map[string]string `json:"data"` // every value must be a string
			Android map[string]string `json:"android"`
		} `json:"message"`
	}
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("message: %v\n%s", err, r.Body)
	}
	m := msg.Message
	if m.Token != fcmDeviceToken {
		t.Errorf("token %q", m.Token)
	}
	wantData := lineApp(map[string]string{
		"cc_param": lineParam,
		"sid":      lineSID,
		"caller":   "9286",
		"video":    "false",
	})
	if !reflect.DeepEqual(m.Data, wantData) {
		t.Errorf("data %v\nwant %v", m.Data, wantData)
	}
	if m.Android["priority"] != "high" || (m.Android["ttl"] != "60s" && m.Android["ttl"] != "59s") || len(m.Android) != 2 {
		t.Errorf("android %v, want priority high and ttl ≈ 60s", m.Android)
	}

	in.waitLogs(t, 1, 10*time.Second, "callback delivered", func(l map[string]any) bool {
		return l["msg"] == "callback" && l["delivered"] == float64(1)
	})
	if n := in.metric(t, `ringside_deliveries_total{notifier="android",outcome="delivered"}`); n != 1 {
		t.Errorf("android deliveries %v; want 1:\n%s", n, grep(in.metrics(t), "ringside_"))
	}
	if logs := in.logs.String(); strings.Contains(logs, fcmDeviceToken) || strings.Contains(logs, lineParam) || strings.Contains(logs, fake.AccessToken) {
		t.Error("logs contain a whole device token, cc_param or the access token")
	}
}

func TestE2EFCMUnregisteredPrunes(t *testing.T) {
	fake, creds := startFCM(t, fakes.FCMOptions{Answer: func(*fakes.FCMSend) fakes.FCMAnswer {
		return fcmError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
	}})
	in := start(t, fcmConfig(creds, fake.Endpoint()))

	in.putDevice(t, "2809", "fcm", fcmDeviceToken)
	in.accept(t, lineSID, "2809")
	fcmWaitSends(t, fake, 1)
	in.waitLogs(t, 1, 10*time.Second, "callback gone", func(l map[string]any) bool {
		return l["msg"] == "callback" && l["gone"] == float64(1)
	})
	if body := in.devices(t, "2809"); strings.Contains(body, fcmDeviceToken) {
		t.Errorf("GET devices after UNREGISTERED: %s", body)
	}
	if n := in.metric(t, `ringside_tokens_pruned_total{kind="fcm"}`); n != 1 {
		t.Errorf("pruned fcm tokens %v; want 1:\n%s", n, grep(in.metrics(t), "ringside_"))
	}
	if n := len(fake.Sends()); n != 1 {
		t.Errorf("%d messages; a gone token was sent to again", n)
	}
}
