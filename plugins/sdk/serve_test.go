package sdk

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

type fakeConfig struct {
	URL     string        `ringside:"url,required" help:"Where to send."`
	Timeout time.Duration `ringside:"timeout"`
	Body    string        `ringside:"body,template"`
}

// fake is a test plugin whose Deliver behaviour is chosen by the device
// token.
type fake struct {
	mu     sync.Mutex
	cfg    fakeConfig
	health error
	calls  atomic.Int32
	// running counts Deliver calls in progress; maxRunning their peak.
	running, maxRunning atomic.Int32
	// unblock, when set, is closed to release "wait" devices.
	unblock chan struct{}
}

func (f *fake) Configure(_ context.Context, c fakeConfig) Diagnostics {
	var diags Diagnostics
	if !strings.HasPrefix(c.URL, "https://") {
		diags.AddAttributeError("url", "must be https")
	}
	if c.Timeout > time.Minute {
		diags.AddAttributeError("timeout", "at most 1m")
	}
	if c.URL == "https://broken" {
		diags.AddError("the service is broken")
	}
	if c.Timeout > 0 && c.Timeout < time.Second {
		diags.AddAttributeWarning("timeout", "under 1s is short")
	}
	if diags.HasError() {
		return diags
	}
	f.mu.Lock()
	f.cfg = c
	f.mu.Unlock()
	return diags
}

