package telemetry

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"

	"github.com/ringside/ringside/plugins/fakes"
)

func TestPluginEnv(t *testing.T) {
	tests := []struct {
		name string
		in   Tracing
		want map[string]string
	}{
		{"none", Tracing{Exporter: "none", Endpoint: "http://x:4318", ServiceName: "rs"}, map[string]string{
			"OTEL_TRACES_EXPORTER": "none", "OTEL_SERVICE_NAME": "rs",
			"OTEL_RESOURCE_ATTRIBUTES":           "ringside.process=plugin,ringside.notifier=ios",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
		}},
		{"stdout exports nothing from plugins", Tracing{Exporter: "stdout", ServiceName: "rs"}, map[string]string{
			"OTEL_TRACES_EXPORTER": "none",
		}},
		{"otlp", Tracing{Exporter: "otlp", Endpoint: "http://collector:4318/", ServiceName: "rs"}, map[string]string{
			"OTEL_TRACES_EXPORTER":               "otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PluginEnv(tc.in, "ios")
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: got %q; want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"OTEL_TRACES_EXPORTER":        "console",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318",
		"OTEL_SERVICE_NAME":           "from-env",
	}
	base := Tracing{Exporter: "otlp", Endpoint: "http://file:4318", ServiceName: "from-file"}
	tests := []struct {
		name     string
		explicit map[string]bool
		want     Tracing
	}{
		{"the file sets everything: it wins", map[string]bool{"traces": true, "endpoint": true, "service_name": true}, base},
		{"the file sets nothing: OTEL_* fill in", map[string]bool{}, Tracing{Exporter: "stdout", Endpoint: "http://env:4318", ServiceName: "from-env"}},
		{"mixed", map[string]bool{"traces": true}, Tracing{Exporter: "otlp", Endpoint: "http://env:4318", ServiceName: "from-env"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FromEnv(base, tc.explicit, func(k string) string { return env[k] })
			if got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

// traceOneSpan starts tracing with cfg, writing to out, ends one span
// named name and shuts tracing down, so that the span is exported.
func traceOneSpan(t *testing.T, cfg Tracing, out io.Writer, name string) {
	t.Helper()
	tr, err := StartTracing(t.Context(), cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(t.Context(), name)
	span.End()
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestStartTracingStdout(t *testing.T) {
	var out bytes.Buffer
	traceOneSpan(t, Tracing{Exporter: "stdout", ServiceName: "rs-test"}, &out, "hello-span")
	if !strings.Contains(out.String(), "hello-span") || !strings.Contains(out.String(), "rs-test") {
		t.Errorf("stdout exporter printed:\n%s", out.String())
	}
	if _, err := StartTracing(context.Background(), Tracing{Exporter: "zipkin"}, &out); err == nil {
		t.Error("unknown exporter accepted")
	}
}

// With "otlp", spans reach an OTLP/HTTP collector at endpoint/v1/traces,
// with the service name and the host's process attribute on their
// resource.
func TestStartTracingOTLP(t *testing.T) {
	collector := fakes.StartOTLP()
	t.Cleanup(collector.Close)
	traceOneSpan(t, Tracing{Exporter: "otlp", Endpoint: collector.URL + "/", ServiceName: "rs-otlp"}, io.Discard, "otlp-span")
	got, ok := collector.Find(func(s fakes.Span) bool { return s.Name == "otlp-span" })
	if !ok {
		t.Fatalf("the collector got no otlp-span; got:\n%s", collector.Dump())
	}
	if got.Resource["service.name"] != "rs-otlp" || got.Resource["ringside.process"] != "host" {
		t.Errorf("resource %v; want service.name rs-otlp and ringside.process host", got.Resource)
	}
	if id := got.Resource["service.instance.id"]; id != InstanceID || !uuidV4.MatchString(id) {
		t.Errorf("service.instance.id %q; want this process's random UUID %s", id, InstanceID)
	}
	if uuid.NewString() == InstanceID {
		t.Error("two random UUIDs are equal")
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
