package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringside/ringside/plugins/sdk/internal/protocol"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// shutdownTimeout bounds the flush of the tracer provider after the host
// stopped the plugin; go-plugin's host kills a plugin that has not exited 2s
// after asking it to.
const shutdownTimeout = 1500 * time.Millisecond

// Serve serves p over go-plugin gRPC and blocks until the host
// stops the plugin; it then flushes the plugin's spans and returns. It panics
// if C's field tags or types cannot be turned into a schema: that is a
// programming error.
//
// Serve sets up tracing from the environment the host passes
// (OTEL_TRACES_EXPORTER "otlp" or "none", OTEL_EXPORTER_OTLP_*,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) and installs it as the global
// OTel tracer provider, with the W3C trace-context propagator, so spans the
// plugin starts from a Deliver ctx continue the host's trace.
func Serve[C any](info Info, p Plugin[C]) {
	srv, err := newServer(info, p)
	if err != nil {
		panic("sdk.Serve: " + err.Error())
	}
	ctx := context.Background()
	go exitWithParent(os.Getppid(), time.Second)
	tp, shutdown := setupTracing(ctx, info)
	srv.tp = tp
	handler := otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithFilter(pluginpb.TraceFilter),
	)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: protocol.Handshake,
		Plugins:         plugin.PluginSet{pluginpb.PluginName: &pluginpb.GRPCPlugin{Impl: srv}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			// Stream workers reuse warm goroutines for Deliver calls instead
			// of a new (and growing) goroutine stack per call.
			return grpc.NewServer(append(opts, grpc.StatsHandler(handler), grpc.MaxRecvMsgSize(protocol.MaxMessageBytes),
				grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))))...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Level:      hclogLevel(logLevel()),
			Output:     stderr,
			JSONFormat: true,
		}),
	})
	ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		Logger().Warn("flush traces", "error", err)
	}
}

// server serves the plugin protocol for one Plugin[C].
type server[C any] struct {
	pluginpb.UnimplementedPluginServer
	info   Info
	p      Plugin[C]
	typ    reflect.Type
	fields []field
	schema *pluginpb.SchemaResponse
	// configured is set once Configure succeeded.
	configured atomic.Bool
	// tp makes the Deliver spans of DeliverStream calls; nil is the
	// global provider.
	tp      trace.TracerProvider
	workers *workerPool
}

func (s *server[C]) tracer() trace.Tracer {
	tp := s.tp
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

func newServer[C any](info Info, p Plugin[C]) (*server[C], error) {
	if p == nil {
		return nil, errors.New("nil plugin")
	}
	typ := reflect.TypeFor[C]()
	fields, err := schemaOf(typ)
	if err != nil {
		return nil, err
	}
	s := &server[C]{info: info, p: p, typ: typ, fields: fields, schema: &pluginpb.SchemaResponse{}, workers: newWorkerPool()}
	for _, f := range fields {
		s.schema.Attributes = append(s.schema.Attributes, f.attr)
	}
	return s, nil
}

func (s *server[C]) Info(context.Context, *pluginpb.InfoRequest) (*pluginpb.InfoResponse, error) {
	return &pluginpb.InfoResponse{Name: s.info.Name, Version: s.info.Version, DeviceKind: s.info.DeviceKind,
		MaxPayloadBytes: int32(s.info.MaxPayloadBytes), DeliverStream: true,
		MaxMessageBytes: protocol.MaxMessageBytes, DeliverProgress: true}, nil
}

func (s *server[C]) Schema(context.Context, *pluginpb.SchemaRequest) (*pluginpb.SchemaResponse, error) {
	return s.schema, nil
}

func (s *server[C]) Configure(ctx context.Context, req *pluginpb.ConfigureRequest) (resp *pluginpb.ConfigureResponse, err error) {
	v, diags := decodeConfig(s.typ, s.fields, req.GetConfigJson())
	if len(diags) > 0 {
		return &pluginpb.ConfigureResponse{Errors: attributeErrors(diags)}, nil
	}
	defer func() {
		if r := recover(); r != nil {
			Logger().Error("plugin panic in Configure", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = &pluginpb.ConfigureResponse{Errors: []*pluginpb.AttributeError{{Message: fmt.Sprintf("plugin panic: %v", r)}}}, nil
		}
	}()
	if req.GetTemplatesKnown() {
		ctx = ContextWithBlock(ctx, Block{Templates: req.GetTemplates(), PayloadKeys: req.GetPayloadKeys(), CheckOnly: req.GetCheckOnly()})
	}
	diags = s.p.Configure(ctx, v.Interface().(C))
	if !diags.HasError() {
		s.configured.Store(true)
	}
	return &pluginpb.ConfigureResponse{Errors: attributeErrors(diags)}, nil
}

func (s *server[C]) Deliver(ctx context.Context, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	return s.deliver(ctx, req, nil)
}

// deliver is Deliver; progress, when set, gets each device's outcome (by
// its index in req.Devices) as soon as it is known, when there are several.
func (s *server[C]) deliver(ctx context.Context, req *pluginpb.DeliverRequest, progress func(int, *pluginpb.Outcome)) (*pluginpb.DeliverResponse, error) {
	if !s.configured.Load() {
		return nil, status.Error(codes.FailedPrecondition, "deliver before a successful configure")
	}
	d := deliveryFromPB(req)
	// The host's call usually ends at the delivery's deadline already.
	if dl, ok := ctx.Deadline(); !d.Deadline.IsZero() && (!ok || d.Deadline.Before(dl)) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Deadline)
		defer cancel()
	}
	devs := req.GetDevices()
	if len(devs) <= 1 {
		var dev Device
		if len(devs) == 1 {
			dev = deviceFromPB(devs[0])
		}
		return &pluginpb.DeliverResponse{Outcomes: []*pluginpb.Outcome{s.deliverOne(ctx, d, dev)}}, nil
	}
	outs := make([]*pluginpb.Outcome, len(devs))
	var wg sync.WaitGroup
	for i, pd := range devs {
		wg.Go(func() {
			outs[i] = s.deliverOne(ctx, d, deviceFromPB(pd))
			if progress != nil {
				progress(i, outs[i])
			}
		})
	}
	wg.Wait()
	return &pluginpb.DeliverResponse{Outcomes: outs}, nil
}

