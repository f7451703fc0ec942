// Package sdktest tests a ringside plugin through the real plugin boundary in
// a plain `go test`: the test binary serves the plugin as a separate process
// over go-plugin gRPC with the SDK's handshake and AutoMTLS, exactly as
// ringside runs it, and the test drives it with the protocol's RPCs.
//
// Conformance runs the checks every plugin should pass (see Suite); with
// Suite.Serve set it serves the plugin from the test itself:
//
//	func TestConformance(t *testing.T) {
//		sdktest.Conformance(t, sdktest.Suite{Serve: main, Config: ...})
//	}
//
// To start processes in other tests, wire the plugin in once, in the
// package's TestMain:
//
//	func TestMain(m *testing.M) {
//		sdktest.Main(m, func() { sdk.Serve(Info, New()) })
//	}
//
// then start a process per test and talk to it:
//
//	c := sdktest.Start(t)
//	c.MustConfigure(t, map[string]any{"url": srv.URL}) // or c.Configure, for its sdk.Diagnostics
//	out := c.Deliver(t, sdktest.NewRequest(sdk.Device{Kind: "phone", Token: "+15005550006"}))
//
// Configure's options tell the plugin, as ringside does, what else the
// notifier block sets: c.Configure(t, cfg, sdktest.Templates("body")) says
// it sets the template attribute body (see sdk.TemplateSet).
package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/internal/protocol"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Main is a plugin package's TestMain: when the test binary was launched as
// a plugin (by Start, with the SDK's handshake cookie in its environment) it
// calls serve, which must serve the plugin with sdk.Serve, and exits;
// otherwise it runs the tests.
func Main(m *testing.M, serve func()) {
	if IsPlugin() {
		serve()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// IsPlugin reports whether this process was launched as a ringside plugin:
// the SDK's handshake cookie is in its environment. A TestMain that serves
// several test plugins can use it instead of Main.
func IsPlugin() bool {
	return os.Getenv(pluginpb.MagicCookieKey) == pluginpb.MagicCookieValue
}

// Option changes how Start launches the plugin.
type Option func(*options)

type options struct {
	argv []string
	env  []string
	// test, when set, is the name of the test the launched test binary runs
	// (and that serves the plugin); otherwise it runs none.
	test     string
	protocol uint
}

// Command launches argv (a built plugin binary and its arguments) instead of
// the test binary.
func Command(argv ...string) Option { return func(o *options) { o.argv = argv } }

// Env adds KEY=value entries to the plugin's environment.
func Env(kv ...string) Option { return func(o *options) { o.env = append(o.env, kv...) } }

// Client is a running plugin process and a protocol client to it. Its
// methods fail the test on an RPC error.
type Client struct {
	// RPC is the raw protocol client, for requests the helpers do not cover.
	RPC pluginpb.PluginClient
	// Info is what the plugin said of itself.
	Info *pluginpb.InfoResponse

	// stream makes Deliver calls on DeliverStream, as ringside does, when
	// the plugin serves it (Info.DeliverStream); nil otherwise.
	stream *streamClient
	pc     *plugin.Client
	logs   *Buffer
}

// Start launches the plugin as a separate process (the test binary, whose
// TestMain calls Main, unless Command says otherwise), performs the
// handshake, asks for Info, and kills the process when the test ends.
func Start(t testing.TB, opts ...Option) *Client {
	t.Helper()
	o := options{protocol: pluginpb.ProtocolVersion}
	for _, opt := range opts {
		opt(&o)
	}
	c, err := start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c
}

// pluginVersion finds the plugin's protocol version in go-plugin's
// handshake error.
var pluginVersion = regexp.MustCompile(`Plugin version: (\d+)`)

func start(o options) (*Client, error) {
	argv := o.argv
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		// Should the package's TestMain not call Main, the child runs no
		// test and exits, and the start fails instead of recursing.
		argv = []string{exe, "-test.run=" + runPattern(o.test)}
		if o.test != "" {
			// The child lives as long as the parent keeps it.
			argv = append(argv, "-test.timeout=0")
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// The test's environment, then these defaults, then the options: the
	// later wins (go-plugin is told not to add the host's on top).
	env := append(os.Environ(),
		"OTEL_TRACES_EXPORTER=none",
		pluginpb.LogLevelEnv+"=debug",
		// Under -race a process sleeps 1s at exit, which each Kill waits for.
		"GORACE=atexit_sleep_ms=0",
	)
	cmd.Env = dedupEnv(append(env, o.env...))
	logs := &Buffer{}
	hs := protocol.Handshake
	hs.ProtocolVersion = o.protocol
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  hs,
		Plugins:          plugin.PluginSet{pluginpb.PluginName: &pluginpb.GRPCPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     30 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "plugin", Output: logs, Level: hclog.Trace, JSONFormat: true,
		}),
		SyncStdout: logs,
		SyncStderr: logs,
	})
	fail := func(err error) (*Client, error) {
		pc.Kill()
		if m := pluginVersion.FindStringSubmatch(err.Error()); m != nil {
			err = fmt.Errorf("protocol version mismatch: the plugin speaks version %s, this host speaks version %d: %w", m[1], o.protocol, err)
		}
		if len(o.argv) == 0 && strings.Contains(err.Error(), "exited before we could connect") {
			err = fmt.Errorf("%w (does the package's TestMain call sdktest.Main, or its Suite set Serve?)", err)
		}
		return nil, fmt.Errorf("sdktest: start plugin %s: %w\nplugin output:\n%s", argv[0], err, logs.String())
	}
	proto, err := pc.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := proto.Dispense(pluginpb.PluginName)
	if err != nil {
		return fail(err)
	}
	rpc := raw.(pluginpb.PluginClient)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := rpc.Info(ctx, &pluginpb.InfoRequest{})
	if err != nil {
		return fail(fmt.Errorf("info: %w", err))
	}
	c := &Client{RPC: rpc, Info: info, pc: pc, logs: logs}
	if info.GetDeliverStream() {
		c.stream = newStreamClient(rpc, info.GetDeliverProgress())
	}
	return c, nil
}

