package sdktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// TestMain serves the test plugin named by SDKTEST_VARIANT ("good" when
// unset) when Start launches this binary.
func TestMain(m *testing.M) {
	Main(m, func() {
		sdk.Serve(sdk.Info{Name: "relay", Version: "0.0.1", DeviceKind: "relaydev"}, &relay{variant: os.Getenv("SDKTEST_VARIANT")})
	})
}

type relayConfig struct {
	URL    string `ringside:"url,required" help:"where to POST"`
	Secret string `ringside:"secret,sensitive" help:"sent as a header"`
	Note   string `ringside:"note,template" help:"sent in the body"`
}

// relay POSTs each delivery to its url. Its variants break one conformance
// rule each.
type relay struct {
	variant string
	cfg     relayConfig
}

func (r *relay) Configure(ctx context.Context, c relayConfig) sdk.Diagnostics {
	var diags sdk.Diagnostics
	if sdk.TemplatesKnown(ctx) && !sdk.TemplateSet(ctx, "note") {
		diags.AddAttributeWarning("url", "the block sets no note: each POST has an empty body")
	}
	if sdk.PayloadKeySet(ctx, "secret") {
		diags.AddAttributeWarning("secret", "the payload has a secret key too")
	}
	if !strings.HasPrefix(c.URL, "http") {
		if r.variant == "block-error" {
			diags.AddError("url must be http")
		} else {
			diags.AddAttributeError("url", "must be an http URL")
		}
		return diags
	}
	if r.variant == "leaky" && c.Secret == "bad-secret-value" {
		diags.AddAttributeError("secret", "%q is bad", c.Secret)
		return diags
	}
	r.cfg = c
	return diags
}