// deliverOne makes one call of the plugin's Deliver and maps its result to an
// outcome. A panic becomes a permanent outcome; a failure once ctx is done is
// a retry ("deadline exceeded"), whatever the plugin made of it.
func (s *server[C]) deliverOne(ctx context.Context, d *Delivery, dev Device) (out *pluginpb.Outcome) {
	if err := ctx.Err(); err != nil {
		return ctxOutcome(err)
	}
	defer func() {
		if r := recover(); r != nil {
			Logger().Error("plugin panic in Deliver", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			out = &pluginpb.Outcome{Kind: pluginpb.Outcome_KIND_PERMANENT, Reason: reasonText(fmt.Sprintf("plugin panic: %v", r))}
		}
	}()
	// Each call gets its own copy, so a plugin that changes its Delivery
	// cannot affect the other devices' calls.
	dc := *d
	id, err := s.p.Deliver(ctx, &dc, dev)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return ctxOutcome(cerr)
		}
	}
	return outcome(id, err)
}

// ctxOutcome is the outcome of a delivery whose ctx ended first.
func ctxOutcome(err error) *pluginpb.Outcome {
	reason := "deadline exceeded"
	if errors.Is(err, context.Canceled) {
		reason = "canceled"
	}
	return &pluginpb.Outcome{Kind: pluginpb.Outcome_KIND_RETRY, Reason: reason}
}

// outcome maps a Deliver result to its protocol outcome.
func outcome(providerID string, err error) *pluginpb.Outcome {
	de, failed := Classify(err)
	if !failed {
		return &pluginpb.Outcome{Kind: pluginpb.Outcome_KIND_DELIVERED, ProviderId: reasonText(providerID)}
	}
	o := &pluginpb.Outcome{Reason: reasonText(err.Error())}
	switch de.Class {
	case ClassPermanent:
		o.Kind = pluginpb.Outcome_KIND_PERMANENT
	case ClassGone:
		o.Kind = pluginpb.Outcome_KIND_GONE
		if !de.At.IsZero() {
			o.GoneAtUnixNano = de.At.UnixNano()
		}
	default:
		o.Kind = pluginpb.Outcome_KIND_RETRY
		if de.After > 0 {
			// Round up: a sub-millisecond Retry-After is not "none".
			o.RetryAfterMs = int64((de.After + time.Millisecond - 1) / time.Millisecond)
		}
	}
	return o
}

// maxReason bounds an outcome's reason and provider id.
const maxReason = 1024

// reasonText is s made fit for an outcome: valid UTF-8 (protobuf refuses
// to encode anything else, which would end the stream and every call on
// it) and at most maxReason bytes.
func reasonText(s string) string {
	if len(s) > maxReason {
		s = s[:maxReason]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

func (s *server[C]) Health(ctx context.Context, _ *pluginpb.HealthRequest) (*pluginpb.HealthResponse, error) {
	if !s.configured.Load() {
		return &pluginpb.HealthResponse{Message: "not configured"}, nil
	}
	if hc, ok := s.p.(HealthChecker); ok {
		if err := hc.Health(ctx); err != nil {
			return &pluginpb.HealthResponse{Message: err.Error()}, nil
		}
	}
	return &pluginpb.HealthResponse{Ready: true}, nil
}

func deliveryFromPB(req *pluginpb.DeliverRequest) *Delivery {
	d := &Delivery{
		ID:          req.GetDeliveryId(),
		Attempt:     int(req.GetAttempt()),
		Route:       req.GetRoute(),
		PayloadJSON: req.GetPayloadJson(),
		Templates:   req.GetTemplates(),
	}
	if c := req.GetCall(); c != nil {
		d.Call = Call{
			SID:           c.GetSid(),
			FromServiceID: c.GetFromServiceId(),
			FromUserID:    c.GetFromUserId(),
			ToServiceID:   c.GetToServiceId(),
			ToUserID:      c.GetToUserId(),
			Type:          c.GetType(),
			Param:         c.GetParam(),
			AppSvrData:    c.GetAppSvrData(),
			Extra:         c.GetExtra(),
		}
	}
	if n := req.GetDeadlineUnixNano(); n > 0 {
		d.Deadline = time.Unix(0, n)
	}
	return d
}

func deviceFromPB(pd *pluginpb.Device) Device {
	dev := Device{Kind: pd.GetKind(), Token: pd.GetToken(), IdempotencyID: pd.GetIdempotencyId()}
	if n := pd.GetUpdatedAtUnixNano(); n > 0 {
		dev.UpdatedAt = time.Unix(0, n)
	}
	return dev
}

// stderr is the plugin process's standard error as it was at start: go-plugin
// replaces os.Stderr while serving, but the host parses log lines from the
// original one.
var stderr = os.Stderr

// exitWithParent ends the plugin process when its parent (the ringside
// that started it) is gone, checking every interval: a host that crashed
// leaves no plugin behind, on systems where the host cannot ask the kernel
// for that.
func exitWithParent(parent int, interval time.Duration) {
	for {
		time.Sleep(interval)
		if os.Getppid() != parent {
			os.Exit(1)
		}
	}
}
