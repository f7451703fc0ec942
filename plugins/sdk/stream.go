package sdk

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ringside/ringside/plugins/sdk/internal/combine"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// maxResultBatch bounds the results sent in one DeliverResultBatch, and
// maxResultBytes their encoded size: far below the 4 MiB a host's gRPC
// client takes by default.
const (
	maxResultBatch = 256
	maxResultBytes = 1 << 20
)

// DeliverStream serves the Deliver calls the host sends on one stream. Each
// call runs on its own goroutine (taken from a pool of warm ones), with a
// context that ends when the host cancels the call, its deadline passes, or
// the stream ends; results go back in batches: whatever has finished when
// the sender is free shares one message.
func (s *server[C]) DeliverStream(st pluginpb.Plugin_DeliverStreamServer) error {
	ctx, cancelAll := context.WithCancel(st.Context())
	defer cancelAll()
	// The worker that finishes a call sends its result itself, with any
	// others finished meanwhile (see combine.Sender): no sender goroutine
	// to wake for each result.
	out := &pluginpb.DeliverResultBatch{}
	results := &combine.Sender[*pluginpb.DeliverResult]{Max: maxResultBatch, MaxBytes: maxResultBytes, Size: resultSize, Send: func(rs []*pluginpb.DeliverResult) error {
		out.Results = rs
		// Send has encoded the message when it returns.
		return st.Send(out)
	}}

	var mu sync.Mutex
	cancels := map[uint64]context.CancelFunc{}
	for {
		batch, err := st.Recv()
		if err != nil {
			// The host closed the stream (io.EOF) or went away: calls still
			// running see their ctx end.
			return nil
		}
		mu.Lock()
		for _, id := range batch.GetCancel() {
			if cancel := cancels[id]; cancel != nil {
				cancel()
			}
		}
		mu.Unlock()
		for _, call := range batch.GetCalls() {
			id := call.GetId()
			var cctx context.Context
			var cancel context.CancelFunc
			if n := call.GetCallDeadlineUnixNano(); n > 0 {
				cctx, cancel = context.WithDeadline(ctx, time.Unix(0, n))
			} else {
				cctx, cancel = context.WithCancel(ctx)
			}
			mu.Lock()
			cancels[id] = cancel
			mu.Unlock()
			s.workers.run(func() {
				var progress func(int, *pluginpb.Outcome)
				if call.GetProgress() {
					// Each device's outcome goes back as it is known, so a
					// call that then fails as a whole (this process dies) is
					// not sent again to the devices that have one.
					progress = func(i int, o *pluginpb.Outcome) {
						_ = results.Add(&pluginpb.DeliverResult{Id: id, Progress: []*pluginpb.DeviceOutcome{{Index: int32(i), Outcome: o}}})
					}
				}
				r := s.streamCall(cctx, call, progress)
				mu.Lock()
				delete(cancels, id)
				mu.Unlock()
				cancel()
				if err := results.Add(r); err != nil {
					// The stream is gone; so is the host's interest.
					cancelAll()
				}
			})
		}
	}
}

// streamCall runs one call of DeliverStream as Deliver would, inside a
// server span continuing the host's trace when the call carries one.
func (s *server[C]) streamCall(ctx context.Context, call *pluginpb.DeliverCall, progress func(int, *pluginpb.Outcome)) *pluginpb.DeliverResult {
	var span trace.Span
	if tc := call.GetTraceContext(); len(tc) > 0 {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(tc))
		ctx, span = s.tracer().Start(ctx, pluginpb.DeliverSpanName, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(pluginpb.DeliverSpanAttributes...))
	}
	resp, err := s.deliver(ctx, call.GetRequest(), progress)
	r := &pluginpb.DeliverResult{Id: call.GetId(), Response: resp}
	if err != nil {
		st := status.Convert(err)
		r.Response, r.Code, r.Message = nil, int32(st.Code()), reasonText(st.Message())
	}
	if span != nil {
		pluginpb.EndDeliverSpan(span, codes.Code(r.Code), r.Message)
	}
	return r
}

// resultSize is the encoded size of r in a DeliverResultBatch.
func resultSize(r *pluginpb.DeliverResult) int { return proto.Size(r) + 8 }

// workerPool runs functions on goroutines that wait for more work once
// done, so a call does not start on a fresh stack that grows (and is
// copied) as it goes down the provider's client. It never makes a function
// wait: with no idle worker, a new one starts. Idle workers exit after
// workerIdle.
type workerPool struct{ work chan func() }

const workerIdle = 10 * time.Second

func newWorkerPool() *workerPool { return &workerPool{work: make(chan func())} }

func (p *workerPool) run(f func()) {
	select {
	case p.work <- f:
	default:
		go p.worker(f)
	}
}

func (p *workerPool) worker(f func()) {
	f()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case f = <-p.work:
			f()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		}
	}
}
