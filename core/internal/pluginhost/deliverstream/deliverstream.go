// Package deliverstream is the host side of the plugin protocol's
// DeliverStream: it makes Deliver calls over one long-lived gRPC stream per
// plugin process instead of one unary RPC each. A call means what the unary
// Deliver means: the ctx's deadline and cancellation reach the plugin, its
// trace continues there (a client span per call, carried in the message),
// and a call that fails as a whole returns the gRPC status the unary call
// would have.
//
// # What the caller never waits for
//
// Deliver only queues the call, wakes the stream's sender goroutine and
// waits for its answer, which ends at the latest with its ctx: it never
// sends, opens a stream or waits on the plugin's flow control, so a plugin
// that stops reading (a hung or stopped process, whose gRPC flow control
// window fills up) cannot block the caller past its deadline. The calls
// queued while the sender is busy share its next message. The stream's
// receiver never waits on a caller either: it hands results and progress
// to a channel each call sized for all it can get.
//
// # Bounds
//
// A message the sender writes holds at most Limits.MaxBatch calls and
// Limits.MaxMessageBytes bytes, so it always fits the plugin's receive
// limit; a single call larger than that is refused at once (the plugin host
// splits a call to many devices before it gets here). The calls queued or
// waiting for their answer are bounded too (Limits.MaxWaiting calls,
// Limits.MaxWaitingBytes bytes): past either, a call fails at once with
// codes.ResourceExhausted (ErrOverloaded), so memory stays bounded while a
// plugin does not answer. A call whose strings are not valid UTF-8 (which
// protobuf refuses to encode, and which would end the stream and every call
// on it) fails alone with codes.InvalidArgument.
//
// # Progress
//
// A call to several devices asks the plugin (when its Info says
// deliver_progress) for each device's outcome as it happens. If the call
// then fails as a whole (the stream broke, the process died, the ctx
// ended), its answer is a response that keeps the outcomes already
// reported and says retry for the others, so devices a provider accepted
// are not sent again.
package deliverstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// ErrClosed is returned by Deliver after Close.
var ErrClosed = status.Error(codes.Unavailable, "deliver stream closed")

// ErrOverloaded is the error of a call refused because too many calls are
// waiting for the plugin already.
var ErrOverloaded = errors.New("plugin overloaded: too many calls waiting for it")

// Limits bound what a Client sends and keeps. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	// MaxMessageBytes bounds the encoded size of one DeliverBatch, and so
	// of one call.
	MaxMessageBytes int
	// MaxBatch bounds the calls in one DeliverBatch.
	MaxBatch int
	// MaxWaiting bounds the calls queued or waiting for their answer.
	MaxWaiting int
	// MaxWaitingBytes bounds the encoded bytes of those calls.
	MaxWaitingBytes int
}

// DefaultLimits are the limits of a zero Limits: 1 MiB messages (a
// quarter of gRPC's default receive limit, which older plugins keep), 256
// calls a message, 8192 calls and 64 MiB waiting.
var DefaultLimits = Limits{MaxMessageBytes: 1 << 20, MaxBatch: 256, MaxWaiting: 8192, MaxWaitingBytes: 64 << 20}

// CallOverhead is what a call adds to the encoded size of its request in
// a DeliverBatch (its id, deadline, trace context and framing), rounded
// up.
const CallOverhead = 256

func (l Limits) orDefaults() Limits {
	d := DefaultLimits
	if l.MaxMessageBytes > 0 {
		d.MaxMessageBytes = l.MaxMessageBytes
	}
	if l.MaxBatch > 0 {
		d.MaxBatch = l.MaxBatch
	}
	if l.MaxWaiting > 0 {
		d.MaxWaiting = l.MaxWaiting
	}
	if l.MaxWaitingBytes > 0 {
		d.MaxWaitingBytes = l.MaxWaitingBytes
	}
	return d
}

// Client makes Deliver calls on DeliverStream. Its methods may be called
// concurrently. A stream that breaks (the plugin process died) fails the
// calls waiting on it with the stream's error; the next call opens a new
// stream.
type Client struct {
	rpc      pluginpb.PluginClient
	tracer   trace.Tracer
	limits   Limits
	progress bool
	nextID   atomic.Uint64
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	// lastRecv is when the plugin last sent anything (Unix nanoseconds).
	lastRecv atomic.Int64

	mu           sync.Mutex
	queue        []*call // calls to send, in order
	cancels      []uint64
	waiting      map[uint64]*call // queued or sent, not answered
	waitingBytes int
	closed       bool
	cur          *stream // the open stream, for Close to end a blocked Send
}

// Options configures a Client.
type Options struct {
	// TracerProvider makes a client span for each call whose ctx carries a
	// valid span context (nil: no spans; the trace context is still
	// carried).
	TracerProvider trace.TracerProvider
	Limits         Limits
	// Progress: the plugin sends device outcomes as they happen (its Info
	// says deliver_progress).
	Progress bool
}

