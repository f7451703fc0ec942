package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// A call to a callee with more devices than one gRPC message holds (10,000
// tokens of 512 bytes: 5 MiB, over the plugin's 4 MiB default) is split
// into calls within the limit, every device gets its own outcome in order,
// and the stream serves on. Before, the message ended the stream: the call
// failed whole, and so did every call on the stream.
func TestLargeCallIsSplit(t *testing.T) {
	c := startTestPlugin(t)
	const n = 10000
	req := &pluginpb.DeliverRequest{DeliveryId: "big"}
	for i := range n {
		tok := fmt.Sprintf("big:%s%06d", strings.Repeat("x", 512-10), i)
		req.Devices = append(req.Devices, &pluginpb.Device{Kind: "testdev", Token: tok})
	}
	resp, err := deliverWire(t.Context(), c, req)
	if err != nil {
		t.Fatalf("deliver to %d devices: %v", n, err)
	}
	for i, o := range resp.Outcomes {
		if want := fmt.Sprintf("%06d", i); o.Kind != pluginpb.Outcome_KIND_DELIVERED || o.ProviderId != want {
			t.Fatalf("outcome %d: %v %q; want delivered %q", i, o.Kind, o.ProviderId, want)
		}
	}
	if got := deliver(t, c, t.Context(), "ok").Outcomes[0].ProviderId; !strings.HasPrefix(got, "hi:") {
		t.Errorf("after the large call: %q", got)
	}
}

// Many calls at once, each with LINE's largest fields (param, app_svr_data
// and an extra key of 4 KB each, and a payload holding them), share
// messages bounded in bytes: every call is answered, and each device gets
// exactly one delivery. Before, a batch of them passed 4 MiB and ended the
// stream, and the retries rang phones again.
func TestLargeBatchesStayUnderTheLimit(t *testing.T) {
	c := startTestPlugin(t)
	field := strings.Repeat("A", 4096)
	payload := []byte(`{"cc_param":"` + field + `","app_svr_data":"` + field + `","extra":"` + field + `"}`)
	const calls = 600
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			req := &pluginpb.DeliverRequest{
				DeliveryId:  fmt.Sprintf("call%04d", i),
				Call:        &pluginpb.Call{Param: field, AppSvrData: field, Extra: map[string]string{"stid": field}},
				PayloadJson: payload,
				Devices:     []*pluginpb.Device{{Kind: "testdev", Token: "once:a"}, {Kind: "testdev", Token: "once:b"}},
			}
			resp, err := deliverWire(t.Context(), c, req)
			if err != nil {
				errs <- fmt.Errorf("call %d: %v", i, err)
				return
			}
			for _, o := range resp.Outcomes {
				if o.Kind != pluginpb.Outcome_KIND_DELIVERED {
					errs <- fmt.Errorf("call %d: %v %s", i, o.Kind, o.Reason)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A call whose strings are not valid UTF-8 (which protobuf cannot encode)
// fails alone, permanently (it would fail the same way again); the calls
// sent before it on the same stream are answered. Before, its encoding error ended the stream and
// failed them all.
func TestInvalidUTF8FailsOnlyItsCall(t *testing.T) {
	c := startTestPlugin(t)
	var slow []<-chan asyncResult
	for range 5 {
		slow = append(slow, deliverAsync(t, c, t.Context(), &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Kind: "testdev", Token: "slow"}}}))
	}
	time.Sleep(50 * time.Millisecond)
	bad := deliverAsync(t, c, t.Context(), &pluginpb.DeliverRequest{
		Call: &pluginpb.Call{Extra: map[string]string{"k": "\xff\xfe"}}, Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}})
	if r := waitAsync(t, bad); r.err != nil || r.resp.Outcomes[0].Kind != pluginpb.Outcome_KIND_PERMANENT || !strings.Contains(r.resp.Outcomes[0].Reason, "UTF-8") {
		t.Errorf("invalid UTF-8 call: %v %v; want a permanent failure naming UTF-8", r.resp, r.err)
	}
	for i, ch := range slow {
		if r := waitAsync(t, ch); r.err != nil || r.resp.Outcomes[0].ProviderId != "slow" {
			t.Errorf("call %d sent before it: %v %v", i, r.resp, r.err)
		}
	}
}

// A call to several devices whose process dies after some were delivered
// answers with those outcomes and retry for the rest, not an error: the
// devices a provider accepted are not sent again.
func TestProgressKeepsDeliveredDevices(t *testing.T) {
	c := startTestPlugin(t)
	resp, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{DeliveryId: "p", Devices: []*pluginpb.Device{
		{Kind: "testdev", Token: "ok"}, {Kind: "testdev", Token: "exitlater"}, {Kind: "testdev", Token: "big:000042"},
	}})
	if err != nil {
		t.Fatalf("got %v; want the outcomes known before the process died", err)
	}
	want := []pluginpb.Outcome_Kind{pluginpb.Outcome_KIND_DELIVERED, pluginpb.Outcome_KIND_RETRY, pluginpb.Outcome_KIND_DELIVERED}
	for i, o := range resp.Outcomes {
		if o.Kind != want[i] {
			t.Errorf("device %d: %v (%s); want %v", i, o.Kind, o.Reason, want[i])
		}
	}
}

