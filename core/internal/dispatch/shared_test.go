package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/cluster"
	"github.com/ringside/ringside/core/internal/cluster/redistest"
	"github.com/ringside/ringside/core/internal/route"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// Two replicas on one Redis, given the same callbacks at the same instant,
// accept each once between them; with Redis gone each decides alone and
// counts the failure.
func TestSharedDedupAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	f := newFixture(t)
	f.put(t, "apns", t0, "a1")
	var replicas [2]*Dispatcher
	metrics := [2]*telemetry.Metrics{telemetry.NewMetrics(), telemetry.NewMetrics()}
	for i := range replicas {
		c, err := cluster.Connect(ctx, cluster.Settings{Addresses: []string{srv.Addr()}, KeyPrefix: "t:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		replicas[i] = New(Options{Planner: f.planner(&route.Route{Name: "r", Notify: []string{"ios"}}), SharedDedup: c.Work(cluster.WorkOptions{}), Metrics: metrics[i]})
	}
	const calls = 100
	accepted := 0
	for i := range calls {
		c := liveCall()
		c.SID = sidN(i)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, d := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cc := *c
				ans, err := d.Accept(ctx, &cc, true)
				if err != nil {
					t.Error(err)
				}
				if ans.Status == callback.StatusAccepted {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	for _, d := range replicas {
		_ = d.Wait(ctx)
	}
	if accepted != calls {
		t.Errorf("accepted %d times for %d callbacks sent to both replicas; want each once", accepted, calls)
	}
	if got := f.plugins["ios"].calls; got != calls {
		t.Errorf("%d pushes for %d callbacks; want one each", got, calls)
	}

	srv.Stop()
	c := liveCall()
	c.SID = sidN(calls)
	for i, d := range replicas {
		cc := *c
		start := time.Now()
		if ans, _ := d.Accept(ctx, &cc, true); ans.Status != callback.StatusAccepted {
			t.Errorf("replica %d with Redis gone: got %s; want accepted by its own dedup", i, ans.Status)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("replica %d waited %v on a gone Redis", i, took)
		}
		if got := testutil.ToFloat64(metrics[i].SharedDedupErrors); got != 1 {
			t.Errorf("replica %d: dedup errors %v; want 1", i, got)
		}
	}
	for _, d := range replicas {
		_ = d.Wait(ctx)
	}
}

// sidN is a distinct valid sid for each n.
func sidN(n int) string {
	const hex = "0123456789abcdef"
	b := []byte("00000000-0000-4000-8000-000000000000")
	for i, pos := 0, len(b)-1; i < 8; i, pos = i+1, pos-1 {
		b[pos] = hex[n&0xf]
		n >>= 4
	}
	return string(b)
}