// New returns a Client calling rpc, and starts its sender goroutine, which
// ends with Close.
func New(rpc pluginpb.PluginClient, opt Options) *Client {
	c := &Client{
		rpc:      rpc,
		limits:   opt.Limits.orDefaults(),
		progress: opt.Progress,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		waiting:  map[uint64]*call{},
	}
	if opt.TracerProvider != nil {
		c.tracer = opt.TracerProvider.Tracer("github.com/ringside/ringside/core/internal/pluginhost/deliverstream")
	}
	c.lastRecv.Store(time.Now().UnixNano())
	go c.send()
	return c
}

// call is a call waiting for its answer. Whoever takes it out of waiting
// (its result, its ctx ending, the stream breaking, Close) sends its final
// event, once; the receiver sends each device's progress, at most once a
// device. events holds them all, so no send ever blocks: the receiver never
// waits on a caller, and never runs a caller's code.
type call struct {
	msg    *pluginpb.DeliverCall
	size   int
	events chan event
	stop   func() bool
	sent   *stream // the stream it was sent on; nil while queued
	since  int64   // when it was sent (Unix nanoseconds)
	// outcomes reported as progress, by device index (under Client.mu).
	progress map[int32]*pluginpb.Outcome
}

// event is a device's outcome reported before its call's answer, or
// (final) the answer: a result or the whole call's error.
type event struct {
	index int32
	o     *pluginpb.Outcome
	final bool
	r     *pluginpb.DeliverResult
	err   error
}

// finish sends the call's answer; the caller took cl out of waiting.
func (cl *call) finish(r *pluginpb.DeliverResult, err error) {
	cl.events <- event{final: true, r: r, err: err}
}

