package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// canonicalSecrets are whsec_ secrets in their canonical form (padded
// standard base64) whose keys need no padding, one "=" and two "=", with
// "+" and "/" among them.
var canonicalSecrets = []string{
	testSecret,
	"whsec_lTiACyFOCpXjmfnEup7KtRAGqLEoaS/5YZyQkB7KAGo=",
	"whsec_6bQHOUzszigC/GkbpvYy3D220joQ4UxIL+aHmm0/zA==",
}

// secretForms returns every spelling of canonical the plugin accepts, named:
// with and without the prefix, with and without padding.
func secretForms(canonical string) map[string]string {
	bare := strings.TrimPrefix(canonical, secretPrefix)
	unpadded := strings.TrimRight(bare, "=")
	return map[string]string{
		"prefixed padded":   secretPrefix + bare,
		"prefixed unpadded": secretPrefix + unpadded,
		"bare padded":       bare,
		"bare unpadded":     unpadded,
	}
}

func TestDecodeSecretForms(t *testing.T) {
	for _, canonical := range canonicalSecrets {
		want, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(canonical, secretPrefix))
		if err != nil {
			t.Fatalf("%s: %v", canonical, err)
		}
		for name, form := range secretForms(canonical) {
			t.Run(canonical[len(secretPrefix):len(secretPrefix)+6]+"/"+name, func(t *testing.T) {
				got, err := decodeSecret(form)
				if err != nil {
					t.Fatalf("decodeSecret(%q): %v", form, err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("decodeSecret(%q): got %x; want %x", form, got, want)
				}
			})
		}
	}
}

// signedBy delivers d through a plugin configured with secret, at now, to
// rec, and returns the request rec received.
func signedBy(t *testing.T, rec *fakes.Webhook, secret string, now time.Time, d *sdk.Delivery) fakes.WebhookRequest {
	t.Helper()
	p := sdktest.Configured(t, New(), Config{URL: rec.URL, Secret: secret})
	p.now = func() time.Time { return now }
	before := len(rec.Requests(""))
	if _, err := p.Deliver(context.Background(), d, sdk.Device{}); err != nil {
		t.Fatalf("secret form %q: Deliver: %v", secret, err)
	}
	reqs := rec.Requests("")
	if len(reqs) != before+1 {
		t.Fatalf("got %d requests; want %d", len(reqs), before+1)
	}
	return reqs[before]
}

// TestSignatureSameForEveryForm checks that every spelling of a secret signs
// exactly as its canonical form, which the Go reference library verifies.
func TestSignatureSameForEveryForm(t *testing.T) {
	rec := newRecorder(t, nil)
	d := delivery(lineParam)
	d.Deadline = time.Time{}
	now := time.Now()
	for _, canonical := range canonicalSecrets {
		want := signedBy(t, rec, canonical, now, d)
		wh, err := standardwebhooks.NewWebhook(canonical)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(want.Body, want.Header); err != nil {
			t.Fatalf("%s: the Go reference library: %v", canonical, err)
		}
		for name, form := range secretForms(canonical) {
			got := signedBy(t, rec, form, now, d)
			if g, w := got.Header.Get(HeaderSignature), want.Header.Get(HeaderSignature); g != w {
				t.Errorf("%s form of %s: signature %q; want %q", name, canonical, g, w)
			}
		}
	}
}

// verifyScript reads {module, cases: [{secret, body, headers}]} on stdin and
// writes, for each case, "ok" or the error of the reference library's
// verification of body and headers with secret.
const verifyScript = `
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const { Webhook } = require(input.module);
const out = input.cases.map((c) => {
  try {
    new Webhook(c.secret).verify(c.body, c.headers);
    return "ok";
  } catch (e) {
    return "error: " + e.message;
  }
});
process.stdout.write(JSON.stringify(out));
`

// referenceModule returns node and the npm standardwebhooks package (see
// fakes.NodeModule), or skips the test saying why.
func referenceModule(t *testing.T) (node, module string) {
	t.Helper()
	return fakes.NodeModule(t, "standardwebhooks", "1.1.1")
}

type referenceCase struct {
	name string
	// want is "ok" when the reference must verify the request, else a
	// part of the error it must give.
	want    string
	Secret  string            `json:"secret"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

// TestReferenceVerifiesEveryForm signs a request through the plugin with
// each spelling of each secret and has the npm standardwebhooks library
// (what most receivers run) verify it, with the same spelling and with the
// canonical one. Another key, or a changed body, must not verify.
func TestReferenceVerifiesEveryForm(t *testing.T) {
	node, module := referenceModule(t)
	rec := newRecorder(t, nil)
	d := delivery(lineParam)
	d.Deadline = time.Time{}
	now := time.Now()

	var cases []referenceCase
	for _, canonical := range canonicalSecrets {
		for name, form := range secretForms(canonical) {
			r := signedBy(t, rec, form, now, d)
			h := map[string]string{}
			for _, k := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
				h[k] = r.Header.Get(k)
			}
			tag := canonical[len(secretPrefix):len(secretPrefix)+6] + " " + name
			cases = append(cases,
				referenceCase{name: tag + ", verified with the same form", want: "ok", Secret: form, Body: string(r.Body), Headers: h},
				referenceCase{name: tag + ", verified with the canonical form", want: "ok", Secret: canonical, Body: string(r.Body), Headers: h},
				referenceCase{name: tag + ", verified with another key", want: "No matching signature", Secret: "whsec_b3RoZXIgc2VjcmV0IGtleQ==", Body: string(r.Body), Headers: h},
				referenceCase{name: tag + ", body changed", want: "No matching signature", Secret: canonical, Body: string(r.Body) + " ", Headers: h},
			)
		}
	}
	// These spellings the plugin refuses, and so does the reference. (The
	// plugin also refuses a dangling fifth character, such as a trailing
	// newline after a key of 4n characters, which the reference silently
	// drops: it is a mistake in how the secret was read.)
	h := map[string]string{HeaderID: "x", HeaderTimestamp: "1", HeaderSignature: "v1,x"}
	for _, r := range []struct{ name, secret, want string }{
		{"url-safe alphabet", "whsec_6bQHOUzszigC_GkbpvYy3D220joQ4UxIL-aHmm0_zA==", "incorrect characters"},
		{"three padding characters", "whsec_YWJjZA===", "incorrect padding"},
		{"three characters", "whsec_YWJ", "incorrect padding"},
		{"inner space", "whsec_YWJj ZGVm", "incorrect characters"},
		{"empty key", "whsec_", "can't be empty"},
	} {
		if _, err := decodeSecret(r.secret); err == nil {
			t.Errorf("%s: decodeSecret: got nil; want an error", r.name)
		}
		cases = append(cases, referenceCase{name: r.name, want: r.want, Secret: r.secret, Body: "{}", Headers: h})
	}

	var got []string
	fakes.RunNode(t, node, verifyScript, map[string]any{"module": module, "cases": cases}, &got)
	if len(got) != len(cases) {
		t.Fatalf("node wrote %q; want %d results", got, len(cases))
	}
	for i, c := range cases {
		if (c.want == "ok") != (got[i] == "ok") || !strings.Contains(got[i], c.want) {
			t.Errorf("%s: the reference library answered %q; want %q", c.name, got[i], c.want)
		}
	}
}
