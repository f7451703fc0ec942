// Package deliverstream is the host side of the plugin protocol's
// DeliverStream: it makes Deliver calls over one long-lived gRPC stream per
// plugin process instead of one unary RPC each. Calls made while the stream
// is busy sending share one message, and so do the results the plugin sends
// back. A call means what the unary Deliver means: the ctx's deadline and
// cancellation reach the plugin, its trace continues there (a client span
// per call, carried in the message), and a call that fails as a whole
// returns the gRPC status the unary call would have.
//
// ringside's plugin host uses it for every plugin whose Info says it serves
// DeliverStream; sdktest uses it so plugins are tested the way they run.
package deliverstream

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/internal/combine"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// maxCallBatch bounds the calls sent in one DeliverBatch.
const maxCallBatch = 256

// ErrClosed is returned by Deliver after Close.
var ErrClosed = status.Error(codes.Unavailable, "deliver stream closed")

// Client makes Deliver calls on DeliverStream. Its methods may be called
// concurrently. A stream that breaks (the plugin process died) fails the
// calls waiting on it with the stream's error; the next call opens a new
// stream.
type Client struct {
	rpc    pluginpb.PluginClient
	tracer trace.Tracer
	nextID atomic.Uint64

	mu     sync.Mutex
	cur    *stream
	closed bool
}

// New returns a Client calling rpc. Calls whose ctx carries a valid span
// context get a client span from tp (nil: no spans, the trace context is
// still carried).
func New(rpc pluginpb.PluginClient, tp trace.TracerProvider) *Client {
	c := &Client{rpc: rpc}
	if tp != nil {
		c.tracer = tp.Tracer("github.com/ringside/ringside/plugins/sdk/deliverstream")
	}
	return c
}

// stream is one open DeliverStream and the calls waiting on it.
type stream struct {
	out    *combine.Sender[outgoing]
	err    error // why it broke; set when waiting is nil
	cancel context.CancelFunc
	// onFail runs once when the stream breaks (the client forgets it).
	onFail func()

	mu      sync.Mutex
	waiting map[uint64]*call
}

// answered is a call and its result.
type answered struct {
	cl *call
	r  *pluginpb.DeliverResult
}

// outgoing is a call or the cancellation of one.
type outgoing struct {
	call   *pluginpb.DeliverCall
	cancel uint64
}

// call is a call waiting for its answer: done is called once, by whoever
// takes the call out of waiting (its result, its ctx ending, the stream
// breaking); stop stops the watch on its ctx.
type call struct {
	msg  *pluginpb.DeliverCall
	done func(*pluginpb.DeliverResult, error)
	stop func() bool
}

// Deliver makes one Deliver call on the stream and waits for its answer.
func (c *Client) Deliver(ctx context.Context, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	return Await(func(done func(*pluginpb.DeliverResponse, error)) { c.DeliverAsync(ctx, req, done) })
}

// Await starts an asynchronous Deliver with start and waits for what its
// done gets.
func Await(start func(done func(*pluginpb.DeliverResponse, error))) (*pluginpb.DeliverResponse, error) {
	type answer struct {
		resp *pluginpb.DeliverResponse
		err  error
	}
	ch := make(chan answer, 1)
	start(func(resp *pluginpb.DeliverResponse, err error) { ch <- answer{resp, err} })
	a := <-ch
	return a.resp, a.err
}

// DeliverAsync makes the call of Deliver without a goroutine waiting for
// it: done gets what Deliver would return, once, on the goroutine that
// has the answer (the stream's receiver, or the ctx's watcher) — never on
// the caller's, so the caller may hold locks done takes. done must not
// block: the stream's other results wait for it.
func (c *Client) DeliverAsync(ctx context.Context, req *pluginpb.DeliverRequest, done func(*pluginpb.DeliverResponse, error)) {
	st, err := c.stream()
	if err != nil {
		go done(nil, err)
		return
	}
	ctx, msg, end := c.newCall(ctx, req)
	cl := &call{msg: msg, done: func(r *pluginpb.DeliverResult, err error) {
		var resp *pluginpb.DeliverResponse
		if err == nil {
			resp, err = result(r)
		}
		end(err)
		done(resp, err)
	}}
	if err := st.add(ctx, cl); err != nil {
		go cl.done(nil, err)
		return
	}
	// The caller sends its call itself, with any queued meanwhile, unless
	// another caller is sending: then that one takes it along.
	st.send(outgoing{call: msg})
}

// newCall makes the message of a call, with the client span of a traced
// ctx; end ends the span with the call's error.
func (c *Client) newCall(ctx context.Context, req *pluginpb.DeliverRequest) (context.Context, *pluginpb.DeliverCall, func(error)) {
	msg := &pluginpb.DeliverCall{Id: c.nextID.Add(1), Request: req}
	if dl, ok := ctx.Deadline(); ok {
		msg.CallDeadlineUnixNano = dl.UnixNano()
	}
	end := func(error) {}
	if trace.SpanContextFromContext(ctx).IsValid() {
		if c.tracer != nil {
			var span trace.Span
			ctx, span = c.tracer.Start(ctx, sdk.DeliverSpanName, trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(sdk.DeliverSpanAttributes...))
			end = func(err error) {
				st := status.Convert(err)
				sdk.EndDeliverSpan(span, st.Code(), st.Message())
			}
		}
		msg.TraceContext = map[string]string{}
		propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(msg.TraceContext))
	}
	return ctx, msg, end
}

