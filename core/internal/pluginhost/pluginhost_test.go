package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ringside/ringside/core/internal/logtest"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

func exe(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testSpec(t testing.TB, plugin string) Spec {
	return Spec{
		Notifier:  "n1",
		Plugin:    plugin,
		Command:   []string{exe(t), "plugin", plugin},
		Telemetry: map[string]string{"OTEL_TRACES_EXPORTER": "none"},
		// Under -race a process sleeps 1s at exit, which each Kill waits for.
		Env: map[string]string{"GORACE": "atexit_sleep_ms=0"},
	}
}

func start(t testing.TB, spec Spec) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c
}

func configure(t testing.TB, c *Client, js string) {
	t.Helper()
	errs, err := c.Configure(t.Context(), []byte(js))
	if err != nil || len(errs) > 0 {
		t.Fatalf("configure: %v, %v", errs, err)
	}
}

// startTestPlugin starts the test plugin, configured with the greeting
// "hi"; it fails unless the plugin, an SDK plugin, announced DeliverStream.
func startTestPlugin(t testing.TB) *Client {
	t.Helper()
	c := start(t, testSpec(t, "test"))
	if c.stream == nil {
		t.Fatal("an SDK plugin did not announce DeliverStream")
	}
	configure(t, c, `{"greeting":"hi"}`)
	return c
}