func (r *relay) Deliver(ctx context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	switch r.variant {
	case "panic":
		if strings.Contains(dev.Token, "/") {
			var m map[string]int
			//lint:ignore SA5000 the panic is the point: the SDK must recover it
			m["boom"]++
		}
	case "leaky":
		sdk.Logger().Info("delivering", "token", dev.Token, "secret", r.cfg.Secret)
	case "slow":
		ctx = context.WithoutCancel(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL, strings.NewReader(d.Template("note")))
	if err != nil {
		return "", sdk.Permanent(errors.New("bad url"))
	}
	req.Header.Set("X-Secret", r.cfg.Secret)
	if r.variant == "slow" {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", sdk.Retry(errors.New("transport error"))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 {
		return "", sdk.Permanent(fmt.Errorf("answered %d", resp.StatusCode))
	}
	return "relay-1", nil
}

func suite() Suite {
	return Suite{
		Config: func(peer string) map[string]any {
			return map[string]any{"url": peer + "/in", "secret": "s3cr3t-value"}
		},
		Invalid: []Invalid{{Name: "ftp", Config: map[string]any{"url": "ftp://x"}, Attribute: "url"}},
	}
}

func TestConformance(t *testing.T) {
	if v := os.Getenv("SDKTEST_VARIANT"); v != "" {
		t.Skip("run by TestConformanceCatches")
	}
	Conformance(t, suite())
}

// TestConformanceFailing runs the suite against one broken variant; it is
// run by TestConformanceCatches in a child process, and expected to fail.
func TestConformanceFailing(t *testing.T) {
	if os.Getenv("SDKTEST_VARIANT") == "" {
		t.Skip("run by TestConformanceCatches")
	}
	s := suite()
	s.Invalid = append(s.Invalid, Invalid{Name: "secret", Config: map[string]any{"url": "http://x", "secret": "bad-secret-value"}, Attribute: "secret"})
	Conformance(t, s)
}

// TestConformanceCatches checks the suite fails each broken variant with
// the rule it breaks.
func TestConformanceCatches(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ variant, want string }{
		{"panic", "plugin panic"},
		{"leaky", "the plugin logged the whole device token"},
		{"slow", "after the deadline"},
		{"block-error", `points at "", not an attribute of the schema`},
	}
	for _, tc := range tests {
		t.Run(tc.variant, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(exe, "-test.run=^TestConformanceFailing$", "-test.v")
			cmd.Env = append(os.Environ(), "SDKTEST_VARIANT="+tc.variant)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a %s plugin:\n%s", tc.variant, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

// A plugin built on this SDK, launched by a host that speaks another major
// version of the protocol, is refused with an error naming both versions.
func TestHostOfAnotherVersion(t *testing.T) {
	for _, v := range []uint{pluginpb.ProtocolVersion + 1, 0} {
		if v == 0 {
			continue
		}
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			c, err := start(options{protocol: v})
			if err == nil {
				c.Kill()
				t.Fatalf("a host of protocol version %d started a version %d plugin", v, pluginpb.ProtocolVersion)
			}
			for _, s := range []string{fmt.Sprintf("the plugin speaks version %d", pluginpb.ProtocolVersion), fmt.Sprintf("this host speaks version %d", v)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
		})
	}
}

func TestStartWithoutMain(t *testing.T) {
	// A binary that is not a plugin fails the start with a useful error.
	_, err := start(options{protocol: pluginpb.ProtocolVersion, argv: []string{"/bin/true"}})
	if err == nil {
		t.Fatal("started /bin/true as a plugin")
	}
}

func TestRunPattern(t *testing.T) {
	tests := []struct{ name, want string }{
		{"", "^$"},
		{"TestConformance", "^TestConformance$"},
		{"TestX/with_tls#01", `^TestX$/^with_tls#01$`},
		{"TestX/a.b(c)", `^TestX$/^a\.b\(c\)$`},
	}
	for _, tc := range tests {
		if got := runPattern(tc.name); got != tc.want {
			t.Errorf("runPattern(%q): got %q; want %q", tc.name, got, tc.want)
		}
	}
}

func TestRequestDelivery(t *testing.T) {
	r := NewRequest(sdk.Device{Kind: "k", Token: "t"})
	r.Templates = map[string]string{"note": "n"}
	d := r.Delivery()
	if d.ID != r.ID || d.Attempt != 1 || d.Route != r.Route || d.Call.SID != r.Call.SID || d.Call.Param != r.Call.Param ||
		string(d.PayloadJSON) != string(r.PayloadJSON) || d.Template("note") != "n" || !d.Deadline.Equal(r.Deadline) {
		t.Errorf("got %+v; want the fields of %+v", d, r)
	}
}

// fatalTB records Fatalf and Errorf instead of failing the test.
type fatalTB struct {
	testing.TB
	fatal  string
	errors []string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

func (f *fatalTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func TestConfigured(t *testing.T) {
	r := &relay{}
	if got := Configured(t, r, relayConfig{URL: "http://x"}); got != r || r.cfg.URL != "http://x" {
		t.Errorf("got %p with url %q; want %p configured with http://x", got, r.cfg.URL, r)
	}
	tb := &fatalTB{TB: t}
	Configured(tb, &relay{}, relayConfig{URL: "ftp://x"})
	if !strings.Contains(tb.fatal, "url") {
		t.Errorf("got failure %q; want one naming url", tb.fatal)
	}
}

func TestCheckDiagnostics(t *testing.T) {
	diags := sdk.Diagnostics{
		{Severity: sdk.SeverityError, Attribute: "url", Summary: "must be an http URL"},
		{Severity: sdk.SeverityWarning, Attribute: "note", Summary: "ignored for GET"},
	}
	tests := []struct {
		name   string
		want   []string
		failed int // failures reported
	}{
		{"all match", []string{"error url: http URL", "warning note: ignored"}, 0},
		{"none wanted", nil, 1},
		{"one missing", []string{"error url: http URL"}, 1},
		{"severity differs", []string{"warning url: http URL", "warning note: ignored"}, 1},
		{"attribute differs", []string{"error note: http URL", "warning note: ignored"}, 1},
		{"summary differs", []string{"error url: https", "warning note: GET only"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := &fatalTB{TB: t}
			CheckDiagnostics(tb, diags, tc.want)
			if len(tb.errors) != tc.failed || tb.fatal != "" {
				t.Errorf("got failures %q, fatal %q; want %d failures", tb.errors, tb.fatal, tc.failed)
			}
		})
	}
}

// Configure's options tell the plugin which templates and payload keys
// the block sets, through the process and in-process; without them it is
// told nothing.
func TestConfigureTemplates(t *testing.T) {
	tests := []struct {
		name string
		opts []ConfigureOption
		want string // the diagnostics, "" for none
	}{
		{"told nothing", nil, ""},
		{"note set", []ConfigureOption{Templates("note")}, ""},
		{"nothing set", []ConfigureOption{Templates()}, "warning: url: the block sets no note: each POST has an empty body"},
		{"payload keys alone", []ConfigureOption{PayloadKeys("secret")},
			"warning: url: the block sets no note: each POST has an empty body\nwarning: secret: the payload has a secret key too"},
		{"both", []ConfigureOption{PayloadKeys("a", "secret"), Templates("note")}, "warning: secret: the payload has a secret key too"},
	}
	c := Start(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if got := c.Configure(t, map[string]any{"url": "http://x"}, tc.opts...).String(); got != want {
				t.Errorf("through the process: got %q; want %q", got, want)
			}
			tb := &fatalTB{TB: t}
			Configured(tb, &relay{}, relayConfig{URL: "http://x"}, tc.opts...)
			if (tb.fatal == "") != (want == "") || !strings.Contains(tb.fatal, want) {
				t.Errorf("in-process: got failure %q; want %q", tb.fatal, want)
			}
		})
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			_ = b.String()
		}
	}()
	for range 100 {
		if _, err := b.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if got := b.String(); got != strings.Repeat("x", 100) {
		t.Errorf("got %q; want 100 x", got)
	}
}

func TestClientHelpers(t *testing.T) {
	srv := newStall(false)
	srv.close()
	c := Start(t)
	if c.Info.GetName() != "relay" || c.Info.GetDeviceKind() != "relaydev" {
		t.Fatalf("info %v", c.Info)
	}
	if diags := c.Configure(t, `{"url":"ftp://x"}`); len(diags) != 1 || diags[0].Attribute != "url" || !diags.HasError() {
		t.Fatalf("diagnostics %v", diags)
	}
	if ready, _ := c.Health(t); ready {
		t.Error("ready before a valid configuration")
	}
	c.MustConfigure(t, map[string]any{"url": srv.URL})
	outs := c.Deliver(t, NewRequest(sdk.Device{Kind: "relaydev", Token: "t1"}, sdk.Device{Kind: "relaydev", Token: "t2"}))
	if len(outs) != 2 || outs[0].Kind != Retry || outs[0].Reason != "transport error" {
		t.Errorf("outcomes %v", outs)
	}
}

func TestConformanceTLS(t *testing.T) {
	if v := os.Getenv("SDKTEST_VARIANT"); v != "" {
		t.Skip("run by TestConformanceCatches")
	}
	s := suite()
	s.TLS = true
	s.Config = func(peer string) map[string]any {
		if !strings.HasPrefix(peer, "https://") {
			t.Fatalf("peer %s is not https", peer)
		}
		return map[string]any{"url": peer + "/in", "secret": "s3cr3t-value"}
	}
	Conformance(t, s)
}
