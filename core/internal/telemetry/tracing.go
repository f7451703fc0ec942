package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is the resolved trace settings of the host.
type Tracing struct {
	// Exporter is "none", "stdout" or "otlp".
	Exporter string
	// Endpoint is the OTLP/HTTP base URL; spans go to {Endpoint}/v1/traces.
	Endpoint string
	// ServiceName is the resource's service.name.
	ServiceName string
}

// Tracer is the host's tracer provider and how to stop it.
type Tracer struct {
	Provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider
}

// Enabled reports whether spans are exported anywhere.
func (t *Tracer) Enabled() bool { return t.sdk != nil }

// Shutdown flushes and stops the provider.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// StartTracing builds the tracer provider for s and installs it, with the
// W3C trace-context propagator, as the global one. stdout receives spans when
// s.Exporter is "stdout".
func StartTracing(ctx context.Context, s Tracing, stdout io.Writer) (*Tracer, error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	var exp sdktrace.SpanExporter
	switch s.Exporter {
	case "", "none":
		tp := noop.NewTracerProvider()
		otel.SetTracerProvider(tp)
		return &Tracer{Provider: tp}, nil
	case "stdout":
		e, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return nil, fmt.Errorf("stdout trace exporter: %w", err)
		}
		exp = e
	case "otlp":
		e, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(TracesURL(s.Endpoint)))
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		exp = e
	default:
		return nil, fmt.Errorf("unknown trace exporter %q", s.Exporter)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", s.ServiceName),
		attribute.String("ringside.process", "host"),
		attribute.String("service.instance.id", InstanceID),
	))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	otel.SetTracerProvider(tp)
	return &Tracer{Provider: tp, sdk: tp}, nil
}

// InstanceID is this process's service.instance.id: a random (version 4)
// UUID drawn at process start, so the spans of two ringside processes (a
// restart, two replicas) stay apart. Each plugin process draws its own.
var InstanceID = uuid.NewString()

// TracesURL is where OTLP/HTTP spans go for the base URL endpoint.
func TracesURL(endpoint string) string {
	return strings.TrimRight(endpoint, "/") + "/v1/traces"
}

// PluginEnv is the environment that gives a plugin process of the notifier
// the host's resolved trace settings. Plugins never print spans to stdout (it
// belongs to go-plugin): with "stdout", plugins export nothing.
func PluginEnv(s Tracing, notifier string) map[string]string {
	env := map[string]string{
		"OTEL_SERVICE_NAME":        s.ServiceName,
		"OTEL_RESOURCE_ATTRIBUTES": "ringside.process=plugin,ringside.notifier=" + notifier,
		"OTEL_TRACES_EXPORTER":     "none",
		"OTEL_METRICS_EXPORTER":    "none",
		"OTEL_LOGS_EXPORTER":       "none",
	}
	if s.Exporter == "otlp" {
		env["OTEL_TRACES_EXPORTER"] = "otlp"
		env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
		env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = TracesURL(s.Endpoint)
	}
	return env
}

// FromEnv fills the settings a config left unset from the standard OTEL_*
// variables: OTEL_TRACES_EXPORTER (otlp, console → stdout, none),
// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME. explicit reports which
// settings the config file set; those win.
func FromEnv(s Tracing, explicit map[string]bool, getenv func(string) string) Tracing {
	if getenv == nil {
		getenv = os.Getenv
	}
	if !explicit["traces"] {
		switch v := getenv("OTEL_TRACES_EXPORTER"); v {
		case "otlp", "none":
			s.Exporter = v
		case "console":
			s.Exporter = "stdout"
		}
	}
	if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" && !explicit["endpoint"] {
		s.Endpoint = v
	}
	if v := getenv("OTEL_SERVICE_NAME"); v != "" && !explicit["service_name"] {
		s.ServiceName = v
	}
	return s
}