// Deliver makes one Deliver call on the stream and waits for its answer.
// It only queues the call for the sender goroutine and waits: it never
// sends, opens a stream or waits on the plugin's flow control, so a plugin
// that stops reading costs the caller its ctx's deadline, nothing more.
// progress, when set, is given each device outcome the plugin reports
// before the answer (Options.Progress), on the caller's goroutine; the
// answer still holds every outcome.
func (c *Client) Deliver(ctx context.Context, req *pluginpb.DeliverRequest, progress func(i int, o *pluginpb.Outcome)) (*pluginpb.DeliverResponse, error) {
	if err := CheckUTF8(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, msg, end := c.newCall(ctx, req)
	msg.Progress = c.progress && len(req.GetDevices()) > 1
	cl := &call{msg: msg, size: proto.Size(msg), events: make(chan event, 1+len(req.GetDevices()))}
	if err := c.add(ctx, cl); err != nil {
		end(err)
		return nil, err
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	for {
		ev := <-cl.events
		if !ev.final {
			if progress != nil {
				progress(int(ev.index), ev.o)
			}
			continue
		}
		resp, err := cl.answer(ev.r, ev.err)
		end(err)
		return resp, err
	}
}

// answer is what Deliver returns: the response of its result, or the
// whole call's error; a call that failed as a whole after devices reported
// progress answers with those outcomes, and retry for the others.
func (cl *call) answer(r *pluginpb.DeliverResult, err error) (*pluginpb.DeliverResponse, error) {
	if err == nil {
		if r.GetCode() != int32(codes.OK) {
			err = status.Error(codes.Code(r.GetCode()), r.GetMessage())
		} else if r.GetResponse() == nil {
			err = status.Error(codes.Internal, "deliver stream: a result with neither a response nor an error")
		} else {
			return r.GetResponse(), nil
		}
	}
	if len(cl.progress) == 0 {
		return nil, err
	}
	devs := cl.msg.GetRequest().GetDevices()
	resp := &pluginpb.DeliverResponse{Outcomes: make([]*pluginpb.Outcome, len(devs))}
	reason := "call failed before this device's outcome: " + status.Convert(err).Message()
	for i := range devs {
		if o := cl.progress[int32(i)]; o != nil {
			resp.Outcomes[i] = o
		} else {
			resp.Outcomes[i] = &pluginpb.Outcome{Kind: pluginpb.Outcome_KIND_RETRY, Reason: reason}
		}
	}
	return resp, nil
}

// add registers cl to receive its result and queues it, and sets it to end
// with ctx's error (its cancellation sent to the plugin) if ctx ends
// first; it fails if the client is closed, ctx has ended, the call is too
// large, or too much is waiting already.
func (c *Client) add(ctx context.Context, cl *call) error {
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	if cl.size+CallOverhead > c.limits.MaxMessageBytes {
		return status.Errorf(codes.InvalidArgument, "deliver call of %d bytes is larger than the %d bytes a message to the plugin may hold", cl.size, c.limits.MaxMessageBytes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if len(c.waiting) >= c.limits.MaxWaiting || c.waitingBytes+cl.size > c.limits.MaxWaitingBytes {
		return status.Errorf(codes.ResourceExhausted, "%v (%d calls, %d bytes)", ErrOverloaded, len(c.waiting), c.waitingBytes)
	}
	id := cl.msg.Id
	// Under mu: whoever takes the call out of waiting sees stop set.
	cl.stop = context.AfterFunc(ctx, func() {
		if c.remove(id, true) {
			cl.finish(nil, status.FromContextError(ctx.Err()).Err())
		}
	})
	c.waiting[id] = cl
	c.waitingBytes += cl.size
	c.queue = append(c.queue, cl)
	return nil
}

// remove forgets the call id; false if it was not waiting any more. A call
// sent already is canceled at the plugin when cancel is set.
func (c *Client) remove(id uint64, cancel bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.waiting[id]
	if !ok {
		return false
	}
	c.forget(cl)
	if cancel && cl.sent != nil {
		c.cancels = append(c.cancels, id)
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// forget takes cl out of waiting; c.mu is held.
func (c *Client) forget(cl *call) {
	delete(c.waiting, cl.msg.Id)
	c.waitingBytes -= cl.size
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
			ctx, span = c.tracer.Start(ctx, pluginpb.DeliverSpanName, trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(pluginpb.DeliverSpanAttributes...))
			end = func(err error) {
				st := status.Convert(err)
				pluginpb.EndDeliverSpan(span, st.Code(), st.Message())
			}
		}
		msg.TraceContext = map[string]string{}
		propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(msg.TraceContext))
	}
	return ctx, msg, end
}

// Close ends the stream and the sender; calls waiting fail with ErrClosed,
// and so do later ones.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return
	}
	c.closed = true
	if c.cur != nil {
		c.cur.cancel() // a Send blocked on a plugin that stopped reading returns
	}
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	c.failAll(nil, ErrClosed)
}

// Stalled reports whether the plugin has answered nothing for longer than
// d while a call sent to it more than d ago waits for its answer: the
// process is alive but not serving its calls.
func (c *Client) Stalled(now time.Time, d time.Duration) bool {
	limit := now.Add(-d).UnixNano()
	if c.lastRecv.Load() > limit {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.waiting {
		if cl.sent != nil && cl.since < limit {
			return true
		}
	}
	return false
}

// failAll fails the calls sent on st (every waiting call when st is nil)
// with err.
func (c *Client) failAll(st *stream, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.waiting {
		if st == nil || cl.sent == st {
			c.forget(cl)
			cl.stop()
			cl.finish(nil, err)
		}
	}
	if st == nil {
		c.queue = nil
	}
}

// stream is one open DeliverStream.
type stream struct {
	gs     pluginpb.Plugin_DeliverStreamClient
	cancel context.CancelFunc
	broken chan struct{} // closed by the receiver when Recv failed
}

// send is the sender goroutine: it opens a stream when there is work and
// none is open, and sends what is queued, in batches bounded in calls and
// bytes. It ends at Close.
func (c *Client) send() {
	defer close(c.done)
	var st *stream
	defer func() {
		if st != nil {
			st.cancel()
		}
	}()
	batch := &pluginpb.DeliverBatch{}
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		for {
			if st != nil {
				select {
				case <-st.broken:
					st.cancel()
					st = nil
				default:
				}
			}
			c.mu.Lock()
			if len(c.queue) == 0 && len(c.cancels) == 0 {
				c.mu.Unlock()
				break
			}
			if st == nil && len(c.queue) == 0 {
				// Cancellations of calls sent on a stream that is gone.
				c.cancels = c.cancels[:0]
				c.mu.Unlock()
				break
			}
			c.mu.Unlock()
			if st == nil {
				var err error
				if st, err = c.open(); err != nil {
					c.failAll(nil, err)
					break
				}
			}
			if !c.take(batch, st) {
				continue // st broke: the loop's start opens another
			}
			if len(batch.Calls) == 0 && len(batch.Cancel) == 0 {
				continue
			}
			// Send has encoded the message when it returns.
			err := st.gs.Send(batch)
			clear(batch.Calls)
			batch.Calls, batch.Cancel = batch.Calls[:0], batch.Cancel[:0]
			if err != nil {
				// The stream is over; the receiver fails its calls with the
				// status Recv gives.
				st.cancel()
				<-st.broken
				st = nil
			}
			select {
			case <-c.stop:
				return
			default:
			}
		}
	}
}

// take moves queued calls and cancellations into batch, within the
// limits, marking the calls sent on st; false, with nothing taken, if st
// has broken (checked under mu, so that the receiver's failAll, which
// runs after it saw st break, fails every call marked sent on it).
func (c *Client) take(batch *pluginpb.DeliverBatch, st *stream) bool {
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-st.broken:
		return false
	default:
	}
	size := 0
	for len(c.cancels) > 0 && size < c.limits.MaxMessageBytes/2 {
		batch.Cancel = append(batch.Cancel, c.cancels[0])
		c.cancels = c.cancels[1:]
		size += 10
	}
	n := 0
	for _, cl := range c.queue {
		if _, ok := c.waiting[cl.msg.Id]; !ok {
			n++ // canceled before it was sent
			continue
		}
		if len(batch.Calls) >= c.limits.MaxBatch || (len(batch.Calls) > 0 && size+cl.size+CallOverhead > c.limits.MaxMessageBytes) {
			break
		}
		batch.Calls = append(batch.Calls, cl.msg)
		size += cl.size + CallOverhead
		cl.sent, cl.since = st, now
		n++
	}
	clear(c.queue[:n])
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil
	}
	return true
}

