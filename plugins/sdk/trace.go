package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName is the instrumentation scope of the SDK's spans.
const tracerName = "github.com/ringside/ringside/plugins/sdk"

// setupTracing builds the plugin process's tracer provider from the
// environment the host passes and installs it globally with the W3C
// trace-context propagator. OTEL_TRACES_EXPORTER "otlp" exports over
// OTLP/HTTP (the exporter reads OTEL_EXPORTER_OTLP_*); "none", unset or
// anything else (logged) gives a no-op provider, which still carries the
// host's span context through ctx. shutdown flushes.
func setupTracing(ctx context.Context, info Info) (trace.TracerProvider, func(context.Context) error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	noopTP := func() (trace.TracerProvider, func(context.Context) error) {
		tp := noop.NewTracerProvider()
		otel.SetTracerProvider(tp)
		return tp, func(context.Context) error { return nil }
	}
	switch exp := os.Getenv("OTEL_TRACES_EXPORTER"); exp {
	case "otlp":
	case "", "none":
		return noopTP()
	default:
		Logger().Warn("unsupported OTEL_TRACES_EXPORTER; plugin spans are not exported", "exporter", exp)
		return noopTP()
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		Logger().Warn("otlp trace exporter; plugin spans are not exported", "error", err)
		return noopTP()
	}
	name := info.Name
	if name == "" {
		name = "plugin"
	}
	// service.instance.id is a random UUID drawn at the process's start, so
	// its spans stay apart from the host's and from those of the other
	// plugin processes.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "ringside-plugin-"+name), attribute.String("service.instance.id", uuid.NewString())),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		// A partial resource (a malformed OTEL_RESOURCE_ATTRIBUTES) is
		// still usable.
		Logger().Warn("trace resource", "error", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	otel.SetTracerProvider(tp)
	return tp, tp.Shutdown
}

// Transport returns an http.RoundTripper that sends requests through base
// (nil: a clone of http.DefaultTransport) inside an OTel CLIENT span named
// "HTTP <method>", child of the request's ctx, and injects the W3C trace
// context into the request headers. The span carries http.request.method,
// server.address, server.port and http.response.status_code, and an error
// status for a transport error or a status of 400 or more; never the URL's
// path or query, which may hold a device token or a credential. The span
// ends when the response headers arrive. Spans go to the global tracer
// provider, which Serve sets up. A request whose ctx carries no sampled
// span (tracing off, or a callback the host did not sample) is sent as it
// is, with no span: the plugin only continues the host's traces.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &transport{base: base}
}

// HTTPClient returns an *http.Client whose requests are traced by Transport.
// Set a per-request deadline with the request's ctx.
func HTTPClient() *http.Client {
	return &http.Client{Transport: Transport(nil)}
}

// NoRedirectClient returns an *http.Client whose requests are traced by
// Transport over base (nil: a clone of the default transport) and that
// never follows a redirect: a 3xx answer is returned as it is, for the
// plugin to classify, since a push endpoint or webhook that redirects is
// misconfigured and the redirect may lead off the configured host.
func NoRedirectClient(base http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: Transport(base),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type transport struct {
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A request outside any trace (tracing off, or a callback the host did
	// not sample) goes as it is: no span, no clone of the request.
	if !trace.SpanContextFromContext(req.Context()).IsSampled() {
		return t.base.RoundTrip(req)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	attrs := []attribute.KeyValue{attribute.String("http.request.method", method)}
	if req.URL != nil {
		host, port := req.URL.Hostname(), req.URL.Port()
		if port == "" {
			switch req.URL.Scheme {
			case "https":
				port = "443"
			case "http":
				port = "80"
			}
		}
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	}
	ctx, span := otel.GetTracerProvider().Tracer(tracerName).Start(req.Context(), "HTTP "+method,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrs...),
	)
	defer span.End()

	// A RoundTripper must not modify the caller's request: clone it to
	// carry the span's ctx and the trace headers.
	req = req.Clone(ctx)
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))

	resp, err := t.base.RoundTrip(req)
	if err != nil {
		span.SetAttributes(attribute.String("error.type", errorType(err)))
		span.SetStatus(codes.Error, redact(err, req.URL))
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}

// redact describes a transport error without the request URL's path or
// query: a *url.Error quotes the whole URL, and other errors might too.
func redact(err error, u *url.URL) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	msg := err.Error()
	if u != nil {
		for _, s := range []string{u.RawQuery, u.EscapedPath(), u.Path} {
			if len(s) > 1 {
				msg = strings.ReplaceAll(msg, s, "/…")
			}
		}
	}
	return msg
}

// errorType is the error.type attribute of a transport error.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", err), "*")
}
