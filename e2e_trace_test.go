package main

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver (protobuf encoding).
type otlpReceiver struct {
	mu    sync.Mutex
	spans []span
}

// span is a received span with the attributes of its resource.
type span struct {
	*tracepb.Span
	resource map[string]string
}

func (s span) id() string     { return hex.EncodeToString(s.SpanId) }
func (s span) parent() string { return hex.EncodeToString(s.ParentSpanId) }
func (s span) trace() string  { return hex.EncodeToString(s.TraceId) }

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	var msg collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	r.mu.Lock()
	for _, rs := range msg.ResourceSpans {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.Key] = kv.Value.GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, span{Span: s, resource: res})
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *otlpReceiver) find(pred func(span) bool) (span, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if pred(s) {
			return s, true
		}
	}
	return span{}, false
}

func (r *otlpReceiver) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, s := range r.spans {
		fmt.Fprintf(&b, "%s %s trace=%s id=%s parent=%s %v\n", s.resource["ringside.process"], s.Name, s.trace(), s.id(), s.parent(), s.Kind)
	}
	return b.String()
}

// One trace per callback, continued inside the plugin process down to its
// outgoing HTTP request.
func TestE2ETracing(t *testing.T) {
	recv := &otlpReceiver{}
	otlpURL := newLoopbackServer(t, recv)
	hook := newHookServer(t, http.StatusOK)
	config := webhookConfig(hook.URL+"/hook") + fmt.Sprintf(`
telemetry {
  traces       = "otlp"
  endpoint     = %q
  service_name = "ringside-e2e"
}
`, otlpURL)
	// Export quickly in both processes: OTEL_* reach plugins.
	in := startRingside(t, config, "OTEL_BSP_SCHEDULE_DELAY=100")
	if code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil); code != 200 {
		t.Fatalf("notify_cb: %d %s", code, body)
	}
	req := hook.next(t)

	var httpSpan span
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ok bool
		httpSpan, ok = recv.find(func(s span) bool {
			return s.resource["ringside.process"] == "plugin" && s.Kind == tracepb.Span_SPAN_KIND_CLIENT && strings.HasPrefix(s.Name, "HTTP POST")
		})
		if ok {
			if _, ok := recv.find(func(s span) bool { return s.Name == "deliver app" }); ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans missing after 15s; got:\n%s", recv.dump())
		}
		time.Sleep(50 * time.Millisecond)
	}
	byID := func(id string) span {
		s, ok := recv.find(func(s span) bool { return s.id() == id })
		if !ok {
			t.Fatalf("no span %s; got:\n%s", id, recv.dump())
		}
		return s
	}
	// Walk up from the plugin's HTTP client span to the host's server span.
	pluginServer := byID(httpSpan.parent())
	if pluginServer.resource["ringside.process"] != "plugin" || pluginServer.Kind != tracepb.Span_SPAN_KIND_SERVER || !strings.Contains(pluginServer.Name, "Deliver") {
		t.Errorf("parent of the plugin's HTTP span: got %s (%v, %v); want the plugin's Deliver server span", pluginServer.Name, pluginServer.Kind, pluginServer.resource)
	}
	hostClient := byID(pluginServer.parent())
	if hostClient.resource["ringside.process"] != "host" || hostClient.Kind != tracepb.Span_SPAN_KIND_CLIENT || !strings.Contains(hostClient.Name, "Deliver") {
		t.Errorf("parent across the gRPC hop: got %s (%v, %v); want the host's Deliver client span", hostClient.Name, hostClient.Kind, hostClient.resource)
	}
	deliver := byID(hostClient.parent())
	if deliver.Name != "deliver app" || deliver.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("parent of the gRPC client span: got %s; want deliver app", deliver.Name)
	}
	server := byID(deliver.parent())
	if server.Kind != tracepb.Span_SPAN_KIND_SERVER || server.resource["service.name"] != "ringside-e2e" {
		t.Errorf("root: got %s (%v); want the notify_cb server span", server.Name, server.Kind)
	}
	if len(server.ParentSpanId) != 0 {
		t.Errorf("the notify_cb span has a parent: %s", server.parent())
	}
	for _, s := range []span{httpSpan, pluginServer, hostClient, deliver} {
		if s.trace() != server.trace() {
			t.Errorf("span %s in trace %s; want %s", s.Name, s.trace(), server.trace())
		}
	}
	if _, ok := recv.find(func(s span) bool { return s.Name == "route.match" && s.parent() == server.id() }); !ok {
		t.Errorf("no route.match span under the server span; got:\n%s", recv.dump())
	}
	// The webhook carried the trace onwards.
	if tp := req.Header.Get("Traceparent"); !strings.Contains(tp, server.trace()) {
		t.Errorf("webhook traceparent %q; want trace %s", tp, server.trace())
	}
	// The callback's log line joins the trace.
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "callback" && l["trace_id"] == server.trace()
	}); err != nil {
		t.Errorf("no callback log line with trace_id %s: %v", server.trace(), err)
	}
	// The device token and cc_param are in no span.
	if strings.Contains(recv.dump(), lineParam) {
		t.Error("a span carries cc_param")
	}
}
