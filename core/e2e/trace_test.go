package e2e

import (
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/ringside/ringside/plugins/fakes"
)

// One trace per callback, continued inside the plugin process down to its
// outgoing HTTP request.
func TestE2ETracing(t *testing.T) {
	recv, hook, telemetry := tracedPeers(t)
	in := start(t, webhookConfig(hook.URL+"/hook")+telemetry, quickExport)
	in.accept(t, lineSID, "2809")
	req := waitRequests(t, hook, 1)[0]

	var httpSpan fakes.Span
	eventually(t, 15*time.Second, "the plugin's HTTP span and the deliver span exported", func() bool {
		var ok bool
		httpSpan, ok = recv.Find(func(s fakes.Span) bool {
			return s.Resource["ringside.process"] == "plugin" && s.Kind == tracepb.Span_SPAN_KIND_CLIENT && strings.HasPrefix(s.Name, "HTTP POST")
		})
		_, deliver := recv.Find(func(s fakes.Span) bool { return s.Name == "deliver app" })
		return ok && deliver
	}, recv.Dump)
	byID := func(id string) fakes.Span {
		s, ok := recv.Find(func(s fakes.Span) bool { return s.ID() == id })
		if !ok {
			t.Fatalf("no span %s; got:\n%s", id, recv.Dump())
		}
		return s
	}
	// Walk up from the plugin's HTTP client span to the host's server span.
	pluginServer := byID(httpSpan.Parent())
	if pluginServer.Resource["ringside.process"] != "plugin" || pluginServer.Kind != tracepb.Span_SPAN_KIND_SERVER || !strings.Contains(pluginServer.Name, "Deliver") {
		t.Errorf("parent of the plugin's HTTP span: got %s (%v, %v); want the plugin's Deliver server span", pluginServer.Name, pluginServer.Kind, pluginServer.Resource)
	}
	hostClient := byID(pluginServer.Parent())
	if hostClient.Resource["ringside.process"] != "host" || hostClient.Kind != tracepb.Span_SPAN_KIND_CLIENT || !strings.Contains(hostClient.Name, "Deliver") {
		t.Errorf("parent across the gRPC hop: got %s (%v, %v); want the host's Deliver client span", hostClient.Name, hostClient.Kind, hostClient.Resource)
	}
	deliver := byID(hostClient.Parent())
	if deliver.Name != "deliver app" || deliver.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("parent of the gRPC client span: got %s; want deliver app", deliver.Name)
	}
	server := byID(deliver.Parent())
	if server.Kind != tracepb.Span_SPAN_KIND_SERVER || server.Resource["service.name"] != "ringside-e2e" {
		t.Errorf("root: got %s (%v); want the notify_cb server span", server.Name, server.Kind)
	}
	if len(server.ParentSpanId) != 0 {
		t.Errorf("the notify_cb span has a parent: %s", server.Parent())
	}
	for _, s := range []fakes.Span{httpSpan, pluginServer, hostClient, deliver} {
		if s.Trace() != server.Trace() {
			t.Errorf("span %s in trace %s; want %s", s.Name, s.Trace(), server.Trace())
		}
	}
	if _, ok := recv.Find(func(s fakes.Span) bool { return s.Name == "route.match" && s.Parent() == server.ID() }); !ok {
		t.Errorf("no route.match span under the server span; got:\n%s", recv.Dump())
	}
	// The webhook carried the trace onwards.
	if tp := req.Header.Get("Traceparent"); !strings.Contains(tp, server.Trace()) {
		t.Errorf("webhook traceparent %q; want trace %s", tp, server.Trace())
	}
	// The callback's log line joins the trace.
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["msg"] == "callback" && l["trace_id"] == server.Trace()
	}); err != nil {
		t.Errorf("no callback log line with trace_id %s: %v", server.Trace(), err)
	}
	// The device token and cc_param are in no span.
	if strings.Contains(recv.Dump(), lineParam) {
		t.Error("a span carries cc_param")
	}
}
