package pluginhost

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Many calls at once on DeliverStream each get their own answer.
func TestStreamConcurrentCalls(t *testing.T) {
	c := startTestPlugin(t)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		wg.Go(func() {
			id := fmt.Sprintf("d%03d", i)
			resp, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{DeliveryId: id, Templates: map[string]string{"body": id},
				Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}})
			if err != nil {
				errs <- err
				return
			}
			if want := "hi:" + id + ":" + id; resp.Outcomes[0].ProviderId != want {
				errs <- fmt.Errorf("call %s got %q; want %q", id, resp.Outcomes[0].ProviderId, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A call whose ctx is canceled returns at once with Canceled; the plugin's
// call ends too (the next calls are not held up), and the stream serves on.
func TestStreamCancel(t *testing.T) {
	c := startTestPlugin(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := deliverWire(ctx, c, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "block"}}})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if status.Code(err) != codes.Canceled {
			t.Fatalf("canceled call: %v; want Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a canceled call did not return")
	}
	if got := deliver(t, c, t.Context(), "ok").Outcomes[0].ProviderId; got != "hi:d1:B" {
		t.Errorf("after a cancel: %q", got)
	}
}

// Calls in flight when the plugin process dies fail (they are retried by
// the dispatcher on the restarted process), none hangs, and the client
// reports the exit.
func TestStreamPluginDies(t *testing.T) {
	c := startTestPlugin(t)
	errs := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "block"}}})
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "exit"}}}); err == nil {
		t.Fatal("the call that killed the plugin succeeded")
	}
	for range 10 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a call in flight on a dead plugin succeeded")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a call in flight on a dead plugin hangs")
		}
	}
	if _, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "ok"}}}); err == nil {
		t.Error("a call after the plugin died succeeded")
	}
}

// A plugin built before DeliverStream gets unary calls.
func TestLegacyPluginGetsUnaryCalls(t *testing.T) {
	c := start(t, testSpec(t, "legacy"))
	if c.stream != nil {
		t.Fatal("the host uses DeliverStream with a plugin that does not serve it")
	}
	resp, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{DeliveryId: "x", Devices: []*pluginpb.Device{{Token: "a"}, {Token: "b"}}})
	if err != nil || len(resp.Outcomes) != 2 || resp.Outcomes[0].ProviderId != "legacy:x" {
		t.Fatalf("got %v, %v", resp, err)
	}
}

// asyncResult is what a Deliver call made on a goroutine returned.
type asyncResult struct {
	resp *pluginpb.DeliverResponse
	err  error
}

// deliverAsync starts a Deliver call on a goroutine and returns a channel
// that gets its result.
func deliverAsync(t *testing.T, c *Client, ctx context.Context, req *pluginpb.DeliverRequest) <-chan asyncResult {
	out := make(chan asyncResult, 1)
	go func() {
		resp, err := deliverWire(ctx, c, req)
		out <- asyncResult{resp, err}
	}()
	return out
}

func waitAsync(t *testing.T, ch <-chan asyncResult) asyncResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("done was not called")
		return asyncResult{}
	}
}

// Concurrent calls get their own answers; a canceled one ends with
// Canceled; calls in flight when the plugin dies end with an error; a
// plugin without DeliverStream is called too.
func TestConcurrentDeliver(t *testing.T) {
	c := startTestPlugin(t)
	var chans []<-chan asyncResult
	for i := range 100 {
		id := fmt.Sprintf("a%03d", i)
		chans = append(chans, deliverAsync(t, c, t.Context(), &pluginpb.DeliverRequest{DeliveryId: id, Templates: map[string]string{"body": id},
			Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}}))
	}
	for i, ch := range chans {
		id := fmt.Sprintf("a%03d", i)
		if r := waitAsync(t, ch); r.err != nil || r.resp.Outcomes[0].ProviderId != "hi:"+id+":"+id {
			t.Errorf("call %s: %v, %v", id, r.resp, r.err)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	blocked := deliverAsync(t, c, ctx, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "block"}}})
	time.Sleep(50 * time.Millisecond)
	cancel()
	if r := waitAsync(t, blocked); status.Code(r.err) != codes.Canceled {
		t.Errorf("canceled call: %v", r.err)
	}

	var inflight []<-chan asyncResult
	for range 5 {
		inflight = append(inflight, deliverAsync(t, c, t.Context(), &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "block"}}}))
	}
	time.Sleep(100 * time.Millisecond)
	exit := deliverAsync(t, c, t.Context(), &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "exit"}}})
	for _, ch := range append(inflight, exit) {
		if r := waitAsync(t, ch); r.err == nil {
			t.Error("a call on a dead plugin succeeded")
		}
	}

	legacy := start(t, testSpec(t, "legacy"))
	if r := waitAsync(t, deliverAsync(t, legacy, t.Context(), &pluginpb.DeliverRequest{DeliveryId: "x"})); r.err != nil || r.resp.Outcomes[0].ProviderId != "legacy:x" {
		t.Errorf("legacy plugin: %v, %v", r.resp, r.err)
	}
}

// The stream's receiver never waits on a caller: a caller that is slow to
// take the progress of its call (here it does not take it at all until
// released) holds up no other call's answer on the same stream.
func TestSlowCallerStallsNoOtherCall(t *testing.T) {
	c := startTestPlugin(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	release := make(chan struct{})
	progressed := make(chan struct{})
	slow := make(chan asyncResult, 1)
	go func() {
		resp, err := deliverReporting(ctx, c, &pluginpb.DeliverRequest{DeliveryId: "slow", Devices: []*pluginpb.Device{
			{Kind: "testdev", Token: "ok"}, {Kind: "testdev", Token: "block"},
		}}, func(string) {
			close(progressed)
			<-release
		})
		slow <- asyncResult{resp, err}
	}()
	select {
	case <-progressed:
	case <-time.After(10 * time.Second):
		t.Fatal("no progress for the slow call")
	}
	for i := range 20 {
		id := fmt.Sprintf("q%02d", i)
		resp, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{DeliveryId: id, Templates: map[string]string{"body": id},
			Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}})
		if err != nil || resp.Outcomes[0].ProviderId != "hi:"+id+":"+id {
			t.Fatalf("call %s behind a slow caller: %v, %v", id, resp, err)
		}
	}
	close(release)
	cancel()
	if r := waitAsync(t, slow); r.err != nil || r.resp.Outcomes[0].Kind != pluginpb.Outcome_KIND_DELIVERED || r.resp.Outcomes[1].Kind != pluginpb.Outcome_KIND_RETRY {
		t.Errorf("the slow call: %v, %v; want ok delivered, block retry", r.resp, r.err)
	}
}
