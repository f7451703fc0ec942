package sdk_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// HTTPClient's requests are client spans of the caller's trace, carried in
// traceparent, that name the method, record the status, and hold neither
// the path nor the query (where device tokens go).
func TestTransport(t *testing.T) {
	rec := sdktest.RecordSpans(t)

	var gotTraceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent = r.Header.Get("traceparent")
		if strings.Contains(r.URL.Path, "gone") {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	ctx, parent := otel.Tracer("test").Start(t.Context(), "deliver")
	client := sdk.HTTPClient()
	const token = "d3v1c3t0k3n"
	for _, path := range []string{"/3/device/" + token + "?secret=" + token, "/3/device/gone-" + token} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if req.Header.Get("traceparent") != "" {
			t.Error("the caller's request was modified")
		}
	}
	// A transport error: nothing listens there.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:1/3/device/"+token, nil)
	if _, err := client.Do(req); err == nil {
		t.Fatal("want a transport error")
	}
	parent.End()

	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("got %d spans; want 4", len(spans))
	}
	if want := parent.SpanContext().TraceID().String(); !strings.Contains(gotTraceparent, want) {
		t.Errorf("traceparent %q lacks trace id %s", gotTraceparent, want)
	}
	for i, s := range spans[:3] {
		if s.Name() != map[int]string{0: "HTTP POST", 1: "HTTP POST", 2: "HTTP GET"}[i] || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %d: %s %v", i, s.Name(), s.SpanKind())
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d is not a child of the caller's span", i)
		}
		attrs := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			attrs[a.Key] = a.Value
			if strings.Contains(a.Value.String(), token) {
				t.Errorf("span %d attribute %s holds the token: %s", i, a.Key, a.Value.String())
			}
		}
		if strings.Contains(s.Status().Description, token) {
			t.Errorf("span %d status holds the token: %s", i, s.Status().Description)
		}
		for _, e := range s.Events() {
			for _, a := range e.Attributes {
				if strings.Contains(a.Value.String(), token) {
					t.Errorf("span %d event holds the token", i)
				}
			}
		}
		if attrs["server.address"].AsString() != "127.0.0.1" || attrs["server.port"].AsInt64() == 0 || attrs["http.request.method"].AsString() == "" {
			t.Errorf("span %d attributes %v", i, attrs)
		}
		switch i {
		case 0:
			if attrs["http.response.status_code"].AsInt64() != 200 || s.Status().Code == codes.Error {
				t.Errorf("span 0: %v %v", attrs, s.Status())
			}
		case 1:
			if attrs["http.response.status_code"].AsInt64() != 410 || s.Status().Code != codes.Error {
				t.Errorf("span 1: %v %v", attrs, s.Status())
			}
		case 2:
			if s.Status().Code != codes.Error || attrs["error.type"].AsString() == "" {
				t.Errorf("span 2: %v %v", attrs, s.Status())
			}
		}
	}
}
