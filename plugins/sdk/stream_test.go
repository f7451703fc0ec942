package sdk

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// recvResults reads results until want ids have one each.
func recvResults(t *testing.T, st pluginpb.Plugin_DeliverStreamClient, want int) map[uint64]*pluginpb.DeliverResult {
	t.Helper()
	got := map[uint64]*pluginpb.DeliverResult{}
	for len(got) < want {
		rb, err := st.Recv()
		if err != nil {
			t.Fatalf("recv after %d results: %v", len(got), err)
		}
		for _, r := range rb.GetResults() {
			if _, dup := got[r.GetId()]; dup {
				t.Fatalf("two results for call %d", r.GetId())
			}
			got[r.GetId()] = r
		}
	}
	return got
}

// Calls on DeliverStream mean what unary Deliver calls mean: each answered
// by id, a whole-call failure as its gRPC code, the call's deadline and the
// host's cancellation reaching the plugin.
func TestDeliverStream(t *testing.T) {
	f := &fake{unblock: make(chan struct{})}
	c := connect(t, f)
	info, err := c.Info(t.Context(), &pluginpb.InfoRequest{})
	if err != nil || !info.GetDeliverStream() {
		t.Fatalf("Info does not announce DeliverStream: %v, %v", info, err)
	}
	st, err := c.DeliverStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	call := func(id uint64, tok string) *pluginpb.DeliverCall {
		return &pluginpb.DeliverCall{Id: id, Request: &pluginpb.DeliverRequest{DeliveryId: fmt.Sprint("d", id), Attempt: 1,
			Call: &pluginpb.Call{Sid: "s"}, Devices: []*pluginpb.Device{{Kind: "fakedev", Token: tok}}}}
	}

	// Before Configure: the unary call's FailedPrecondition.
	if err := st.Send(&pluginpb.DeliverBatch{Calls: []*pluginpb.DeliverCall{call(1, "ok")}}); err != nil {
		t.Fatal(err)
	}
	if r := recvResults(t, st, 1)[1]; r.GetCode() != int32(codes.FailedPrecondition) || r.GetResponse() != nil {
		t.Fatalf("deliver before configure: %v", r)
	}
	configure(t, c, `{"url":"https://x"}`)

	batch := &pluginpb.DeliverBatch{}
	for id := uint64(10); id < 60; id++ {
		batch.Calls = append(batch.Calls, call(id, "ok"))
	}
	dl := call(60, "deadline")
	dl.CallDeadlineUnixNano = time.Now().Add(time.Hour).UnixNano()
	batch.Calls = append(batch.Calls, dl, call(61, "permanent"), call(62, "wait"))
	if err := st.Send(batch); err != nil {
		t.Fatal(err)
	}
	got := recvResults(t, st, 52)
	for id := uint64(10); id < 60; id++ {
		if want := fmt.Sprintf("id-d%d-1-s-", id); got[id].GetResponse().GetOutcomes()[0].GetProviderId() != want {
			t.Errorf("call %d: %v; want provider id %s", id, got[id], want)
		}
	}
	var ok bool
	var ns, ddl int64
	if _, err := fmt.Sscanf(got[60].GetResponse().GetOutcomes()[0].GetProviderId(), "%t %d %d", &ok, &ns, &ddl); err != nil || !ok || ns != dl.CallDeadlineUnixNano {
		t.Errorf("the call's deadline did not reach the plugin: %v", got[60])
	}
	if o := got[61].GetResponse().GetOutcomes()[0]; o.GetKind() != pluginpb.Outcome_KIND_PERMANENT {
		t.Errorf("permanent: %v", o)
	}

	// The host cancels the waiting call: the plugin's ctx ends, and the
	// outcome is the SDK's "canceled" retry.
	if err := st.Send(&pluginpb.DeliverBatch{Cancel: []uint64{62}}); err != nil {
		t.Fatal(err)
	}
	if o := recvResults(t, st, 1)[62].GetResponse().GetOutcomes()[0]; o.GetKind() != pluginpb.Outcome_KIND_RETRY || o.GetReason() != "canceled" {
		t.Errorf("canceled call: %v; want a canceled retry", o)
	}
}

// A long-lived stream keeps nothing of the calls it finished: 20,000 calls
// (with and without deadlines) leave the heap where 2,000 left it.
func TestDeliverStreamKeepsNothing(t *testing.T) {
	c := connect(t, &fake{})
	configure(t, c, `{"url":"https://x"}`)
	st, err := c.DeliverStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(0)
	run := func(n int) {
		for range n / 100 {
			b := &pluginpb.DeliverBatch{}
			for range 100 {
				next++
				cl := &pluginpb.DeliverCall{Id: next, Request: &pluginpb.DeliverRequest{Devices: []*pluginpb.Device{{Token: "ok"}}}}
				if next%2 == 0 {
					cl.CallDeadlineUnixNano = time.Now().Add(time.Hour).UnixNano()
				}
				b.Calls = append(b.Calls, cl)
			}
			if err := st.Send(b); err != nil {
				t.Fatal(err)
			}
			recvResults(t, st, 100)
		}
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	run(2000)
	before := heap()
	run(20000)
	if after := heap(); after > before+512<<10 {
		t.Errorf("heap grew by %d KiB over 18,000 finished calls", (after-before)>>10)
	}
}