func result(r *pluginpb.DeliverResult) (*pluginpb.DeliverResponse, error) {
	if r.GetCode() != int32(codes.OK) {
		return nil, status.Error(codes.Code(r.GetCode()), r.GetMessage())
	}
	if r.GetResponse() == nil {
		return nil, status.Error(codes.Internal, "deliver stream: a result with neither a response nor an error")
	}
	return r.GetResponse(), nil
}

// Close ends the stream; calls waiting on it fail with ErrClosed, and so do
// later ones.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	st := c.cur
	c.cur = nil
	c.mu.Unlock()
	if st != nil {
		st.fail(ErrClosed)
	}
}

// stream returns the open stream, opening one if there is none.
func (c *Client) stream() (*stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.cur != nil {
		return c.cur, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	gs, err := c.rpc.DeliverStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	st := &stream{
		cancel:  cancel,
		waiting: map[uint64]*call{},
	}
	st.onFail = func() {
		c.mu.Lock()
		if c.cur == st {
			c.cur = nil
		}
		c.mu.Unlock()
	}
	batch := &pluginpb.DeliverBatch{}
	st.out = &combine.Sender[outgoing]{Max: maxCallBatch, Send: func(items []outgoing) error {
		batch.Calls, batch.Cancel = batch.Calls[:0], batch.Cancel[:0]
		for _, it := range items {
			if it.call != nil {
				batch.Calls = append(batch.Calls, it.call)
			} else {
				batch.Cancel = append(batch.Cancel, it.cancel)
			}
		}
		// Send has encoded the message when it returns.
		err := gs.Send(batch)
		clear(batch.Calls)
		return err
	}}
	c.cur = st
	go st.receive(gs)
	return st, nil
}

// add registers cl to receive its result, and to end with ctx's error
// (its cancellation sent to the plugin) if ctx ends first; it fails if
// the stream broke or ctx has ended.
func (st *stream) add(ctx context.Context, cl *call) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.waiting == nil {
		return st.err
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	id := cl.msg.Id
	// Under mu: whoever takes the call out of waiting sees stop set.
	cl.stop = context.AfterFunc(ctx, func() {
		if st.remove(id) {
			st.send(outgoing{cancel: id})
			cl.done(nil, status.FromContextError(ctx.Err()).Err())
		}
	})
	st.waiting[id] = cl
	return nil
}

// remove forgets the call id; false if it was not waiting any more.
func (st *stream) remove(id uint64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.waiting[id]
	delete(st.waiting, id)
	return ok
}

// fail breaks the stream with err, once.
func (st *stream) fail(err error) {
	st.mu.Lock()
	if st.waiting == nil {
		st.mu.Unlock()
		return
	}
	if len(st.waiting) > 0 {
		// Not on this goroutine: fail may run inside a DeliverAsync.
		go func(calls map[uint64]*call) {
			for _, cl := range calls {
				cl.stop()
				cl.done(nil, err)
			}
		}(st.waiting)
	}
	st.waiting = nil
	st.err = err
	st.mu.Unlock()
	st.cancel()
	st.onFail()
}

// send queues o and sends it (see combine.Sender). When the send fails
// the stream is over: a status error breaks it at once; io.EOF means the
// plugin ended it, and receive gets the status from Recv.
func (st *stream) send(o outgoing) {
	if err := st.out.Add(o); err != nil && isStatus(err) {
		st.fail(err)
	}
}

// receive hands each result to its call until the stream breaks.
func (st *stream) receive(gs pluginpb.Plugin_DeliverStreamClient) {
	var async []answered
	for {
		rb, err := gs.Recv()
		if err != nil {
			st.fail(streamError(err))
			return
		}
		st.mu.Lock()
		for _, r := range rb.GetResults() {
			if cl := st.waiting[r.GetId()]; cl != nil {
				delete(st.waiting, r.GetId())
				async = append(async, answered{cl, r})
			}
		}
		st.mu.Unlock()
		// The answers are handled right here: no goroutine to wake for a
		// DeliverAsync call, one (the caller's) for Deliver.
		for i, a := range async {
			a.cl.stop()
			a.cl.done(a.r, nil)
			async[i] = answered{}
		}
		async = async[:0]
	}
}

// streamError is the error calls fail with when the stream broke: a gRPC
// status, Unavailable when the plugin ended the stream (io.EOF).
func streamError(err error) error {
	if isStatus(err) {
		return err
	}
	return status.Errorf(codes.Unavailable, "deliver stream ended: %v", err)
}

func isStatus(err error) bool {
	var se interface{ GRPCStatus() *status.Status }
	return errors.As(err, &se)
}
