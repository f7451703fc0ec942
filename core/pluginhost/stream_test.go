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
	c := start(t, testSpec(t, "test"))
	configure(t, c, `{"greeting":"hi"}`)
	if c.stream == nil {
		t.Fatal("an SDK plugin did not announce DeliverStream")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		wg.Go(func() {
			id := fmt.Sprintf("d%03d", i)
			resp, err := c.Deliver(t.Context(), &pluginpb.DeliverRequest{DeliveryId: id, Templates: map[string]string{"body": id},
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
	c := start(t, testSpec(t, "test"))
	configure(t, c, `{"greeting":"hi"}`)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Deliver(ctx, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "block"}}})
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
	c := start(t, testSpec(t, "test"))
	configure(t, c, `{"greeting":"hi"}`)
	errs := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := c.Deliver(t.Context(), &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "block"}}})
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Deliver(t.Context(), &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "exit"}}}); err == nil {
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
	if _, err := c.Deliver(t.Context(), &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "ok"}}}); err == nil {
		t.Error("a call after the plugin died succeeded")
	}
}

// A plugin built before DeliverStream gets unary calls.
func TestLegacyPluginGetsUnaryCalls(t *testing.T) {
	c := start(t, testSpec(t, "legacy"))
	if c.stream != nil {
		t.Fatal("the host uses DeliverStream with a plugin that does not serve it")
	}
	resp, err := c.Deliver(t.Context(), &pluginpb.DeliverRequest{DeliveryId: "x", Devices: []*pluginpb.Device{{Token: "a"}, {Token: "b"}}})
	if err != nil || len(resp.Outcomes) != 2 || resp.Outcomes[0].ProviderId != "legacy:x" {
		t.Fatalf("got %v, %v", resp, err)
	}
}