// A plugin process that is stopped (SIGSTOP: alive, answering nothing)
// blocks nobody: every call is queued at once, calls past the bound
// on waiting work fail at once with ResourceExhausted, the supervisor
// kills the process after its missed health checks and starts a new one,
// and the calls that waited fail (to be retried) instead of hanging.
func TestStoppedPluginIsKilledAndRestarted(t *testing.T) {
	c := startTestPlugin(t)
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.cmd.Process.Signal(syscall.SIGKILL) })

	// Far more than one flow-control window, and more calls than may wait.
	const calls = 9000
	body := strings.Repeat("b", 2000)
	results := make(chan error, calls)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		for i := range calls {
			go func() {
				_, err := deliverWire(t.Context(), c, &pluginpb.DeliverRequest{DeliveryId: fmt.Sprint(i), Templates: map[string]string{"body": body},
					Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}})
				results <- err
			}()
		}
	}()
	select {
	case <-returned:
	case <-time.After(20 * time.Second):
		t.Fatal("starting the calls blocked on a stopped plugin")
	}
	// The bound on waiting calls refuses the calls past it at once, while
	// the process is still stopped (supervision starts only then, so a
	// slow machine cannot kill the process before the calls are queued).
	// next returns the next call's error, failing the test with stuck if
	// none comes.
	next := func(stuck string) error {
		select {
		case err := <-results:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal(stuck)
			return nil
		}
	}
	refused := func(err error) bool {
		return errors.Is(err, delivery.ErrOverloaded) && status.Code(err) == codes.ResourceExhausted
	}
	shed, failed, answered := 0, 0, 0
	for shed == 0 {
		switch err := next("no call was refused past the bound on waiting calls"); {
		case refused(err):
			shed++
		case err != nil:
			t.Fatalf("a call failed before the process was killed: %v", err)
		default:
			// Answered before SIGSTOP took hold: signals land
			// asynchronously.
			answered++
		}
	}
	var kills atomic.Value
	restarted := make(chan struct{}, 1)
	s := SuperviseWith(c, []byte(`{"greeting":"again"}`), Hooks{
		OnRestart: func() { restarted <- struct{}{} },
		OnKill:    func(reason string) { kills.Store(reason) },
	}, Checks{Every: 100 * time.Millisecond, Timeout: 200 * time.Millisecond, Misses: 3})
	t.Cleanup(s.Close)
	select {
	case <-restarted:
	case <-time.After(20 * time.Second):
		t.Fatal("the stopped plugin was not replaced")
	}
	if got, _ := kills.Load().(string); got != "health" {
		t.Errorf("kill reason: %q; want health", got)
	}
	for range calls - shed - answered {
		switch err := next(fmt.Sprintf("%d calls never answered", calls-shed-failed)); {
		case refused(err):
			shed++
		case err != nil:
			failed++
		}
	}
	t.Logf("%d calls refused at once, %d failed when the process was killed", shed, failed)
	resp, err := deliverWire(t.Context(), s, &pluginpb.DeliverRequest{DeliveryId: "after", Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}})
	if err != nil || !strings.HasPrefix(resp.Outcomes[0].ProviderId, "again:") {
		t.Errorf("after the restart: %v %v", resp, err)
	}
}

// A process that answers its health checks but none of its calls is
// killed as hung and replaced; the waiting call fails instead of waiting
// for its deadline.
func TestHungPluginIsKilled(t *testing.T) {
	c := startTestPlugin(t)
	var kills atomic.Value
	s := SuperviseWith(c, []byte(`{"greeting":"again"}`), Hooks{OnKill: func(reason string) { kills.Store(reason) }},
		Checks{Every: 100 * time.Millisecond, Stall: 500 * time.Millisecond})
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := deliverWire(ctx, s, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Kind: "testdev", Token: "block"}}})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("a call the plugin never answers: %v after %s; want it failed by the kill", err, time.Since(start))
	}
	if got, _ := kills.Load().(string); got != "hung" {
		t.Errorf("kill reason: %q; want hung", got)
	}
}

// The ctx's progress hook gets each device's outcome as the plugin reports
// it, before the call is answered: here while another device of the call
// is still held.
func TestProgressHookBeforeAnswer(t *testing.T) {
	c := startTestPlugin(t)
	got := make(chan string, 4)
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan asyncResult, 1)
	go func() {
		resp, err := deliverReporting(ctx, c, &pluginpb.DeliverRequest{DeliveryId: "h", Devices: []*pluginpb.Device{
			{Kind: "testdev", Token: "block"}, {Kind: "testdev", Token: "ok"},
		}}, func(token string) { got <- token })
		ch <- asyncResult{resp, err}
	}()
	select {
	case p := <-got:
		if p != "ok" {
			t.Errorf("progress %q; want ok", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no progress while a device of the call was held")
	}
	cancel()
	r := waitAsync(t, ch)
	if r.err != nil || r.resp.Outcomes[1].Kind != pluginpb.Outcome_KIND_DELIVERED || r.resp.Outcomes[0].Kind != pluginpb.Outcome_KIND_RETRY {
		t.Errorf("answer after the cancel: %v %v; want ok delivered, block retry", r.resp, r.err)
	}
}
