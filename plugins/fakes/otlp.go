package fakes

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// OTLP is an OTLP/HTTP trace receiver: POST /v1/traces with an
// ExportTraceServiceRequest, in protobuf or JSON, gzip-compressed or not.
// It records every span with the attributes of its resource. Once
// started, its URL is an exporter's endpoint.
type OTLP struct {
	server

	mu    sync.Mutex
	spans []Span
}

// Span is a received span and the string attributes of its resource.
type Span struct {
	*tracepb.Span
	Resource map[string]string
}

// ID is the span's id in hex.
func (s Span) ID() string { return hex.EncodeToString(s.SpanId) }

// Parent is the parent span's id in hex ("" for a root span).
func (s Span) Parent() string { return hex.EncodeToString(s.ParentSpanId) }

// Trace is the trace id in hex.
func (s Span) Trace() string { return hex.EncodeToString(s.TraceId) }

// NewOTLP returns a trace receiver, for serving it as a handler (StartOTLP
// runs it on loopback).
func NewOTLP() *OTLP { return &OTLP{} }

// StartOTLP starts a trace receiver on 127.0.0.1 (plain HTTP). Close stops
// it.
func StartOTLP() *OTLP { return startFake(NewOTLP(), false, false) }

// Spans returns the spans received so far.
func (f *OTLP) Spans() []Span {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Span(nil), f.spans...)
}

// Find returns the first span received that ok accepts.
func (f *OTLP) Find(ok func(Span) bool) (Span, bool) {
	for _, s := range f.Spans() {
		if ok(s) {
			return s, true
		}
	}
	return Span{}, false
}

// Dump lists the spans received, one a line, for a failure message.
func (f *OTLP) Dump() string {
	var b strings.Builder
	for _, s := range f.Spans() {
		keys := make([]string, 0, len(s.Resource))
		for k := range s.Resource {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var res []string
		for _, k := range keys {
			res = append(res, k+"="+s.Resource[k])
		}
		fmt.Fprintf(&b, "%s %v trace=%s id=%s parent=%s [%s]\n", s.Name, s.Kind, s.Trace(), s.ID(), s.Parent(), strings.Join(res, " "))
	}
	return b.String()
}

// ServeHTTP takes an export as an OTLP/HTTP collector does.
func (f *OTLP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg collectortrace.ExportTraceServiceRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-protobuf":
		err = proto.Unmarshal(b, &msg)
	case "application/json":
		err = protojson.Unmarshal(b, &msg)
	default:
		http.Error(w, "unsupported content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	for _, rs := range msg.ResourceSpans {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.Key] = kv.Value.GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				f.spans = append(f.spans, Span{Span: s, Resource: res})
			}
		}
	}
	f.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	if ct == "application/json" {
		out, _ = protojson.Marshal(&collectortrace.ExportTraceServiceResponse{})
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(out)
}
