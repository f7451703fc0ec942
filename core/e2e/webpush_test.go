package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
)

// webpushPeer is a fake push service with its certificate written for
// ringside, and a VAPID key pair for the notifier.
type webpushPeer struct {
	*fakes.WebPush
	caFile  string
	private string
	public  string
}

// startWebPush starts a fake push service that takes pushes signed with a
// fresh VAPID key pair (made by ringside webpush-keys).
func startWebPush(t *testing.T) *webpushPeer {
	t.Helper()
	code, out, errOut := run(t, t.TempDir(), "webpush-keys")
	if code != 0 {
		t.Fatalf("webpush-keys: exit %d\n%s%s", code, out, errOut)
	}
	p := &webpushPeer{}
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "VAPID_PRIVATE_KEY":
			p.private = v
		case "VAPID_PUBLIC_KEY":
			p.public = v
		}
	}
	if p.private == "" || p.public == "" {
		t.Fatalf("webpush-keys printed %q; want both keys", out)
	}
	p.WebPush = fakes.StartWebPush(fakes.WebPushOptions{VAPIDPublicKey: p.public})
	t.Cleanup(p.Close)
	var err error
	if p.caFile, err = p.WriteCA(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return p
}

// env is the environment of ringside and its plugins: trust in the fake and
// the private key, which the config reads with env().
func (p *webpushPeer) env() []string {
	return []string{"SSL_CERT_FILE=" + p.caFile, "VAPID_PRIVATE_KEY=" + p.private}
}

// config routes every call to one webpush notifier named browser.
func (p *webpushPeer) config() string {
	return testServer + "\n" + notifierBlock("browser", "webpush",
		`vapid_private_key = env("VAPID_PRIVATE_KEY")`,
		fmt.Sprintf("vapid_public_key  = %q", p.public),
		`subject           = "mailto:ops@example.com"`,
	) + routeTo("all", "", "browser")
}

// pushesFor returns the pushes the fake received for the call sid.
func (p *webpushPeer) pushesFor(sid string) []fakes.WebPushRequest {
	var out []fakes.WebPushRequest
	for _, r := range p.Pushes() {
		var body struct{ SID string }
		if json.Unmarshal(r.Plaintext, &body) == nil && body.SID == sid {
			out = append(out, r)
		}
	}
	return out
}

// putWebPush registers the browser subscription sub of a linecorp.com user
// through the devices API.
func (in *instance) putWebPush(t *testing.T, user, sub string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", in.adminURL+"/v1/devices/linecorp.com/"+user+"/webpush", strings.NewReader(sub))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		t.Fatalf("PUT webpush subscription of %s: %d %s", user, resp.StatusCode, b.String())
	}
}

func TestE2EWebPush(t *testing.T) {
	peer := startWebPush(t)
	in := start(t, peer.config(), peer.env()...)
	sub := peer.Subscribe()
	in.putWebPush(t, "2809", sub.JSON)
	parsed, err := sdk.ParseWebPushSubscription([]byte(sub.JSON))
	if err != nil {
		t.Fatal(err)
	}
	token := parsed.Token()
	if !in.tokens(t, "2809")[token] {
		t.Fatalf("the devices API does not list the canonical subscription: %s", in.devices(t, "2809"))
	}

	// 201: the callee's browser rings with the payload, encrypted for it.
	sid := "151ad995-749c-4a28-893f-636700469db1"
	in.accept(t, sid, "2809")
	eventually(t, 10*time.Second, "a push reached the fake push service", func() bool { return len(peer.pushesFor(sid)) == 1 })
	p := peer.pushesFor(sid)[0]
	if p.Path != strings.TrimPrefix(sub.Endpoint, peer.URL) {
		t.Errorf("pushed to %s; want the subscription's endpoint", p.Path)
	}
	var body map[string]any
	if err := json.Unmarshal(p.Plaintext, &body); err != nil {
		t.Fatalf("plaintext %q: %v", p.Plaintext, err)
	}
	want := lineApp(map[string]any{"cc_param": lineParam, "sid": sid})
	for k, v := range want {
		if body[k] != v {
			t.Errorf("payload[%q] = %v; want %v", k, body[k], v)
		}
	}
	if ttl, err := strconv.Atoi(p.Header.Get("TTL")); err != nil || ttl < 50 || ttl > 60 {
		t.Errorf("TTL %q; want the seconds left to the deadline (about 60)", p.Header.Get("TTL"))
	}
	if p.Header.Get("Urgency") != "high" || len(p.Header.Get("Topic")) != 32 {
		t.Errorf("Urgency %q, Topic %q; want high and a 32-character topic", p.Header.Get("Urgency"), p.Header.Get("Topic"))
	}
	in.waitMetric(t, `ringside_deliveries_total{notifier="browser",outcome="delivered"}`, 1, 10*time.Second)

	// 429 with Retry-After: retried after it, within the window.
	sid = "251ad995-749c-4a28-893f-636700469db1"
	peer.SetAnswer(func(r *fakes.WebPushRequest) fakes.WebPushAnswer {
		if len(peer.pushesFor(sid)) == 1 {
			return fakes.WebPushAnswer{Status: 429, Header: map[string]string{"Retry-After": "1"}, Body: "slow down"}
		}
		return fakes.WebPushAnswer{}
	})
	in.accept(t, sid, "2809")
	eventually(t, 15*time.Second, "the throttled push was retried and delivered", func() bool {
		ps := peer.pushesFor(sid)
		return len(ps) == 2 && ps[1].Status == 201
	})
	ps := peer.pushesFor(sid)
	if gap := ps[1].At.Sub(ps[0].At); gap < 900*time.Millisecond {
		t.Errorf("retried %v after the 429; want no sooner than its Retry-After of 1s", gap)
	}
	if ps[0].Header.Get("Topic") != ps[1].Header.Get("Topic") {
		t.Error("the retry has another Topic; want the same, so it replaces the first")
	}
	in.waitMetric(t, `ringside_deliveries_total{notifier="browser",outcome="delivered"}`, 2, 10*time.Second)

	// 410: the subscription is gone, and pruned.
	sid = "351ad995-749c-4a28-893f-636700469db1"
	peer.SetAnswer(func(*fakes.WebPushRequest) fakes.WebPushAnswer {
		return fakes.WebPushAnswer{Status: 410, Body: "push subscription has unsubscribed or expired."}
	})
	in.accept(t, sid, "2809")
	eventually(t, 10*time.Second, "the push reached the fake", func() bool { return len(peer.pushesFor(sid)) == 1 })
	in.waitMetric(t, `ringside_tokens_pruned_total{kind="webpush"}`, 1, 10*time.Second)
	if in.tokens(t, "2809")[token] {
		t.Errorf("the gone subscription is still listed: %s", in.devices(t, "2809"))
	}

	logs := in.logs.String()
	for _, secret := range []string{peer.private, sub.Endpoint, token, lineParam} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold a secret or a whole subscription (%.24s…)", secret)
		}
	}
}
