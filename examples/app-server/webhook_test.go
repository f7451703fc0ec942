package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
	"github.com/ringside/ringside/plugins/webhook"
)

// TestFromWebhookPlugin runs ringside's webhook plugin against this app
// server: what one signs, the other verifies and prints.
func TestFromWebhookPlugin(t *testing.T) {
	var out bytes.Buffer
	h, err := newHandler(&out, secret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	p := webhook.New()
	sdktest.Configured(t, p, webhook.Config{URL: srv.URL + incomingPath, Secret: secret})
	d := &sdk.Delivery{
		ID: "msg_e2e", Attempt: 1, Route: "default",
		Call: sdk.Call{
			SID: "151ad995-749c-4a28-893f-636700469db1", FromServiceID: "linecorp.com", FromUserID: "9286",
			ToServiceID: "linecorp.com", ToUserID: "2809", Type: "V", Param: lineParam, AppSvrData: "stid",
		},
		PayloadJSON: []byte(`{"cc_param":"` + lineParam + `","sid":"151ad995-749c-4a28-893f-636700469db1","app_caller_uid":"9286","video":true}`),
		Deadline:    time.Now().Add(time.Minute),
	}
	if id, err := p.Deliver(context.Background(), d, sdk.Device{}); err != nil || id != "msg_e2e" {
		t.Fatalf("Deliver: got (%q, %v); want (msg_e2e, nil)", id, err)
	}
	for _, want := range []string{
		"incoming video call: linecorp.com/9286 → linecorp.com/2809",
		"webhook-id    msg_e2e, signature verified",
		`decodes to {"callFlowType":"M"`,
		`"video":true`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed\n%s\nwant it to contain %q", out.String(), want)
		}
	}

	// The same delivery signed with another secret is refused, permanently.
	other := webhook.New()
	sdktest.Configured(t, other, webhook.Config{URL: srv.URL + incomingPath, Secret: "whsec_b3RoZXIgc2VjcmV0IGtleQ=="})
	_, err = other.Deliver(context.Background(), d, sdk.Device{})
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassPermanent || !strings.Contains(err.Error(), "webhook answered 401") {
		t.Errorf("got %v; want permanent 401", err)
	}
}
