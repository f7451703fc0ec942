package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
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

// Each process, ringside and each plugin process, has its own
// service.instance.id; health checks (the admin /healthz and /readyz, the
// plugins' Health calls) are not traced; a plugin's start (Info, Schema,
// Configure) is one trace under a "plugin.start NOTIFIER" root, the plugin's
// server spans in it too, and no span is left without its parent.
func TestE2ETraceProcesses(t *testing.T) {
	recv, hook, telemetry := tracedPeers(t)
	secret := fmt.Sprintf("secret = %q", hookSecret)
	conf := func(notifiers ...string) string {
		c := testServer + "\n" + telemetry
		for _, n := range notifiers {
			c += webhookNotifier(n, hook.URL+"/"+n, secret)
		}
		return c + routeTo("all", "", notifiers...)
	}
	in := start(t, conf("app"), quickExport)
	// desk starts on a reload, when the host's tracing runs for sure.
	if err := os.WriteFile(in.config, []byte(conf("app", "desk")), 0o600); err != nil {
		t.Fatal(err)
	}
	in.signal(t, syscall.SIGHUP)
	if _, err := in.waitLog(20*time.Second, func(l map[string]any) bool { return l["msg"] == "config reloaded" }); err != nil {
		t.Fatalf("no reload: %v\n%s", err, in.tail(20))
	}
	for range 3 {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, _, body := do(t, "GET", in.adminURL+path, nil); code != 200 {
				t.Fatalf("%s: %d %s", path, code, body)
			}
		}
	}
	in.accept(t, lineSID, "2809")
	waitRequests(t, hook, 2)

	rpcs := []string{"Info", "Schema", "Configure"}
	// startSpans are the spans of notifier's start trace, once its root and
	// both sides of its three calls are in.
	startSpans := func(notifier string) ([]fakes.Span, bool) {
		root, ok := recv.Find(func(s fakes.Span) bool { return s.Name == "plugin.start "+notifier })
		if !ok {
			return nil, false
		}
		var in []fakes.Span
		for _, s := range recv.Spans() {
			if s.Trace() == root.Trace() {
				in = append(in, s)
			}
		}
		return in, len(in) == 1+2*len(rpcs)
	}
	orphans := func() []string {
		spans := recv.Spans()
		ids := map[string]bool{}
		for _, s := range spans {
			ids[s.ID()] = true
		}
		var out []string
		for _, s := range spans {
			if s.Parent() != "" && !ids[s.Parent()] {
				out = append(out, s.Name)
			}
		}
		return out
	}
	eventually(t, 15*time.Second, "desk's start, both deliveries and every parent exported", func() bool {
		if _, ok := startSpans("desk"); !ok {
			return false
		}
		for _, n := range []string{"app", "desk"} {
			if _, ok := recv.Find(func(s fakes.Span) bool { return s.Name == "deliver "+n }); !ok {
				return false
			}
		}
		return len(orphans()) == 0
	}, recv.Dump)
	// The first start is checked too when serve traced it (its tracing
	// must then run before the plugins start).
	notifiers := []string{"desk"}
	untraced := map[string]bool{}
	if _, ok := recv.Find(func(s fakes.Span) bool { return s.Name == "plugin.start app" }); ok {
		notifiers = append(notifiers, "app")
	} else {
		untraced["app"] = true
		t.Log("serve did not trace the first start of app's plugin: only desk's start, on reload, is checked")
	}
	// Give health checks (the supervisor's, /readyz's) time to be exported
	// if they were traced.
	time.Sleep(500 * time.Millisecond)
	spans := recv.Spans()

	// One instance id per process, each process with its own.
	processOf := map[string]string{} // instance id → process
	for _, s := range spans {
		who := s.Resource["ringside.process"]
		if who == "plugin" {
			who += " " + s.Resource["ringside.notifier"]
		}
		id := s.Resource["service.instance.id"]
		if id == "" {
			t.Errorf("span %s of %s has no service.instance.id", s.Name, who)
			continue
		}
		if prev, ok := processOf[id]; ok && prev != who {
			t.Errorf("service.instance.id %s is both %s's and %s's", id, prev, who)
		}
		processOf[id] = who
	}
	var processes []string
	for _, who := range processOf {
		processes = append(processes, who)
	}
	slices.Sort(processes)
	if want := []string{"host", "plugin app", "plugin desk"}; !slices.Equal(processes, want) {
		t.Errorf("processes by instance id: got %v; want %v\n%s", processes, want, recv.Dump())
	}

	// No health check is traced; the only roots are the callback's server
	// span and the plugin starts.
	for _, s := range spans {
		if strings.Contains(s.Name, "Health") || strings.Contains(s.Name, "healthz") || strings.Contains(s.Name, "readyz") {
			t.Errorf("a health check is traced: %s", s.Name)
		}
		firstStart := untraced[s.Resource["ringside.notifier"]] && !strings.HasSuffix(s.Name, "/Deliver")
		if s.Parent() == "" && !strings.HasPrefix(s.Name, "plugin.start ") && !strings.HasPrefix(s.Name, "plugin.reuse ") && s.Name != "GET /notify_cb" && !firstStart {
			t.Errorf("span %s (%s) has no parent", s.Name, s.Resource["ringside.process"])
		}
	}
	if o := orphans(); len(o) > 0 {
		t.Errorf("spans whose parent was never exported: %v\n%s", o, recv.Dump())
	}

	// Each start is one trace: the root, and both sides of each call, the
	// host's client span the parent of the plugin's server span.
	for _, n := range notifiers {
		got, _ := startSpans(n)
		byID := map[string]fakes.Span{}
		for _, s := range got {
			byID[s.ID()] = s
		}
		for _, rpc := range rpcs {
			server, ok := find(got, func(s fakes.Span) bool {
				return s.Kind == tracepb.Span_SPAN_KIND_SERVER && strings.HasSuffix(s.Name, "/"+rpc)
			})
			if !ok {
				t.Errorf("start of %s: no %s server span", n, rpc)
				continue
			}
			client := byID[server.Parent()]
			if server.Resource["ringside.notifier"] != n || client.Kind != tracepb.Span_SPAN_KIND_CLIENT || client.Resource["ringside.process"] != "host" {
				t.Errorf("start of %s: %s server span's parent: got %s (%v); want the host's client span", n, rpc, client.Name, client.Kind)
			}
			if root := byID[client.Parent()]; root.Name != "plugin.start "+n {
				t.Errorf("start of %s: %s client span's parent: got %q; want plugin.start %s", n, rpc, root.Name, n)
			}
		}
	}
}

func find(spans []fakes.Span, ok func(fakes.Span) bool) (fakes.Span, bool) {
	for _, s := range spans {
		if ok(s) {
			return s, true
		}
	}
	return fakes.Span{}, false
}