// runPattern is the -test.run pattern that runs exactly the test named
// name (a subtest's name has its parents' before it, "/"-separated); the
// empty name runs no test.
func runPattern(name string) string {
	if name == "" {
		return "^$"
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// dedupEnv keeps the last value of each variable.
func dedupEnv(env []string) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// Kill stops the plugin process (Start arranges it at the end of the test).
func (c *Client) Kill() {
	if c.stream != nil {
		c.stream.Close()
	}
	c.pc.Kill()
}

// Exited reports whether the plugin process has exited (a crash, a panic
// outside a Deliver call, or a race the race detector caught).
func (c *Client) Exited() bool { return c.pc.Exited() }

// Logs returns everything the plugin logged so far (its sdk.Logger lines as
// JSON, and raw stderr).
func (c *Client) Logs() string { return c.logs.String() }

// Schema returns the plugin's attributes.
func (c *Client) Schema(t testing.TB) []*pluginpb.Attribute {
	t.Helper()
	resp, err := c.RPC.Schema(rpcCtx(t), &pluginpb.SchemaRequest{})
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	return resp.GetAttributes()
}

// ConfigureOption describes the notifier block to Configure beyond its
// plugin attributes, as ringside does.
type ConfigureOption func(*sdk.Block)

// Templates says the block sets the template attributes names: the
// plugin's Configure then finds them with sdk.TemplateSet. Without any
// ConfigureOption, Configure is told nothing about the block, as by a
// ringside older than the protocol's ConfigureRequest.templates (and
// sdk.TemplatesKnown is false); with any, it is told the block sets
// exactly the templates and payload keys they name.
func Templates(names ...string) ConfigureOption {
	return func(b *sdk.Block) { b.Templates = append(b.Templates, names...) }
}

// PayloadKeys says the block's payload sets the keys keys: the plugin's
// Configure then finds them with sdk.PayloadKeySet (see Templates).
func PayloadKeys(keys ...string) ConfigureOption {
	return func(b *sdk.Block) { b.PayloadKeys = append(b.PayloadKeys, keys...) }
}

// CheckOnly says the host started the plugin only to check the block, as
// `ringside validate` does: the plugin's Configure then finds
// sdk.CheckOnly true, and must open no connection.
func CheckOnly() ConfigureOption {
	return func(b *sdk.Block) { b.CheckOnly = true }
}

// block applies opts; ok is false without any.
func block(opts []ConfigureOption) (b sdk.Block, ok bool) {
	for _, o := range opts {
		o(&b)
	}
	return b, len(opts) > 0
}

// Configure sends cfg, which is JSON text (string or []byte) or any value
// that encodes as a JSON object (such as map[string]any), with the block
// opts describe, and returns the plugin's diagnostics (the SDK's decoding
// errors, or what the plugin's Configure returned) as the host received
// them.
func (c *Client) Configure(t testing.TB, cfg any, opts ...ConfigureOption) sdk.Diagnostics {
	t.Helper()
	var js []byte
	switch v := cfg.(type) {
	case string:
		js = []byte(v)
	case []byte:
		js = v
	default:
		var err error
		if js, err = json.Marshal(v); err != nil {
			t.Fatalf("Configure: encode config: %v", err)
		}
	}
	req := &pluginpb.ConfigureRequest{Notifier: "sdktest", ConfigJson: js}
	if b, ok := block(opts); ok {
		req.TemplatesKnown, req.Templates, req.PayloadKeys, req.CheckOnly = true, slices.Sorted(slices.Values(b.Templates)), b.PayloadKeys, b.CheckOnly
	}
	resp, err := c.RPC.Configure(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	var diags sdk.Diagnostics
	for _, e := range resp.GetErrors() {
		d := sdk.Diagnostic{Attribute: e.GetAttribute(), Summary: e.GetMessage()}
		if e.GetWarning() {
			d.Severity = sdk.SeverityWarning
		}
		diags = append(diags, d)
	}
	return diags
}

// Configured configures p in-process with cfg and the block opts
// describe, and returns it, failing the test on any diagnostic, warnings
// included: for tests that call a plugin's methods directly, without a
// plugin process.
func Configured[C any, P sdk.Plugin[C]](t testing.TB, p P, cfg C, opts ...ConfigureOption) P {
	t.Helper()
	ctx := context.Background()
	if b, ok := block(opts); ok {
		ctx = sdk.ContextWithBlock(ctx, b)
	}
	if diags := p.Configure(ctx, cfg); len(diags) > 0 {
		t.Fatalf("Configure: %v", diags)
	}
	return p
}

// CheckDiagnostics fails the test unless got holds one diagnostic for
// each of want, in order, each want written "severity attribute: part":
// the severity (error or warning), the attribute it points at, and a part
// of its summary, as in "warning title: ignored".
func CheckDiagnostics(t testing.TB, got sdk.Diagnostics, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %v; want %q", got, want)
		return
	}
	for i, d := range got {
		sev, rest, _ := strings.Cut(want[i], " ")
		attr, part, _ := strings.Cut(rest, ": ")
		if d.Severity.String() != sev || d.Attribute != attr || !strings.Contains(d.Summary, part) {
			t.Errorf("diagnostic %d: got %v; want %s at %s containing %q", i, d, sev, attr, part)
		}
	}
}

// MustConfigure is Configure that fails the test on any error (warnings are
// fine).
func (c *Client) MustConfigure(t testing.TB, cfg any, opts ...ConfigureOption) {
	t.Helper()
	if diags := c.Configure(t, cfg, opts...); diags.HasError() {
		t.Fatalf("Configure:\n%s", diags)
	}
}

// Health returns the plugin's readiness.
func (c *Client) Health(t testing.TB) (ready bool, message string) {
	t.Helper()
	resp, err := c.RPC.Health(rpcCtx(t), &pluginpb.HealthRequest{})
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	return resp.GetReady(), resp.GetMessage()
}

// rpcCtx bounds one helper RPC.
func rpcCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Request is one Deliver request, in the SDK's terms.
type Request struct {
	ID      string
	Attempt int
	Route   string
	Call    sdk.Call
	// PayloadJSON is sent as is (nil: none).
	PayloadJSON []byte
	Templates   map[string]string
	Devices     []sdk.Device
	// Deadline is the delivery's deadline (zero: none).
	Deadline time.Time
}

// LineParam is the param of LINE Planet's documented notify_cb example.
const LineParam = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="

// LineCall is the call of LINE Planet's documented notify_cb example.
func LineCall() sdk.Call {
	return sdk.Call{
		SID: "151ad995-749c-4a28-893f-636700469db1", FromServiceID: "linecorp.com", FromUserID: "9286",
		ToServiceID: "linecorp.com", ToUserID: "2809", Type: "A", Param: LineParam, AppSvrData: "stid",
	}
}

// Payload is the payload ringside renders for c when the notifier adds no
// keys.
func Payload(c sdk.Call) []byte {
	m := map[string]string{
		"cc_param": c.Param, "sid": c.SID,
		"app_caller_sid": c.FromServiceID, "app_caller_uid": c.FromUserID,
		"app_callee_sid": c.ToServiceID, "app_callee_uid": c.ToUserID,
		"app_call_type": c.Type,
	}
	if c.AppSvrData != "" {
		m["app_svr_data"] = c.AppSvrData
	}
	b, _ := json.Marshal(m)
	return b
}

// NewRequest returns a well-formed request for LINE's example call to devs,
// with its payload, attempt 1 and a deadline 30 seconds away.
func NewRequest(devs ...sdk.Device) Request {
	c := LineCall()
	return Request{
		ID: "sdktest-delivery-1", Attempt: 1, Route: "sdktest", Call: c,
		PayloadJSON: Payload(c), Devices: devs, Deadline: time.Now().Add(30 * time.Second),
	}
}

// Delivery returns r as a plugin's Deliver receives it (r.Devices aside),
// for tests that call Deliver in-process.
func (r Request) Delivery() *sdk.Delivery {
	return &sdk.Delivery{
		ID: r.ID, Attempt: r.Attempt, Route: r.Route, Call: r.Call,
		PayloadJSON: r.PayloadJSON, Templates: r.Templates, Deadline: r.Deadline,
	}
}

// Proto returns r as a protocol request.
func (r Request) Proto() *pluginpb.DeliverRequest {
	req := &pluginpb.DeliverRequest{
		DeliveryId: r.ID, Attempt: int32(r.Attempt), Route: r.Route,
		Call: &pluginpb.Call{
			Sid: r.Call.SID, FromServiceId: r.Call.FromServiceID, FromUserId: r.Call.FromUserID,
			ToServiceId: r.Call.ToServiceID, ToUserId: r.Call.ToUserID, Type: r.Call.Type,
			Param: r.Call.Param, AppSvrData: r.Call.AppSvrData, Extra: r.Call.Extra,
		},
		PayloadJson: r.PayloadJSON,
		Templates:   r.Templates,
	}
	for _, d := range r.Devices {
		pd := &pluginpb.Device{Kind: d.Kind, Token: d.Token}
		if !d.UpdatedAt.IsZero() {
			pd.UpdatedAtUnixNano = d.UpdatedAt.UnixNano()
		}
		req.Devices = append(req.Devices, pd)
	}
	if !r.Deadline.IsZero() {
		req.DeadlineUnixNano = r.Deadline.UnixNano()
	}
	return req
}

// Kind is an outcome's kind.
type Kind string

// The outcome kinds of the protocol.
const (
	Delivered   Kind = "delivered"
	Retry       Kind = "retry"
	Permanent   Kind = "permanent"
	Gone        Kind = "gone"
	Unspecified Kind = "unspecified"
)

// Outcome is one device's outcome.
type Outcome struct {
	Kind       Kind
	ProviderID string
	Reason     string
	RetryAfter time.Duration
	GoneAt     time.Time
}

func (o Outcome) String() string {
	s := string(o.Kind)
	if o.ProviderID != "" {
		s += " " + o.ProviderID
	}
	if o.Reason != "" {
		s += ": " + o.Reason
	}
	if o.RetryAfter > 0 {
		s += fmt.Sprintf(" (after %v)", o.RetryAfter)
	}
	return s
}

// Outcomes converts protocol outcomes.
func Outcomes(pb []*pluginpb.Outcome) []Outcome {
	out := make([]Outcome, len(pb))
	for i, o := range pb {
		k := Unspecified
		switch o.GetKind() {
		case pluginpb.Outcome_KIND_DELIVERED:
			k = Delivered
		case pluginpb.Outcome_KIND_RETRY:
			k = Retry
		case pluginpb.Outcome_KIND_PERMANENT:
			k = Permanent
		case pluginpb.Outcome_KIND_GONE:
			k = Gone
		}
		out[i] = Outcome{Kind: k, ProviderID: o.GetProviderId(), Reason: o.GetReason(),
			RetryAfter: time.Duration(o.GetRetryAfterMs()) * time.Millisecond}
		if n := o.GetGoneAtUnixNano(); n > 0 {
			out[i].GoneAt = time.Unix(0, n)
		}
	}
	return out
}

// DeliverProto makes one Deliver call the way ringside does: on
// DeliverStream when the plugin serves it, else as a unary call.
func (c *Client) DeliverProto(ctx context.Context, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	if c.stream != nil {
		return c.stream.Deliver(ctx, req)
	}
	return c.RPC.Deliver(ctx, req)
}

// Deliver sends r (with DeliverProto) and returns the outcomes; it fails
// the test on an RPC error or when the number of outcomes is not one per
// device (one when r has none).
func (c *Client) Deliver(t testing.TB, r Request) []Outcome {
	t.Helper()
	resp, err := c.DeliverProto(rpcCtx(t), r.Proto())
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if want := max(len(r.Devices), 1); len(resp.GetOutcomes()) != want {
		t.Fatalf("Deliver: %d outcomes for %d devices; want %d", len(resp.GetOutcomes()), len(r.Devices), want)
	}
	return Outcomes(resp.GetOutcomes())
}

// Buffer is a bytes.Buffer safe for concurrent Write and String: for a
// plugin's logs, which its goroutines write while the test reads them.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