func deliver(t testing.TB, c *Client, ctx context.Context, tokens ...string) *pluginpb.DeliverResponse {
	t.Helper()
	req := &pluginpb.DeliverRequest{DeliveryId: "d1", Attempt: 1, Templates: map[string]string{"body": "B"}}
	for _, tok := range tokens {
		req.Devices = append(req.Devices, &pluginpb.Device{Kind: "testdev", Token: tok})
	}
	resp, err := deliverWire(ctx, c, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRoundTrip(t *testing.T) {
	c := start(t, testSpec(t, "test"))
	ctx := t.Context()
	if i := c.Info(); i.Name != "test" || i.Version != "0.0.1" || i.DeviceKind != "testdev" {
		t.Errorf("got info %v", i)
	}
	sc, err := c.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range sc.Attributes {
		got = append(got, a.Name+":"+a.Type.String())
	}
	if sc.DeviceKind != "testdev" {
		t.Errorf("schema of device kind %q; want testdev", sc.DeviceKind)
	}
	if want := []string{"greeting:string", "wait:duration", "body:string"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got schema %v; want %v", got, want)
	}
	if err := c.Health(ctx); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("health before configure: got %v", err)
	}
	_, err = deliverWire(ctx, c, &pluginpb.DeliverRequest{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("deliver before configure: got %v; want FailedPrecondition", err)
	}

	errs, err := c.Configure(ctx, []byte(`{"greeting":"bad","wait":"x","colour":1}`))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, e := range errs {
		got = append(got, e.Attribute+": "+e.Message)
	}
	want := []string{"colour: unknown attribute", `wait: invalid duration "x": want a Go duration such as "5s" or "1m30s"`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
	errs, err = c.Configure(ctx, []byte(`{"greeting":"bad"}`))
	if err != nil || len(errs) != 2 || errs[0].Attribute != "greeting" || errs[1].Attribute != "" {
		t.Errorf("got %v, %v; want a greeting error and a block error", errs, err)
	}

	configure(t, c, `{"greeting":"hi","wait":"1s"}`)
	if err := c.Health(ctx); err != nil {
		t.Errorf("health: %v", err)
	}
	resp := deliver(t, c, ctx, "ok", "gone")
	if o := resp.Outcomes[0]; o.Kind != pluginpb.Outcome_KIND_DELIVERED || o.ProviderId != "hi:d1:B" {
		t.Errorf("outcome 0: %v", o)
	}
	if o := resp.Outcomes[1]; o.Kind != pluginpb.Outcome_KIND_GONE || o.GoneAtUnixNano != 7 || o.Reason != "Unregistered" {
		t.Errorf("outcome 1: %v", o)
	}
	if resp := deliver(t, c, ctx); len(resp.Outcomes) != 1 || resp.Outcomes[0].ProviderId != "hi:d1:B" {
		t.Errorf("no devices: %v", resp.Outcomes)
	}
	if c.Exited() {
		t.Error("Exited before Kill")
	}
	c.Kill()
	if !c.Exited() {
		t.Error("not Exited after Kill")
	}
	if _, err := deliverWire(ctx, c, &pluginpb.DeliverRequest{}); err == nil {
		t.Error("Deliver after Kill succeeded")
	}
}

func TestEnv(t *testing.T) {
	host := []string{
		"PATH=/bin", "HOME=/h", "TZ=UTC", "SSL_CERT_FILE=/c", "SSL_CERT_DIR=/d", "HTTP_PROXY=p", "https_proxy=q",
		"no_proxy=r", "Http_Proxy=mixed", "OTEL_SERVICE_NAME=host", "OTEL_X=1", "AWS_SECRET=s", "RINGSIDE_ADMIN_TOKEN=t", "MALFORMED",
	}
	got := Env(host, map[string]string{"OTEL_SERVICE_NAME": "tel", "RINGSIDE_PLUGIN_LOG_LEVEL": "debug", "HOME": "/t"},
		map[string]string{"HOME": "/block", "CONSOLE_COLOR": "1"})
	want := []string{
		"CONSOLE_COLOR=1", "GOMAXPROCS=" + strconv.Itoa(PluginProcs()), "HOME=/block", "HTTP_PROXY=p", "OTEL_SERVICE_NAME=tel", "OTEL_X=1", "PATH=/bin",
		"RINGSIDE_PLUGIN_LOG_LEVEL=debug", "SSL_CERT_DIR=/d", "SSL_CERT_FILE=/c", "TZ=UTC", "https_proxy=q", "no_proxy=r",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestCleanEnvironment(t *testing.T) {
	t.Setenv("RINGSIDE_TEST_SECRET", "s3cret")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "from=host")
	spec := testSpec(t, "test")
	spec.Telemetry = map[string]string{"OTEL_SERVICE_NAME": "tel", "OTEL_TRACES_EXPORTER": "none", "RINGSIDE_PLUGIN_LOG_LEVEL": "warn"}
	spec.Env["BLOCK_VAR"] = "b"
	spec.Env["OTEL_SERVICE_NAME"] = "block"
	c := start(t, spec)
	configure(t, c, `{"greeting":"hi"}`)
	resp := deliver(t, c, t.Context(), "env:RINGSIDE_TEST_SECRET", "env:BLOCK_VAR", "env:OTEL_SERVICE_NAME",
		"env:OTEL_RESOURCE_ATTRIBUTES", "env:RINGSIDE_PLUGIN_LOG_LEVEL", "env:PATH", "env:GOMAXPROCS", "environ")
	want := []string{"false:", "true:b", "true:block", "true:from=host", "true:warn", "true:" + os.Getenv("PATH"),
		"true:" + strconv.Itoa(PluginProcs())}
	for i, w := range want {
		if got := resp.Outcomes[i].ProviderId; got != w {
			t.Errorf("device %d: got %q; want %q", i, got, w)
		}
	}
	// Besides the clean environment, only go-plugin's own variables.
	allowed := map[string]bool{
		"BLOCK_VAR": true, "GORACE": true, "GOMAXPROCS": true, "RINGSIDE_PLUGIN_LOG_LEVEL": true,
		"RINGSIDE_PLUGIN": true, "PLUGIN_MIN_PORT": true, "PLUGIN_MAX_PORT": true, "PLUGIN_PROTOCOL_VERSIONS": true, "PLUGIN_CLIENT_CERT": true,
	}
	for _, k := range passEnv {
		allowed[k], allowed[strings.ToLower(k)] = true, true
	}
	for k := range strings.SplitSeq(resp.Outcomes[7].ProviderId, ",") {
		if !allowed[k] && !strings.HasPrefix(k, "OTEL_") {
			t.Errorf("plugin environment has %s", k)
		}
	}
}

func TestSHA256(t *testing.T) {
	path := exe(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	actual := hex.EncodeToString(sum[:])

	t.Run("match", func(t *testing.T) {
		spec := testSpec(t, "test")
		spec.SHA256 = actual
		start(t, spec)
	})
	t.Run("mismatch", func(t *testing.T) {
		spec := testSpec(t, "test")
		spec.SHA256 = strings.Repeat("ab", 32)
		c, err := Start(t.Context(), spec)
		if err == nil {
			c.Kill()
			t.Fatal("started with a wrong sha256")
		}
		for _, s := range []string{path, spec.SHA256, actual, "expected", "actual"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not name %q", err, s)
			}
		}
	})
	t.Run("malformed", func(t *testing.T) {
		spec := testSpec(t, "test")
		spec.SHA256 = "xyz"
		if _, err := Start(t.Context(), spec); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestProtocolVersionMismatch(t *testing.T) {
	c, err := Start(t.Context(), testSpec(t, "v2"))
	if err == nil {
		c.Kill()
		t.Fatal("started a plugin of protocol version 2")
	}
	for _, s := range []string{"protocol version 2", "this host speaks version 1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(t.Context(), Spec{Notifier: "n", Plugin: "p"}); err == nil {
		t.Error("started with no command")
	}
	spec := testSpec(t, "test")
	spec.Command = []string{"/nonexistent/plugin"}
	if _, err := Start(t.Context(), spec); err == nil {
		t.Error("started a missing command")
	}
}

func TestOutcomeCountChecked(t *testing.T) {
	c := start(t, testSpec(t, "short"))
	_, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "a"}, {Token: "b"}}})
	if err == nil || !strings.Contains(err.Error(), "0 outcomes for 2 devices") {
		t.Fatalf("got %v", err)
	}
}

func TestLogsForwarded(t *testing.T) {
	var buf logtest.Buffer
	spec := testSpec(t, "test")
	spec.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := start(t, spec)
	configure(t, c, `{"greeting":"hi"}`)
	deliver(t, c, t.Context(), "log")

	var hello, raw map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for (hello == nil || raw == nil) && time.Now().Before(deadline) {
		for _, m := range buf.Records() {
			switch m["msg"] {
			case "hello from plugin":
				hello = m
			case "raw stderr line":
				raw = m
			case "debug from plugin":
				t.Errorf("a debug line got through an info logger: %v", m)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if hello == nil || raw == nil {
		t.Fatalf("plugin lines not forwarded; host log:\n%s", buf.String())
	}
	if hello["level"] != "INFO" || hello["notifier"] != "n1" || hello["logger"] != "plugin.n1" || hello["n"] != 42.0 {
		t.Errorf("got %v", hello)
	}
	if _, ok := hello["timestamp"]; ok {
		t.Errorf("forwarded line keeps the plugin's timestamp: %v", hello)
	}
	if raw["notifier"] != "n1" || raw["stream"] != "stderr" {
		t.Errorf("got %v", raw)
	}
}

func TestDeadlineReachesPlugin(t *testing.T) {
	c := startTestPlugin(t)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	resp := deliver(t, c, ctx, "deadline")
	var got int64
	if _, err := fmt.Sscan(resp.Outcomes[0].ProviderId, &got); err != nil {
		t.Fatalf("plugin saw no deadline: %q", resp.Outcomes[0].ProviderId)
	}
	if diff := time.Duration(got - want.UnixNano()).Abs(); diff > 200*time.Millisecond {
		t.Errorf("plugin's deadline is %v off the host's", diff)
	}

	// A plugin that blocks until its ctx ends answers by the deadline.
	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	resp, err := deliverWire(ctx, c, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "block"}}})
	if el := time.Since(begin); el > time.Second {
		t.Fatalf("Deliver took %v; want about 200ms", el)
	}
	switch {
	case status.Code(err) == codes.DeadlineExceeded:
	case err == nil && resp.Outcomes[0].Kind == pluginpb.Outcome_KIND_RETRY:
	default:
		t.Fatalf("got %v, %v; want DeadlineExceeded or a retry", resp, err)
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatalf("plugin unhealthy after a timed-out delivery: %v", err)
	}
}

func TestTraceContextCrosses(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	spec := testSpec(t, "test")
	spec.TracerProvider = tp
	c := start(t, spec)
	configure(t, c, `{"greeting":"hi"}`)

	ctx, parent := tp.Tracer("test").Start(t.Context(), "notifier delivery")
	resp := deliver(t, c, ctx, "trace")
	parent.End()

	traceID, spanID, _ := strings.Cut(resp.Outcomes[0].ProviderId, "/")
	if want := parent.SpanContext().TraceID().String(); traceID != want {
		t.Fatalf("plugin saw trace %s; want %s", traceID, want)
	}
	var rpcSpan sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "notifier delivery" {
			continue
		}
		if !strings.HasPrefix(s.Name(), "ringside.plugin.v1.Plugin/") {
			t.Errorf("traced a call outside the plugin protocol: %s", s.Name())
		}
		if s.Name() == "ringside.plugin.v1.Plugin/Deliver" {
			rpcSpan = s
		}
	}
	if rpcSpan == nil {
		t.Fatal("no client span for Deliver")
	}
	if rpcSpan.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Error("the Deliver span is not a child of the caller's span")
	}
	// With no exporter the plugin's tracer is a no-op: its ctx carries the
	// host's client span.
	if spanID != rpcSpan.SpanContext().SpanID().String() {
		t.Errorf("plugin's parent span is %s; want the Deliver client span %s", spanID, rpcSpan.SpanContext().SpanID())
	}
}

// TestPluginExportsSpans runs the plugin with the OTLP exporter against an
// in-test receiver: the plugin's server span continues the host's trace and
// is flushed when the host kills the plugin.
func TestPluginExportsSpans(t *testing.T) {
	var mu sync.Mutex
	var got []*collectorpb.ExportTraceServiceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &collectorpb.ExportTraceServiceRequest{}
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	defer srv.Close()

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	spec := testSpec(t, "test")
	spec.TracerProvider = tp
	spec.Telemetry = map[string]string{
		"OTEL_TRACES_EXPORTER":               "otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/v1/traces",
		"OTEL_SERVICE_NAME":                  "ringside",
		"OTEL_RESOURCE_ATTRIBUTES":           "ringside.notifier=n1",
	}
	c := start(t, spec)
	configure(t, c, `{"greeting":"hi"}`)
	ctx, parent := tp.Tracer("test").Start(t.Context(), "notifier delivery")
	deliver(t, c, ctx, "ok")
	parent.End()
	c.Kill() // flushes the plugin's batch

	var clientSpan sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "ringside.plugin.v1.Plugin/Deliver" {
			clientSpan = s
		}
	}
	if clientSpan == nil {
		t.Fatal("no client span")
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, req := range got {
		for _, rs := range req.ResourceSpans {
			var svc string
			for _, a := range rs.Resource.GetAttributes() {
				if a.Key == "service.name" {
					svc = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					if !strings.HasPrefix(s.Name, "ringside.plugin.v1.Plugin/") {
						t.Errorf("plugin exported span %q", s.Name)
					}
					if s.Name != "ringside.plugin.v1.Plugin/Deliver" {
						continue
					}
					found = true
					tid, psid := clientSpan.SpanContext().TraceID(), clientSpan.SpanContext().SpanID()
					if !bytes.Equal(s.TraceId, tid[:]) || !bytes.Equal(s.ParentSpanId, psid[:]) {
						t.Errorf("plugin span is not a child of the host's client span")
					}
					if svc != "ringside" {
						t.Errorf("plugin span's service.name = %q", svc)
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("the plugin exported no Deliver span (%d requests)", len(got))
	}
}

func TestExitedPlugin(t *testing.T) {
	c := startTestPlugin(t)
	if _, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "exit"}}}); err == nil {
		t.Fatal("Deliver succeeded on a plugin that exited")
	}
	waitExited(t, c, "Exited is still false")
}

// waitExited waits up to 5 s for c's process to have exited, and fails
// the test with stuck if it has not.
func waitExited(t *testing.T, c *Client, stuck string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !c.Exited() {
		if time.Now().After(deadline) {
			t.Fatal(stuck)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkDeliver(b *testing.B) {
	c := startTestPlugin(b)
	req := &pluginpb.DeliverRequest{DeliveryId: "d", Attempt: 1, Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}}
	ctx := b.Context()
	for b.Loop() {
		if _, err := deliverWire(ctx, c, req); err != nil {
			b.Fatal(err)
		}
	}
}
