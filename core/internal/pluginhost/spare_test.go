package pluginhost

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// waitSpare waits for s to hold a live spare other than not, and returns it.
func waitSpare(t *testing.T, s *Supervised, not *Client) *Client {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if sp := s.spare.Load(); sp != nil && sp != not && !sp.Exited() {
			return sp
		}
		if time.Now().After(deadline) {
			t.Fatal("no spare process within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// When the serving process dies, its spare takes over at once: the first
// delivery after the death is served, by the spare, configured as the
// first; a new spare is started behind it; Close ends both.
func TestSupervisedSpareTakesOver(t *testing.T) {
	c := startTestPlugin(t)
	var restarts atomic.Int32
	s := SuperviseWith(c, []byte(`{"greeting":"spare"}`), Hooks{OnRestart: func() { restarts.Add(1) }}, Checks{Spare: time.Millisecond})
	t.Cleanup(s.Close)
	sp := waitSpare(t, s, nil)
	if sp == c {
		t.Fatal("the serving process is its own spare")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exitReq := &pluginpb.DeliverRequest{DeliveryId: "d", Devices: []*pluginpb.Device{{Kind: "testdev", Token: "exit"}}}
	if _, err := deliverWire(ctx, s, exitReq); err == nil {
		t.Fatal("a delivery whose process exited returned no error")
	}
	waitExited(t, c, "the serving process did not end within 5s")
	okReq := &pluginpb.DeliverRequest{DeliveryId: "d2", Devices: []*pluginpb.Device{{Kind: "testdev", Token: "ok"}}}
	resp, err := deliverWire(ctx, s, okReq)
	if err != nil {
		t.Fatalf("the first delivery after the death: %v; want it served by the spare", err)
	}
	if got := resp.Outcomes[0].ProviderId; !strings.HasPrefix(got, "spare:d2") {
		t.Errorf("after the death: got %q; want the spare, configured as the first process", got)
	}
	if s.Client() != sp {
		t.Error("the spare is not the serving process")
	}
	if n := restarts.Load(); n != 1 {
		t.Errorf("restarts: got %d; want 1", n)
	}
	next := waitSpare(t, s, sp)
	s.Close()
	waitExited(t, sp, "Close left the promoted spare running")
	waitExited(t, next, "Close left the spare running")
}

// A spare that dies while idle is replaced; one that is not wanted
// (no Spare) is never started.
func TestSupervisedSpareReplacedAndOptional(t *testing.T) {
	c := startTestPlugin(t)
	s := SuperviseWith(c, []byte(`{"greeting":"hi"}`), Hooks{}, Checks{Spare: time.Millisecond})
	t.Cleanup(s.Close)
	sp := waitSpare(t, s, nil)
	sp.killNow()
	next := waitSpare(t, s, sp)
	if s.Client() != c {
		t.Error("a spare's death replaced the serving process")
	}
	s.Close()
	waitExited(t, next, "Close left the spare running")

	c2 := startTestPlugin(t)
	none := SuperviseWith(c2, []byte(`{"greeting":"hi"}`), Hooks{}, Checks{})
	t.Cleanup(none.Close)
	time.Sleep(600 * time.Millisecond) // two ticks of the watch
	if sp := none.spare.Load(); sp != nil {
		t.Error("a spare was started without Spare")
	}
}

// A spare that answers nothing (stopped) is killed and replaced before it
// can take over; the serving process is left alone.
func TestSupervisedStoppedSpareReplaced(t *testing.T) {
	c := startTestPlugin(t)
	s := SuperviseWith(c, []byte(`{"greeting":"hi"}`), Hooks{}, Checks{Spare: time.Millisecond, Every: 100 * time.Millisecond, Timeout: 200 * time.Millisecond, Misses: 2})
	t.Cleanup(s.Close)
	sp := waitSpare(t, s, nil)
	pid := sp.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	next := waitSpare(t, s, sp)
	waitExited(t, sp, "the stopped spare was not killed")
	if s.Client() != c {
		t.Error("a stopped spare replaced the serving process")
	}
	if next.Exited() {
		t.Error("the new spare is not running")
	}
}