func (f *fake) Deliver(ctx context.Context, d *Delivery, dev Device) (string, error) {
	f.calls.Add(1)
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxRunning.Load()
		if n <= m || f.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	switch dev.Token {
	case "", "ok":
		return fmt.Sprintf("id-%s-%d-%s-%s", d.ID, d.Attempt, d.Call.SID, d.Template("body")), nil
	case "retry":
		return "", errors.New("503 from provider")
	case "retry-after":
		return "", RetryAfter(errors.New("429 too many"), 1500*time.Millisecond)
	case "permanent":
		return "", Permanent(errors.New("BadDeviceToken"))
	case "gone":
		return "", Gone(errors.New("Unregistered"), time.Unix(1700000000, 0))
	case "gone-unknown":
		return "", Gone(errors.New("Unregistered"), time.Time{})
	case "panic":
		panic("boom")
	case "block":
		// Ignores the deadline's error: the SDK must still say retry.
		<-ctx.Done()
		return "", Permanent(errors.New("gave up"))
	case "wait":
		select {
		case <-f.unblock:
			return "waited", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	case "deadline":
		dl, ok := ctx.Deadline()
		return fmt.Sprintf("%v %d %d", ok, dl.UnixNano(), d.Deadline.UnixNano()), nil
	}
	return "", Permanent(fmt.Errorf("unknown test token %q", dev.Token))
}

func (f *fake) Health(context.Context) error { return f.health }

// connect serves p in process over go-plugin gRPC and returns a protocol
// client.
func connect[C any](t testing.TB, p Plugin[C]) pluginpb.PluginClient {
	t.Helper()
	srv, err := newServer(Info{Name: "fake", Version: "1.2.3", DeviceKind: "fakedev"}, p)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{pluginpb.PluginName: &pluginpb.GRPCPlugin{Impl: srv}})
	// Closing the client shuts the server down through go-plugin's
	// controller service.
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(pluginpb.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(pluginpb.PluginClient)
}

func configure(t testing.TB, c pluginpb.PluginClient, cfg string) {
	t.Helper()
	resp, err := c.Configure(t.Context(), &pluginpb.ConfigureRequest{Notifier: "n", ConfigJson: []byte(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Errors) > 0 {
		t.Fatalf("configure: %v", resp.Errors)
	}
}

func TestInfoSchema(t *testing.T) {
	c := connect(t, &fake{})
	info, err := c.Info(t.Context(), &pluginpb.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "fake" || info.Version != "1.2.3" || info.DeviceKind != "fakedev" {
		t.Errorf("got info %v", info)
	}
	sc, err := c.Schema(t.Context(), &pluginpb.SchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range sc.Attributes {
		names = append(names, fmt.Sprintf("%s:%s:%v:%v", a.Name, a.Type, a.Required, a.Template))
	}
	want := []string{"url:TYPE_STRING:true:false", "timeout:TYPE_DURATION:false:false", "body:TYPE_STRING:false:true"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("got schema %v; want %v", names, want)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string // "attribute: message"
		warn bool     // only warnings: configured all the same
	}{
		{"ok", `{"url":"https://x","timeout":"5s"}`, nil, false},
		{"decode errors skip Configure", `{"url":"http://x","timeout":5,"extra":true}`, []string{"extra: unknown attribute", "timeout: want a duration string such as \"5s\", got a number"}, false},
		{"plugin attribute errors", `{"url":"http://x","timeout":"2m"}`, []string{"url: must be https", "timeout: at most 1m"}, false},
		{"plain error", `{"url":"https://broken"}`, []string{": the service is broken"}, false},
		{"missing required", `{}`, []string{"url: required attribute is missing"}, false},
		{"a warning alone configures", `{"url":"https://x","timeout":"5ms"}`, []string{"timeout: under 1s is short (warning)"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{}
			c := connect(t, f)
			resp, err := c.Configure(t.Context(), &pluginpb.ConfigureRequest{Notifier: "n", ConfigJson: []byte(tc.json)})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range resp.Errors {
				m := e.Attribute + ": " + e.Message
				if e.Warning {
					m += " (warning)"
				}
				got = append(got, m)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q; want %q", got, tc.want)
			}
			h, err := c.Health(t.Context(), &pluginpb.HealthRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if h.Ready != (tc.want == nil || tc.warn) {
				t.Errorf("ready = %v after configure with errors %v", h.Ready, got)
			}
			f.mu.Lock()
			cfg := f.cfg
			f.mu.Unlock()
			if tc.want == nil && (cfg.URL != "https://x" || cfg.Timeout != 5*time.Second) || tc.warn && cfg.URL != "https://x" {
				t.Errorf("plugin got config %+v", cfg)
			}
		})
	}
}

func TestDeliverBeforeConfigure(t *testing.T) {
	c := connect(t, &fake{})
	_, err := c.Deliver(t.Context(), &pluginpb.DeliverRequest{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("got %v; want FailedPrecondition", err)
	}
	h, err := c.Health(t.Context(), &pluginpb.HealthRequest{})
	if err != nil || h.Ready || h.Message != "not configured" {
		t.Fatalf("health before configure: %v, %v", h, err)
	}
}

func TestHealthChecker(t *testing.T) {
	f := &fake{health: errors.New("token expired")}
	c := connect(t, f)
	configure(t, c, `{"url":"https://x"}`)
	h, err := c.Health(t.Context(), &pluginpb.HealthRequest{})
	if err != nil || h.Ready || h.Message != "token expired" {
		t.Fatalf("got %v, %v; want not ready: token expired", h, err)
	}
}

func devices(tokens ...string) []*pluginpb.Device {
	var ds []*pluginpb.Device
	for _, tok := range tokens {
		ds = append(ds, &pluginpb.Device{Kind: "fakedev", Token: tok, UpdatedAtUnixNano: 1})
	}
	return ds
}

func TestDeliverOutcomes(t *testing.T) {
	f := &fake{}
	c := connect(t, f)
	configure(t, c, `{"url":"https://x"}`)
	req := &pluginpb.DeliverRequest{
		DeliveryId: "d1", Attempt: 2, Route: "r",
		Call:      &pluginpb.Call{Sid: "sid1"},
		Templates: map[string]string{"body": "hi"},
		Devices:   devices("ok", "retry", "retry-after", "permanent", "gone", "gone-unknown", "panic", "ok"),
	}
	resp, err := c.Deliver(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := []*pluginpb.Outcome{
		{Kind: pluginpb.Outcome_KIND_DELIVERED, ProviderId: "id-d1-2-sid1-hi"},
		{Kind: pluginpb.Outcome_KIND_RETRY, Reason: "503 from provider"},
		{Kind: pluginpb.Outcome_KIND_RETRY, Reason: "429 too many", RetryAfterMs: 1500},
		{Kind: pluginpb.Outcome_KIND_PERMANENT, Reason: "BadDeviceToken"},
		{Kind: pluginpb.Outcome_KIND_GONE, Reason: "Unregistered", GoneAtUnixNano: 1700000000 * int64(time.Second)},
		{Kind: pluginpb.Outcome_KIND_GONE, Reason: "Unregistered"},
		{Kind: pluginpb.Outcome_KIND_PERMANENT, Reason: "plugin panic: boom"},
		{Kind: pluginpb.Outcome_KIND_DELIVERED, ProviderId: "id-d1-2-sid1-hi"},
	}
	if len(resp.Outcomes) != len(want) {
		t.Fatalf("got %d outcomes; want %d", len(resp.Outcomes), len(want))
	}
	for i := range want {
		got := resp.Outcomes[i]
		if got.Kind != want[i].Kind || got.ProviderId != want[i].ProviderId || got.Reason != want[i].Reason ||
			got.RetryAfterMs != want[i].RetryAfterMs || got.GoneAtUnixNano != want[i].GoneAtUnixNano {
			t.Errorf("outcome %d (%s): got %v; want %v", i, req.Devices[i].Token, got, want[i])
		}
	}
}

func TestDeliverNoDevices(t *testing.T) {
	f := &fake{}
	c := connect(t, f)
	configure(t, c, `{"url":"https://x"}`)
	resp, err := c.Deliver(t.Context(), &pluginpb.DeliverRequest{DeliveryId: "w", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Outcomes) != 1 || resp.Outcomes[0].Kind != pluginpb.Outcome_KIND_DELIVERED || resp.Outcomes[0].ProviderId != "id-w-1--" {
		t.Fatalf("got %v; want one delivered outcome", resp.Outcomes)
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("Deliver called %d times; want 1", n)
	}
}

func TestDeliverConcurrent(t *testing.T) {
	f := &fake{unblock: make(chan struct{})}
	c := connect(t, f)
	configure(t, c, `{"url":"https://x"}`)
	go func() {
		// Released only once all three calls are running at once.
		for f.running.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		close(f.unblock)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.Deliver(ctx, &pluginpb.DeliverRequest{Devices: devices("wait", "wait", "wait")})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range resp.Outcomes {
		if o.Kind != pluginpb.Outcome_KIND_DELIVERED {
			t.Errorf("outcome %d: %v", i, o)
		}
	}
	if m := f.maxRunning.Load(); m != 3 {
		t.Errorf("at most %d Deliver calls ran at once; want 3", m)
	}
}

func TestDeliverDeadline(t *testing.T) {
	f := &fake{}
	c := connect(t, f)
	configure(t, c, `{"url":"https://x"}`)

	t.Run("rpc deadline", func(t *testing.T) {
		// The host's RPC deadline is a bit later than the delivery's: the
		// plugin must give up at the delivery's and still answer.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		deadline := start.Add(200 * time.Millisecond)
		resp, err := c.Deliver(ctx, &pluginpb.DeliverRequest{
			Devices:          devices("block", "ok", "block"),
			DeadlineUnixNano: deadline.UnixNano(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("Deliver took %v; want about 200ms", el)
		}
		kinds := []pluginpb.Outcome_Kind{pluginpb.Outcome_KIND_RETRY, pluginpb.Outcome_KIND_DELIVERED, pluginpb.Outcome_KIND_RETRY}
		for i, o := range resp.Outcomes {
			if o.Kind != kinds[i] {
				t.Errorf("outcome %d: got %v; want %v", i, o, kinds[i])
			}
		}
		if r := resp.Outcomes[0].Reason; r != "deadline exceeded" {
			t.Errorf("got reason %q; want deadline exceeded", r)
		}
	})

	t.Run("ctx deadline reaches the plugin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		want, _ := ctx.Deadline()
		resp, err := c.Deliver(ctx, &pluginpb.DeliverRequest{Devices: devices("deadline")})
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		var got, dd int64
		if _, err := fmt.Sscanf(resp.Outcomes[0].ProviderId, "%t %d %d", &ok, &got, &dd); err != nil || !ok {
			t.Fatalf("plugin saw no deadline: %q", resp.Outcomes[0].ProviderId)
		}
		if diff := time.Duration(got - want.UnixNano()).Abs(); diff > 100*time.Millisecond {
			t.Errorf("plugin's deadline is %v off the host's", diff)
		}
	})

	t.Run("host gives up first", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		// Either side's timer may fire first: the host sees its deadline
		// pass, or the plugin's answer that the delivery ran out of time.
		resp, err := c.Deliver(ctx, &pluginpb.DeliverRequest{Devices: devices("block")})
		switch {
		case status.Code(err) == codes.DeadlineExceeded:
		case err == nil && resp.Outcomes[0].Kind == pluginpb.Outcome_KIND_RETRY && resp.Outcomes[0].Reason == "deadline exceeded":
		default:
			t.Fatalf("got %v, %v; want DeadlineExceeded or a retry outcome", resp, err)
		}
		if el := time.Since(start); el > time.Second {
			t.Fatalf("Deliver took %v", el)
		}
		// The plugin's goroutine ends with the RPC's ctx.
		waitFor(t, func() bool { return f.running.Load() == 0 })
	})

	t.Run("already expired", func(t *testing.T) {
		before := f.calls.Load()
		resp, err := c.Deliver(t.Context(), &pluginpb.DeliverRequest{
			Devices:          devices("ok"),
			DeadlineUnixNano: time.Now().Add(-time.Second).UnixNano(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if o := resp.Outcomes[0]; o.Kind != pluginpb.Outcome_KIND_RETRY || o.Reason != "deadline exceeded" {
			t.Errorf("got %v; want retry: deadline exceeded", o)
		}
		if f.calls.Load() != before {
			t.Error("Deliver was called past the deadline")
		}
	})
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOutcomeRetryAfterRoundsUp(t *testing.T) {
	o := outcome("", RetryAfter(errors.New("x"), 300*time.Microsecond))
	if o.RetryAfterMs != 1 {
		t.Fatalf("got %d ms; want 1", o.RetryAfterMs)
	}
}

func BenchmarkDeliverInProcess(b *testing.B) {
	c := connect(b, &fake{})
	configure(b, c, `{"url":"https://x"}`)
	req := &pluginpb.DeliverRequest{DeliveryId: "d", Attempt: 1, Devices: devices("ok")}
	for b.Loop() {
		if _, err := c.Deliver(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// An outcome's reason is valid UTF-8 of at most maxReason bytes, whatever
// the provider's error said: protobuf refuses to encode anything else, and
// the stream (every call on it) would end.
func TestReasonText(t *testing.T) {
	for _, in := range []string{"ok", "bad \xff\xfe bytes", strings.Repeat("é", 2000), strings.Repeat("x", 5000) + "\xff"} {
		got := reasonText(in)
		if !utf8.ValidString(got) || len(got) > maxReason {
			t.Errorf("reasonText(%.20q…) = %.20q… (%d bytes, valid %t)", in, got, len(got), utf8.ValidString(got))
		}
	}
	if o := outcome("", Permanent(errors.New("boom \xff"))); !utf8.ValidString(o.Reason) {
		t.Errorf("outcome reason %q is not valid UTF-8", o.Reason)
	}
}

// blockProbe is a test plugin whose Configure records what its ctx says
// about the notifier block.
type blockProbe struct {
	mu   sync.Mutex
	seen string
}

func (p *blockProbe) Configure(ctx context.Context, _ fakeConfig) Diagnostics {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = describeBlock(ctx)
	return nil
}

func (p *blockProbe) Deliver(context.Context, *Delivery, Device) (string, error) { return "", nil }

// describeBlock says what TemplatesKnown, TemplateSet and PayloadKeySet
// answer on ctx for a few names, and what CheckOnly answers.
func describeBlock(ctx context.Context) string {
	return fmt.Sprintf("known=%v body=%v title=%v aps=%v badge=%v check=%v", TemplatesKnown(ctx),
		TemplateSet(ctx, "body"), TemplateSet(ctx, "title"), PayloadKeySet(ctx, "aps"), PayloadKeySet(ctx, "badge"), CheckOnly(ctx))
}

// Configure's ctx says which template attributes and payload keys the
// block sets when the host told, and that it does not know when the host
// did not (an older host); and whether the host started the process only
// to check the block.
func TestConfigureTemplates(t *testing.T) {
	tests := []struct {
		name string
		req  *pluginpb.ConfigureRequest
		want string
	}{
		{"an older host tells nothing", &pluginpb.ConfigureRequest{},
			"known=false body=false title=false aps=false badge=false check=false"},
		{"none set", &pluginpb.ConfigureRequest{TemplatesKnown: true},
			"known=true body=false title=false aps=false badge=false check=false"},
		{"body and aps set", &pluginpb.ConfigureRequest{TemplatesKnown: true, Templates: []string{"body", "collapse_id"}, PayloadKeys: []string{"aps"}},
			"known=true body=true title=false aps=true badge=false check=false"},
		{"names without templates_known are not believed", &pluginpb.ConfigureRequest{Templates: []string{"body"}},
			"known=false body=false title=false aps=false badge=false check=false"},
		{"check only", &pluginpb.ConfigureRequest{TemplatesKnown: true, Templates: []string{"body"}, CheckOnly: true},
			"known=true body=true title=false aps=false badge=false check=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &blockProbe{}
			c := connect(t, p)
			tc.req.Notifier, tc.req.ConfigJson = "n", []byte(`{"url":"https://x"}`)
			resp, err := c.Configure(t.Context(), tc.req)
			if err != nil || len(resp.Errors) > 0 {
				t.Fatalf("Configure: %v, %v", resp.GetErrors(), err)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.seen != tc.want {
				t.Errorf("got %s; want %s", p.seen, tc.want)
			}
		})
	}
}

// ContextWithBlock makes the ctx Configure gets from a host that tells,
// for in-process tests; a plain ctx knows nothing.
func TestContextWithBlock(t *testing.T) {
	if got, want := describeBlock(context.Background()), "known=false body=false title=false aps=false badge=false check=false"; got != want {
		t.Errorf("plain ctx: got %s; want %s", got, want)
	}
	ctx := ContextWithBlock(context.Background(), Block{})
	if got, want := describeBlock(ctx), "known=true body=false title=false aps=false badge=false check=false"; got != want {
		t.Errorf("empty block: got %s; want %s", got, want)
	}
	ctx = ContextWithBlock(context.Background(), Block{Templates: []string{"title"}, PayloadKeys: []string{"badge"}})
	if got, want := describeBlock(ctx), "known=true body=false title=true aps=false badge=true check=false"; got != want {
		t.Errorf("title and badge: got %s; want %s", got, want)
	}
	ctx = ContextWithBlock(context.Background(), Block{CheckOnly: true})
	if got, want := describeBlock(ctx), "known=true body=false title=false aps=false badge=false check=true"; got != want {
		t.Errorf("check only: got %s; want %s", got, want)
	}
}
