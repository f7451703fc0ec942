package sdktest

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// streamClient makes Deliver calls on one DeliverStream, as ringside does,
// with none of the host's batching or limits: a call (or a batch of calls)
// goes out as one message, and each result is handed to the call with its
// id. A stream that breaks fails the calls waiting on it; the next call
// opens a new one.
type streamClient struct {
	rpc      pluginpb.PluginClient
	progress bool

	mu     sync.Mutex // guards the fields below and each stream's waiting
	st     *clientStream
	nextID uint64
	closed bool
}

// clientStream is one open DeliverStream; sending on it is serialized by
// send.
type clientStream struct {
	gs     pluginpb.Plugin_DeliverStreamClient
	cancel context.CancelFunc
	send   sync.Mutex
	// waiting holds the calls sent on this stream and not answered.
	waiting map[uint64]chan result
}

// result is a call's answer, or the whole call's error.
type result struct {
	r   *pluginpb.DeliverResult
	err error
}

var errStreamClosed = status.Error(codes.Unavailable, "sdktest: deliver stream closed")

func newStreamClient(rpc pluginpb.PluginClient, progress bool) *streamClient {
	return &streamClient{rpc: rpc, progress: progress}
}

// Deliver makes one call on the stream and waits for its answer.
func (c *streamClient) Deliver(ctx context.Context, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	resps, errs := c.DeliverBatch(ctx, []*pluginpb.DeliverRequest{req})
	return resps[0], errs[0]
}

// DeliverBatch sends reqs as the calls of one DeliverBatch and waits for
// each call's answer; resps[i] and errs[i] answer reqs[i]. When ctx ends
// first, the calls not answered yet are canceled at the plugin and fail
// with ctx's status.
func (c *streamClient) DeliverBatch(ctx context.Context, reqs []*pluginpb.DeliverRequest) (resps []*pluginpb.DeliverResponse, errs []error) {
	resps, errs = make([]*pluginpb.DeliverResponse, len(reqs)), make([]error, len(reqs))
	fail := func(err error) ([]*pluginpb.DeliverResponse, []error) {
		for i := range errs {
			errs[i] = err
		}
		return resps, errs
	}
	if err := ctx.Err(); err != nil {
		return fail(status.FromContextError(err).Err())
	}
	batch := &pluginpb.DeliverBatch{}
	ids := make([]uint64, len(reqs))
	chans := make([]chan result, len(reqs))
	c.mu.Lock()
	st, err := c.stream()
	if err != nil {
		c.mu.Unlock()
		return fail(err)
	}
	for i, req := range reqs {
		c.nextID++
		ids[i], chans[i] = c.nextID, make(chan result, 1)
		st.waiting[ids[i]] = chans[i]
		call := &pluginpb.DeliverCall{Id: ids[i], Request: req, Progress: c.progress && len(req.GetDevices()) > 1}
		if dl, ok := ctx.Deadline(); ok {
			call.CallDeadlineUnixNano = dl.UnixNano()
		}
		batch.Calls = append(batch.Calls, call)
	}
	c.mu.Unlock()
	st.send.Lock()
	err = st.gs.Send(batch)
	st.send.Unlock()
	if err != nil {
		// The receiver sees the stream break too, and fails the calls.
		st.cancel()
	}
	for i, ch := range chans {
		select {
		case res := <-ch:
			resps[i], errs[i] = answer(res)
		case <-ctx.Done():
			if c.forget(st, ids[i]) {
				st.send.Lock()
				_ = st.gs.Send(&pluginpb.DeliverBatch{Cancel: []uint64{ids[i]}})
				st.send.Unlock()
				errs[i] = status.FromContextError(ctx.Err()).Err()
			} else {
				// Answered meanwhile.
				resps[i], errs[i] = answer(<-ch)
			}
		}
	}
	return resps, errs
}

// answer is what a call returns for its result.
func answer(res result) (*pluginpb.DeliverResponse, error) {
	switch {
	case res.err != nil:
		return nil, res.err
	case res.r.GetCode() != int32(codes.OK):
		return nil, status.Error(codes.Code(res.r.GetCode()), res.r.GetMessage())
	case res.r.GetResponse() == nil:
		return nil, status.Error(codes.Internal, "sdktest: a stream result with neither a response nor an error")
	}
	return res.r.GetResponse(), nil
}

// forget takes the call id out of st's waiting calls; false if it was
// answered (or failed) already.
func (c *streamClient) forget(st *clientStream, id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := st.waiting[id]
	delete(st.waiting, id)
	return ok
}

// stream returns the open stream, opening one (and its receiver) if none;
// c.mu is held, so that calls registered on the stream it returns are
// failed by its receiver should it break.
func (c *streamClient) stream() (*clientStream, error) {
	if c.closed {
		return nil, errStreamClosed
	}
	if c.st != nil {
		return c.st, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	gs, err := c.rpc.DeliverStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	st := &clientStream{gs: gs, cancel: cancel, waiting: map[uint64]chan result{}}
	c.st = st
	go c.receive(st)
	return st, nil
}

// receive hands each result to its call until the stream breaks, then
// fails the calls still waiting. A progress report (device outcomes before
// the call's answer) is not an answer: the answer holds those outcomes too.
func (c *streamClient) receive(st *clientStream) {
	for {
		rb, err := st.gs.Recv()
		if err != nil {
			if _, ok := status.FromError(err); !ok || errors.Is(err, context.Canceled) {
				err = status.Errorf(codes.Unavailable, "sdktest: deliver stream ended: %v", err)
			}
			c.mu.Lock()
			if c.st == st {
				c.st = nil
			}
			waiting := st.waiting
			st.waiting = nil
			c.mu.Unlock()
			st.cancel()
			for _, ch := range waiting {
				ch <- result{err: err}
			}
			return
		}
		c.mu.Lock()
		for _, r := range rb.GetResults() {
			if len(r.GetProgress()) > 0 && r.GetResponse() == nil && r.GetCode() == 0 {
				continue
			}
			if ch, ok := st.waiting[r.GetId()]; ok {
				delete(st.waiting, r.GetId())
				ch <- result{r: r}
			}
		}
		c.mu.Unlock()
	}
}

// Close ends the stream; calls waiting on it fail, and so do later ones.
func (c *streamClient) Close() {
	c.mu.Lock()
	c.closed = true
	st := c.st
	c.mu.Unlock()
	if st != nil {
		st.cancel()
	}
}