// open opens a stream and starts its receiver.
func (c *Client) open() (*stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	gs, err := c.rpc.DeliverStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	st := &stream{gs: gs, cancel: cancel, broken: make(chan struct{})}
	c.mu.Lock()
	closed := c.closed
	c.cur = st
	c.mu.Unlock()
	if closed {
		cancel()
	}
	go c.receive(st)
	return st, nil
}

// receive hands each result to its call until the stream breaks, then
// fails the calls sent on it.
func (c *Client) receive(st *stream) {
	for {
		rb, err := st.gs.Recv()
		if err != nil {
			close(st.broken)
			c.failAll(st, streamError(err))
			// The sender may have queued calls meanwhile: it opens a new
			// stream for them.
			select {
			case c.wake <- struct{}{}:
			default:
			}
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		c.mu.Lock()
		for _, r := range rb.GetResults() {
			cl := c.waiting[r.GetId()]
			if cl == nil {
				continue
			}
			if len(r.GetProgress()) > 0 && r.GetResponse() == nil && r.GetCode() == 0 {
				c.progressed(cl, r.GetProgress())
				continue
			}
			c.forget(cl)
			cl.stop()
			cl.finish(r, nil)
		}
		c.mu.Unlock()
	}
}

// progressed records device outcomes reported before cl's answer and
// passes each on once; c.mu is held.
func (c *Client) progressed(cl *call, ps []*pluginpb.DeviceOutcome) {
	if cl.progress == nil {
		cl.progress = map[int32]*pluginpb.Outcome{}
	}
	n := int32(len(cl.msg.GetRequest().GetDevices()))
	for _, p := range ps {
		if i := p.GetIndex(); i >= 0 && i < n && p.GetOutcome() != nil && cl.progress[i] == nil {
			cl.progress[i] = p.GetOutcome()
			cl.events <- event{index: i, o: p.GetOutcome()}
		}
	}
}

// streamError is the error calls fail with when the stream broke: a gRPC
// status, Unavailable when the plugin ended the stream (io.EOF).
func streamError(err error) error {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return err
	}
	return status.Errorf(codes.Unavailable, "deliver stream ended: %v", err)
}

// CheckUTF8 returns an error naming the first string field of req that is
// not valid UTF-8: protobuf refuses to encode such a message, and a
// message that cannot be encoded ends the stream it was to go on.
func CheckUTF8(req *pluginpb.DeliverRequest) error {
	bad := func(field string) error { return fmt.Errorf("deliver request: %s is not valid UTF-8", field) }
	for _, f := range [...]struct{ name, v string }{
		{"delivery_id", req.GetDeliveryId()}, {"route", req.GetRoute()},
	} {
		if !utf8.ValidString(f.v) {
			return bad(f.name)
		}
	}
	if c := req.GetCall(); c != nil {
		for _, f := range [...]struct{ name, v string }{
			{"call.sid", c.GetSid()}, {"call.from_service_id", c.GetFromServiceId()}, {"call.from_user_id", c.GetFromUserId()},
			{"call.to_service_id", c.GetToServiceId()}, {"call.to_user_id", c.GetToUserId()}, {"call.type", c.GetType()},
			{"call.param", c.GetParam()}, {"call.app_svr_data", c.GetAppSvrData()},
		} {
			if !utf8.ValidString(f.v) {
				return bad(f.name)
			}
		}
		for k, v := range c.GetExtra() {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return bad("call.extra")
			}
		}
	}
	for k, v := range req.GetTemplates() {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return bad("templates")
		}
	}
	for _, d := range req.GetDevices() {
		if !utf8.ValidString(d.GetKind()) || !utf8.ValidString(d.GetToken()) || !utf8.ValidString(d.GetIdempotencyId()) {
			return bad("devices")
		}
	}
	return nil
}
