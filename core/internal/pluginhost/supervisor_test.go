package pluginhost

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// A plugin process that dies is replaced by a configured new one; the
// delivery in flight fails, later ones succeed on the new process.
func TestSuperviseRestarts(t *testing.T) {
	c := startTestPlugin(t)
	var restarts atomic.Int32
	s := Supervise(c, []byte(`{"greeting":"again"}`), func() { restarts.Add(1) })
	t.Cleanup(s.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exitReq := &pluginpb.DeliverRequest{DeliveryId: "d", Devices: []*pluginpb.Device{{Kind: "testdev", Token: "exit"}}}
	if _, err := deliverWire(ctx, s, exitReq); err == nil {
		t.Fatal("a delivery whose process exited returned no error")
	}
	okReq := &pluginpb.DeliverRequest{DeliveryId: "d2", Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}}
	var resp *pluginpb.DeliverResponse
	for {
		var err error
		resp, err = deliverWire(ctx, s, okReq)
		if err == nil {
			break
		}
		// While the old process dies, errors vary (exited, connection
		// refused, ErrRestarting): all are transient for the host.
		if ctx.Err() != nil {
			t.Fatal("no restart within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The new process got the same configuration the supervisor was given.
	if got := resp.Outcomes[0].ProviderId; !strings.HasPrefix(got, "again:d2") {
		t.Errorf("after restart: got %q; want the new process configured", got)
	}
	if restarts.Load() != 1 {
		t.Errorf("restarts: got %d; want 1", restarts.Load())
	}
	if s.Client() == c || !c.Exited() {
		t.Error("the dead client is still current")
	}
	if err := s.Health(ctx); err != nil {
		t.Errorf("health after restart: %v", err)
	}
}

// Retire waits for deliveries in flight before killing the process.
func TestSuperviseRetire(t *testing.T) {
	c := startTestPlugin(t)
	s := Supervise(c, []byte(`{"greeting":"hi"}`), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := deliverWire(ctx, s, &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Kind: "testdev", Token: "block"}}})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.Retire()
	time.Sleep(50 * time.Millisecond)
	if c.Exited() {
		t.Fatal("retired while a delivery was in flight")
	}
	<-done // ends at its deadline, on a live process
	waitExited(t, c, "not killed after the delivery ended")
}

func TestRestartBackoff(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {5, 3200 * time.Millisecond}, {6, 5 * time.Second}, {40, 5 * time.Second}} {
		if got := restartBackoff(tc.failures); got != tc.want {
			t.Errorf("restartBackoff(%d): got %v; want %v", tc.failures, got, tc.want)
		}
	}
}
