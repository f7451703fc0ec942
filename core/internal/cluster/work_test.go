package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/cluster/redistest"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// testTTL is the heartbeat TTL of the tests that do not measure the
// default's takeover time.
const testTTL = 600 * time.Millisecond

// within is how long a test waits for what should happen in well under a
// second.
const within = 10 * time.Second

// newWork returns a Work on c, closed when the test ends.
func newWork(t testing.TB, c *Client, o WorkOptions) *Work {
	t.Helper()
	w := c.Work(o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	return w
}

// running runs w.Run until the returned stop is called (or the test ends),
// collecting what it hands over.
type running struct {
	stop func()
	mu   sync.Mutex
	got  []journal.Entry
	at   []time.Time // when each batch was handed over, per entry
}

func run(t testing.TB, w *Work) *running {
	t.Helper()
	r := &running{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(es []journal.Entry) {
			r.mu.Lock()
			defer r.mu.Unlock()
			now := time.Now()
			for _, e := range es {
				r.got = append(r.got, e)
				r.at = append(r.at, now)
			}
		})
	}()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(r.stop)
	return r
}

func (r *running) taken() []journal.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// logBuffer is a slog text handler's output, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// eventually polls cond until it holds or within passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hash returns the fields of hash key.
func hash(t testing.TB, c *Client, key string) map[string]string {
	t.Helper()
	m, err := c.rdb.Do(context.Background(), c.rdb.B().Hgetall().Key(key).Build()).AsStrMap()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// members returns the members of sorted set key.
func members(t testing.TB, c *Client, key string) []string {
	t.Helper()
	m, err := c.rdb.Do(context.Background(), c.rdb.B().Zrange().Key(key).Start("0").Stop("-1").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func exists(t testing.TB, c *Client, key string) bool {
	t.Helper()
	n, err := c.rdb.Do(context.Background(), c.rdb.B().Exists().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func callKey(i int) [16]byte { return [16]byte{byte(i), byte(i >> 8), 0xc1} }

func record(i int, deadline time.Time) *journal.Entry {
	return &journal.Entry{Key: fmt.Sprintf("j%04d", i), Deadline: deadline, Data: []byte(fmt.Sprintf("data %d \x00\xff{}", i))}
}

// claimCall claims call 1, due in a minute, on w for a minute and returns
// its record; the test stops unless w wins the claim.
func claimCall(t testing.TB, w *Work) *journal.Entry {
	t.Helper()
	rec := record(1, time.Now().Add(time.Minute))
	if ok, err := w.Claim(context.Background(), callKey(1), time.Minute, rec); !ok || err != nil {
		t.Fatalf("claim: %v, %v", ok, err)
	}
	return rec
}

// Two replicas claiming the same key at the same instant: exactly one
// wins, each time; a key claimed is free again after the window or once
// forgotten. Without a record, nothing but the claim is written.
func TestClaimAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	var replicas [2]*Work
	var clients [2]*Client
	for i := range replicas {
		clients[i] = connect(t, srv, Settings{KeyPrefix: "t:"})
		replicas[i] = newWork(t, clients[i], WorkOptions{})
	}
	for i := range 200 {
		k := [16]byte{byte(i), byte(i >> 8), 1}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, w := range replicas {
			wg.Go(func() {
				ok, err := w.Claim(ctx, k, time.Minute, nil)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("key %d: %d replicas won the claim; want exactly 1", i, n)
		}
	}
	if got := members(t, clients[0], replicas[0].indexKey); len(got) != 0 {
		t.Errorf("claims without a record indexed %v; want nothing", got)
	}
	k := [16]byte{9}
	if ok, _ := replicas[0].Claim(ctx, k, 50*time.Millisecond, nil); !ok {
		t.Fatal("first claim lost")
	}
	if ok, _ := replicas[1].Claim(ctx, k, 50*time.Millisecond, nil); ok {
		t.Fatal("a second claim inside the window won")
	}
	eventually(t, "the claim expires after its window", func() bool {
		ok, _ := replicas[1].Claim(ctx, k, time.Minute, nil)
		return ok
	})
	if err := replicas[1].Forget(ctx, k); err != nil {
		t.Fatal(err)
	}
	if ok, _ := replicas[0].Claim(ctx, k, time.Minute, nil); !ok {
		t.Error("a forgotten claim is still held")
	}
	if held, err := replicas[0].Held(ctx, k); held || err != nil {
		t.Errorf("Held of a claim without a record: got %v, %v; want false", held, err)
	}
}

// Two replicas claim the same key with a record each, at the same
// instant, 200 times (on one node, and on a one-node Redis Cluster): one
// wins, and only its record is written, owned by it.
func TestClaimRecordsAcrossReplicas(t *testing.T) {
	for _, mode := range []string{"single", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var opts []redistest.Option
			if mode == "cluster" {
				opts = append(opts, redistest.WithCluster())
			}
			srv := startRedis(t, opts...)
			ctx := context.Background()
			var replicas [2]*Work
			c := connect(t, srv, Settings{KeyPrefix: "r:"})
			for i := range replicas {
				replicas[i] = newWork(t, connect(t, srv, Settings{KeyPrefix: "r:"}), WorkOptions{ReplicaID: fmt.Sprintf("replica-%d", i)})
			}
			deadline := time.Now().Add(time.Minute)
			for i := range 200 {
				k := callKey(i)
				var won [2]bool
				var wg sync.WaitGroup
				for j, w := range replicas {
					wg.Go(func() {
						rec := &journal.Entry{Key: fmt.Sprintf("%d-%d", i, j), Deadline: deadline, Data: []byte{byte(j), 0, '{'}}
						ok, err := w.Claim(ctx, k, time.Minute, rec)
						if err != nil {
							t.Error(err)
						}
						won[j] = ok
					})
				}
				wg.Wait()
				if won[0] == won[1] {
					t.Fatalf("key %d: wins %v; want exactly one", i, won)
				}
				j := 0
				if won[1] {
					j = 1
				}
				want := map[string]string{
					"k": fmt.Sprintf("%d-%d", i, j),
					"o": replicas[j].ReplicaID(),
					"t": fmt.Sprint(deadline.UnixMilli()),
					"r": string([]byte{byte(j), 0, '{'}),
				}
				if got := hash(t, c, replicas[0].workKey(k)); !maps.Equal(got, want) {
					t.Fatalf("key %d: work %q; want %q", i, got, want)
				}
			}
			// The winner's index lists its calls; a lost claim's member
			// may stay until its deadline.
			var n int
			for _, w := range replicas {
				w.mu.Lock()
				n += len(w.byKey)
				for key, h := range w.byKey {
					if !slices.Contains(members(t, c, w.indexKey), hexOf(h.k)) {
						t.Errorf("work %s of %s is not in its index", key, w.ReplicaID())
					}
				}
				w.mu.Unlock()
			}
			if n != 200 {
				t.Errorf("the replicas hold %d calls; want 200", n)
			}
			ttl, err := c.rdb.Do(ctx, c.rdb.B().Pexpiretime().Key(replicas[0].workKey(callKey(0))).Build()).AsInt64()
			if err != nil || ttl != deadline.Add(time.Minute).UnixMilli() {
				t.Errorf("work expires at %d, %v; want %d (deadline + 60 s)", ttl, err, deadline.Add(time.Minute).UnixMilli())
			}
		})
	}
}

// A prefix keeps deployments apart: the same key claimed under two
// prefixes wins under each.
func TestClaimPrefixes(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	k := [16]byte{7}
	for _, prefix := range []string{"a:", "b:"} {
		w := newWork(t, connect(t, srv, Settings{KeyPrefix: prefix}), WorkOptions{})
		if ok, err := w.Claim(ctx, k, time.Minute, record(1, time.Now().Add(time.Minute))); !ok || err != nil {
			t.Errorf("prefix %s: got %v, %v; want a win", prefix, ok, err)
		}
	}
}

// A Redis that is gone is an error, never a false "duplicate", and the
// failed claim holds nothing.
func TestClaimRedisGone(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	w := newWork(t, connect(t, srv, Settings{}), WorkOptions{})
	srv.Stop()
	for _, rec := range []*journal.Entry{nil, record(1, time.Now().Add(time.Minute))} {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		ok, err := w.Claim(cctx, [16]byte{1}, time.Minute, rec)
		cancel()
		if err == nil || ok {
			t.Errorf("record %v: got %v, %v; want an error and no claim", rec != nil, ok, err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.byKey) != 0 || len(w.byHex) != 0 {
		t.Errorf("a failed claim is held: %v %v", w.byKey, w.byHex)
	}
}

// Delivered and Finish reach Redis without being waited for; Held sees
// the work once claimed, and after it finished; marks of a key this Work
// does not hold write nothing.
func TestMarks(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	c := connect(t, srv, Settings{})
	w := newWork(t, c, WorkOptions{})
	k := callKey(1)
	if held, err := w.Held(ctx, k); held || err != nil {
		t.Fatalf("Held before the claim: %v, %v; want false", held, err)
	}
	rec := claimCall(t, w)
	if held, err := w.Held(ctx, k); !held || err != nil {
		t.Fatalf("Held after the claim: %v, %v; want true", held, err)
	}
	if got := members(t, c, w.indexKey); !slices.Equal(got, []string{hexOf(k)}) {
		t.Errorf("index %v; want the call", got)
	}
	w.Delivered(rec.Key, "apns", "tok-1")
	w.Delivered(rec.Key, "webhook", "")
	w.Delivered("unknown", "apns", "tok-2")
	eventually(t, "the marks reach redis", func() bool { return len(hash(t, c, w.workKey(k))) == 6 })
	got := hash(t, c, w.workKey(k))
	if got["d\x00apns\x00tok-1"] != "1" || got["d\x00webhook\x00"] != "1" {
		t.Errorf("work %q; want both marks", got)
	}
	w.Finish(rec.Key)
	w.Delivered(rec.Key, "apns", "tok-3") // after Finish: ignored
	eventually(t, "the finish reaches redis", func() bool { return hash(t, c, w.workKey(k))["done"] == "1" })
	eventually(t, "the call leaves the index", func() bool { return len(members(t, c, w.indexKey)) == 0 })
	if held, err := w.Held(ctx, k); !held || err != nil {
		t.Errorf("Held after Finish: %v, %v; want true", held, err)
	}
	if held, err := w.Held(ctx, callKey(2)); held || err != nil {
		t.Errorf("Held of an unknown call: %v, %v; want false", held, err)
	}
	time.Sleep(2 * flushEvery)
	if got := hash(t, c, w.workKey(k)); len(got) != 7 {
		t.Errorf("work %q; want k, o, t, r, two marks and done", got)
	}
	keys, err := c.rdb.Do(ctx, c.rdb.B().Keys().Pattern(c.prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{w.claimKey(k), w.workKey(k)}; !slices.Equal(keys, want) {
		t.Errorf("keys %q; want %q (a mark of an unknown key writes nothing)", keys, want)
	}
}

// A call claimed again after its window while this replica still works on
// the first claim: the first's marks do not touch the second's work, and
// finishing the first leaves the second indexed.
func TestClaimedAgainAfterTheWindow(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	c := connect(t, srv, Settings{})
	w := newWork(t, c, WorkOptions{})
	k := callKey(1)
	first, second := record(1, time.Now().Add(time.Minute)), record(2, time.Now().Add(time.Minute))
	if ok, err := w.Claim(ctx, k, 20*time.Millisecond, first); !ok || err != nil {
		t.Fatalf("first claim: %v, %v", ok, err)
	}
	eventually(t, "the window ends", func() bool { return !exists(t, c, w.claimKey(k)) })
	if ok, err := w.Claim(ctx, k, time.Minute, second); !ok || err != nil {
		t.Fatalf("second claim: %v, %v", ok, err)
	}
	w.Delivered(first.Key, "apns", "old")
	w.Finish(first.Key)
	w.Delivered(second.Key, "apns", "new")
	eventually(t, "the second's mark", func() bool { return hash(t, c, w.workKey(k))["d\x00apns\x00new"] == "1" })
	got := hash(t, c, w.workKey(k))
	if got["k"] != second.Key || got["done"] != "" || got["d\x00apns\x00old"] != "" {
		t.Errorf("work %q; want the second's, untouched by the first's marks", got)
	}
	if got := members(t, c, w.indexKey); !slices.Equal(got, []string{hexOf(k)}) {
		t.Errorf("index %v; want the call still", got)
	}
	if err := w.Forget(ctx, k); err != nil {
		t.Fatal(err)
	}
	if exists(t, c, w.claimKey(k)) || exists(t, c, w.workKey(k)) || len(members(t, c, w.indexKey)) != 0 {
		t.Error("Forget left the claim, the work or the index member")
	}
}

// Marks queued while Redis is away are written once it is back.
func TestMarksRetried(t *testing.T) {
	// appendfsync always: every write is on disk before its reply, so the
	// kill loses none.
	srv := startRedis(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	c := connect(t, srv, Settings{})
	w := newWork(t, c, WorkOptions{})
	k := callKey(1)
	rec := claimCall(t, w)
	srv.Stop()
	w.Delivered(rec.Key, "apns", "tok")
	w.Finish(rec.Key)
	time.Sleep(300 * time.Millisecond) // a few failed writes
	srv.Restart(t)
	eventually(t, "the marks are written", func() bool {
		got := hash(t, c, w.workKey(k))
		return got["done"] == "1" && got["d\x00apns\x00tok"] == "1"
	})
	eventually(t, "the call leaves the index", func() bool { return len(members(t, c, w.indexKey)) == 0 })
}

// Marks Redis refuses for a while (BUSY, as LOADING after a restart) are
// written once it takes them; marks it refuses for good are dropped.
func TestMarksRetriedWhileRedisBusy(t *testing.T) {
	srv := startRedis(t, redistest.WithArgs("--busy-reply-threshold", "20"))
	ctx := context.Background()
	c := connect(t, srv, Settings{})
	w := newWork(t, c, WorkOptions{})
	k := callKey(1)
	rec := claimCall(t, w)
	// A script that never ends, on a connection of its own: Redis answers
	// BUSY to everybody else until it is killed.
	busy := connect(t, srv, Settings{})
	go busy.rdb.Do(ctx, busy.rdb.B().Eval().Script("while true do end").Numkeys(0).Build())
	eventually(t, "redis is busy", func() bool {
		err := c.rdb.Do(ctx, c.rdb.B().Get().Key("x").Build()).Error()
		return err != nil && strings.HasPrefix(err.Error(), "BUSY")
	})
	if refused(c.rdb.Do(ctx, c.rdb.B().Get().Key("x").Build()).Error()) {
		t.Error("BUSY taken for a refusal for good")
	}
	w.Delivered(rec.Key, "apns", "tok")
	w.Finish(rec.Key)
	time.Sleep(300 * time.Millisecond) // a few writes answered BUSY
	eventually(t, "the script is killed", func() bool {
		err := c.rdb.Do(ctx, c.rdb.B().ScriptKill().Build()).Error()
		return err == nil || strings.HasPrefix(err.Error(), "NOTBUSY")
	})
	// Redis may answer BUSY for a moment after the kill: until the
	// script's next check of the kill.
	eventually(t, "the marks are written", func() bool {
		got, err := c.rdb.Do(ctx, c.rdb.B().Hgetall().Key(w.workKey(k)).Build()).AsStrMap()
		return err == nil && got["done"] == "1" && got["d\x00apns\x00tok"] == "1"
	})
	eventually(t, "the call leaves the index", func() bool { return len(members(t, c, w.indexKey)) == 0 })

	if err := c.rdb.Do(ctx, c.rdb.B().Set().Key(w.indexKey).Value("not a sorted set").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	err := c.rdb.Do(ctx, c.rdb.B().Zadd().Key(w.indexKey).ScoreMember().ScoreMember(1, "m").Build()).Error()
	if !refused(err) {
		t.Errorf("%v: not taken for a refusal for good", err)
	}
}

// Marks past the queue's bound are dropped, counted and logged.
func TestMarksDroppedWhenTooMany(t *testing.T) {
	srv := startRedis(t)
	var logs logBuffer
	metrics := telemetry.NewMetrics()
	w := newWork(t, connect(t, srv, Settings{}), WorkOptions{Logger: logs.logger(), Metrics: metrics})
	rec := claimCall(t, w)
	srv.Stop()
	for i := range maxQueue + 10 {
		w.Delivered(rec.Key, "apns", fmt.Sprint(i))
	}
	eventually(t, "the marks past the bound are counted", func() bool { return testutil.ToFloat64(metrics.ClusterMarksDropped) >= 10 })
	eventually(t, "the marks dropped are logged", func() bool { return strings.Contains(logs.String(), "cluster: marks of pending work dropped") })
	srv.Restart(t) // so that Close writes them and returns
}

// The takeover of a replica that died: every call it held is handed over
// once, to one of the live replicas, with its key, data, deadline and
// marks, within about the heartbeat TTL and two ticks; a call past its
// deadline is finished, not handed over. On one node with the default TTL
// (the time measured is logged), and on a one-node Redis Cluster.
func TestTakeover(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		opts []redistest.Option
	}{
		{"single default ttl", 0, nil},
		{"cluster", testTTL, []redistest.Option{redistest.WithCluster()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testTakeover(t, tc.ttl, tc.opts...)
		})
	}
}

func testTakeover(t *testing.T, ttl time.Duration, opts ...redistest.Option) {
	srv := startRedis(t, opts...)
	ctx := context.Background()
	var logs logBuffer
	metrics := telemetry.NewMetrics()
	newReplica := func(name string) *Work {
		return newWork(t, connect(t, srv, Settings{KeyPrefix: "tk:"}), WorkOptions{ReplicaID: name, HeartbeatTTL: ttl, Logger: logs.logger().With("replica_log", name), Metrics: metrics})
	}
	if ttl == 0 {
		ttl = DefaultHeartbeatTTL
	}
	a, b, cc := newReplica("a"), newReplica("b"), newReplica("c")
	rb, rc := run(t, b), run(t, cc)
	c := a.c

	const n = 50
	deadline := time.Now().Add(time.Minute)
	want := map[string]journal.Entry{}
	for i := range n {
		rec := record(i, deadline)
		if ok, err := a.Claim(ctx, callKey(i), time.Minute, rec); !ok || err != nil {
			t.Fatalf("claim %d: %v, %v", i, ok, err)
		}
		e := journal.Entry{Key: rec.Key, Deadline: time.UnixMilli(deadline.UnixMilli()), Data: rec.Data}
		if i%3 == 0 {
			a.Delivered(rec.Key, "apns", fmt.Sprint("tok-", i))
			e.Delivered = map[[2]string]bool{{"apns", fmt.Sprint("tok-", i)}: true}
		}
		if i%5 == 0 {
			a.Delivered(rec.Key, "webhook", "")
			if e.Delivered == nil {
				e.Delivered = map[[2]string]bool{}
			}
			e.Delivered[[2]string{"webhook", ""}] = true
		}
		want[rec.Key] = e
	}
	// One past its deadline by the time it is taken, one finished.
	past := record(n, time.Now().Add(100*time.Millisecond))
	finished := record(n+1, deadline)
	for i, rec := range []*journal.Entry{past, finished} {
		if ok, err := a.Claim(ctx, callKey(n+i), time.Minute, rec); !ok || err != nil {
			t.Fatalf("claim: %v, %v", ok, err)
		}
	}
	a.Finish(finished.Key)
	eventually(t, "a's marks reach redis", func() bool {
		return hash(t, c, a.workKey(callKey(n+1)))["done"] == "1" && hash(t, c, a.workKey(callKey(0)))["d\x00webhook\x00"] == "1"
	})

	// a heartbeats only now, so that it does not sweep the call past its
	// deadline from its index before it dies.
	ra := run(t, a)
	eventually(t, "a heartbeats", func() bool { return exists(t, c, a.hbKey) })
	ra.stop() // a dies: its heartbeat lapses
	died := time.Now()
	eventually(t, "the calls are taken over", func() bool { return len(rb.taken())+len(rc.taken()) >= n })
	time.Sleep(3 * ttl / 8) // a tick or so more: nothing else comes
	got := map[string]journal.Entry{}
	var last time.Time
	for _, r := range []*running{rb, rc} {
		r.mu.Lock()
		for i, e := range r.got {
			if _, dup := got[e.Key]; dup {
				t.Errorf("%s handed over twice", e.Key)
			}
			got[e.Key] = e
			if r.at[i].After(last) {
				last = r.at[i]
			}
		}
		r.mu.Unlock()
	}
	t.Logf("takeover: %d calls handed over %v after the replica died (heartbeat TTL %v): b %d, c %d", len(got), last.Sub(died).Round(time.Millisecond), ttl, len(rb.taken()), len(rc.taken()))
	if !maps.EqualFunc(got, want, func(g, w journal.Entry) bool {
		return g.Key == w.Key && g.Deadline.Equal(w.Deadline) && bytes.Equal(g.Data, w.Data) && maps.Equal(g.Delivered, w.Delivered)
	}) {
		for k, e := range got {
			if w, ok := want[k]; !ok || !e.Deadline.Equal(w.Deadline) || !bytes.Equal(e.Data, w.Data) || !maps.Equal(e.Delivered, w.Delivered) {
				t.Errorf("handed over %+v; want %+v", e, w)
			}
		}
		t.Fatalf("handed over %d calls; want the %d a held", len(got), len(want))
	}
	if d := last.Sub(died); d > 3*ttl+2*time.Second {
		t.Errorf("the calls were handed over %v after the replica died; want about the TTL %v and two ticks", d, ttl)
	}
	// Each call is its taker's now: owned and indexed by it.
	for _, tk := range []struct {
		w *Work
		r *running
	}{{b, rb}, {cc, rc}} {
		idx := members(t, c, tk.w.indexKey)
		for _, e := range tk.r.taken() {
			var i int
			fmt.Sscanf(e.Key, "j%d", &i)
			if o := hash(t, c, a.workKey(callKey(i)))["o"]; o != tk.w.ReplicaID() {
				t.Errorf("%s: owner %q; want its taker %q", e.Key, o, tk.w.ReplicaID())
			}
			if !slices.Contains(idx, hexOf(callKey(i))) {
				t.Errorf("%s is not in its taker's index", e.Key)
			}
		}
	}
	if got := hash(t, c, a.workKey(callKey(n)))["done"]; got != "1" {
		t.Errorf("the call past its deadline: done %q; want 1 (finished, not handed over)", got)
	}
	eventually(t, "a is gone from redis", func() bool {
		return !exists(t, c, a.indexKey) && !slices.Contains(members(t, c, a.replicasKey), "a") && !exists(t, c, a.c.prefix+"take:{a}")
	})
	if got := strings.Count(logs.String(), "took over the calls of a replica whose heartbeat lapsed"); got != 1 {
		t.Errorf("%d takeover log lines; want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "replica=a calls=") || !strings.Contains(logs.String(), "dropped_past_deadline=1") {
		t.Errorf("the takeover log line does not name the replica and the counts:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(metrics.ClusterTakeovers); got != 1 {
		t.Errorf("ringside_cluster_takeovers_total = %v; want 1", got)
	}
	if got := testutil.ToFloat64(metrics.ClusterCallsTaken); got != n {
		t.Errorf("ringside_cluster_calls_taken_total = %v; want %d", got, n)
	}

	// The takers mark what they took like their own.
	var e journal.Entry
	taker := b
	if len(rb.taken()) > 0 {
		e = rb.taken()[0]
	} else {
		e, taker = rc.taken()[0], cc
	}
	var i int
	fmt.Sscanf(e.Key, "j%d", &i)
	taker.Delivered(e.Key, "fcm", "new")
	taker.Finish(e.Key)
	eventually(t, "the taker's marks", func() bool {
		h := hash(t, c, a.workKey(callKey(i)))
		return h["done"] == "1" && h["d\x00fcm\x00new"] == "1" && !slices.Contains(members(t, c, taker.indexKey), hexOf(callKey(i)))
	})
}

// A replica that closes with work pending has it taken over at once, at
// the next tick of a live replica, not once a heartbeat lapses; one that
// closes with none is gone, and nobody takes anything over.
func TestClose(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	var logs logBuffer
	const ttl = 2 * time.Second // long, so a lapse would show
	b := newWork(t, connect(t, srv, Settings{KeyPrefix: "cl:"}), WorkOptions{ReplicaID: "b", HeartbeatTTL: ttl, Logger: logs.logger()})
	rb := run(t, b)
	c := b.c

	idle := newWork(t, connect(t, srv, Settings{KeyPrefix: "cl:"}), WorkOptions{ReplicaID: "idle", HeartbeatTTL: ttl})
	ri := run(t, idle)
	rec := claimCall(t, idle)
	idle.Finish(rec.Key)
	if ok, err := idle.Claim(ctx, callKey(1), time.Minute, record(9, time.Now().Add(time.Minute))); ok || err != nil {
		t.Fatalf("a lost claim: %v, %v", ok, err)
	}
	eventually(t, "b may take over", b.mayTakeOver)
	ri.stop()
	if err := idle.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if exists(t, c, idle.hbKey) || exists(t, c, idle.indexKey) || slices.Contains(members(t, c, idle.replicasKey), "idle") {
		t.Error("a replica closed with nothing pending left its heartbeat, index or entry")
	}

	busy := newWork(t, connect(t, srv, Settings{KeyPrefix: "cl:"}), WorkOptions{ReplicaID: "busy", HeartbeatTTL: ttl})
	rbusy := run(t, busy)
	eventually(t, "busy heartbeats", func() bool { return exists(t, c, busy.hbKey) })
	rec = record(2, time.Now().Add(time.Minute))
	if ok, err := busy.Claim(ctx, callKey(2), time.Minute, rec); !ok || err != nil {
		t.Fatalf("claim: %v, %v", ok, err)
	}
	busy.Delivered(rec.Key, "apns", "t")
	rbusy.stop()
	closed := time.Now()
	if err := busy.Close(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b takes busy's call", func() bool { return len(rb.taken()) == 1 })
	took := time.Since(closed)
	t.Logf("a call of a replica closed with work pending was taken over in %v", took.Round(time.Millisecond))
	if took >= ttl {
		t.Errorf("taken over %v after Close; want before the heartbeat TTL %v would have lapsed", took, ttl)
	}
	if got := rb.taken()[0]; got.Key != rec.Key || !got.Delivered[[2]string{"apns", "t"}] {
		t.Errorf("took %+v; want %s with its mark written before Close", got, rec.Key)
	}
	time.Sleep(ttl / 4)
	if got := strings.Count(logs.String(), "took over the calls"); got != 1 {
		t.Errorf("%d takeovers logged; want 1 (busy's, not idle's):\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "replica=busy calls=1") {
		t.Errorf("no takeover of busy logged:\n%s", logs.String())
	}
}

// A restart of Redis while replicas run: Run keeps going, heartbeats
// resume, and no live replica's work is taken over, whether Redis comes
// back empty or with its keys (persistence) after the heartbeats lapsed;
// once the replica then dies, its work is taken over.
func TestRedisRestartTakesNothingOver(t *testing.T) {
	for _, persist := range []bool{false, true} {
		t.Run(fmt.Sprintf("persistence %v", persist), func(t *testing.T) {
			var opts []redistest.Option
			if persist {
				// Every write on disk before its reply: the kill loses none.
				opts = append(opts, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
			}
			srv := startRedis(t, opts...)
			ctx := context.Background()
			var logs logBuffer
			a := newWork(t, connect(t, srv, Settings{KeyPrefix: "rs:"}), WorkOptions{ReplicaID: "a", HeartbeatTTL: testTTL, Logger: logs.logger()})
			b := newWork(t, connect(t, srv, Settings{KeyPrefix: "rs:"}), WorkOptions{ReplicaID: "b", HeartbeatTTL: testTTL, Logger: logs.logger()})
			defer func() {
				if t.Failed() {
					keys, _ := a.c.rdb.Do(ctx, a.c.rdb.B().Keys().Pattern("*").Build()).AsStrSlice()
					t.Logf("keys %q; logs:\n%s", keys, logs.String())
				}
			}()
			c := a.c
			ra, rb := run(t, a), run(t, b)
			eventually(t, "both may take over", func() bool { return a.mayTakeOver() && b.mayTakeOver() })
			rec := claimCall(t, a)
			srv.Stop()
			time.Sleep(2 * testTTL) // every heartbeat's TTL passes
			srv.Restart(t)
			eventually(t, "heartbeats resume", func() bool { return exists(t, c, a.hbKey) && exists(t, c, b.hbKey) })
			time.Sleep(3 * testTTL)
			if got := append(ra.taken(), rb.taken()...); len(got) != 0 {
				t.Fatalf("took over %d calls of live replicas after the restart", len(got))
			}
			if !a.mayTakeOver() || !b.mayTakeOver() {
				t.Error("heartbeats resumed, but a replica still may not take over")
			}
			if !persist {
				return
			}
			ra.stop()
			eventually(t, "b takes the call of a, dead now", func() bool { return len(rb.taken()) == 1 })
			if got := rb.taken()[0]; got.Key != rec.Key {
				t.Errorf("took %s; want %s", got.Key, rec.Key)
			}
		})
	}
}

// A replica that just (re)connected does not take over others until its
// own heartbeats have succeeded for a TTL and a tick.
func TestNoTakeoverBeforeHeartbeatsHeld(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newWork(t, connect(t, srv, Settings{KeyPrefix: "nb:"}), WorkOptions{ReplicaID: "a", HeartbeatTTL: testTTL})
	ra := run(t, a)
	eventually(t, "a heartbeats", func() bool { return exists(t, a.c, a.hbKey) })
	if ok, err := a.Claim(ctx, callKey(1), time.Minute, record(1, time.Now().Add(time.Minute))); !ok || err != nil {
		t.Fatalf("claim: %v, %v", ok, err)
	}
	ra.stop()
	eventually(t, "a's heartbeat lapses", func() bool { return !exists(t, a.c, a.hbKey) })
	b := newWork(t, connect(t, srv, Settings{KeyPrefix: "nb:"}), WorkOptions{ReplicaID: "b", HeartbeatTTL: testTTL})
	started := time.Now()
	rb := run(t, b)
	eventually(t, "b takes a's call", func() bool { return len(rb.taken()) == 1 })
	if d := time.Since(started); d < testTTL+testTTL/8 {
		t.Errorf("b took over %v after it started; want no sooner than %v", d, testTTL+testTTL/8)
	}
}

// Close ends Run, even with its context still live, and every goroutine
// the Work started; Run running shows up in the check.
func TestCloseEndsWorkGoroutines(t *testing.T) {
	srv := startRedis(t)
	c := connect(t, srv, Settings{})
	ctx := context.Background()
	w := c.Work(WorkOptions{HeartbeatTTL: testTTL})
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		w.Run(ctx, func([]journal.Entry) {})
	}()
	rec := claimCall(t, w)
	w.Delivered(rec.Key, "apns", "t")
	w.Finish(rec.Key)
	time.Sleep(testTTL)
	if g := workGoroutines(); !strings.Contains(g, "(*Work).writer") || !strings.Contains(g, "(*Work).heartbeats") {
		t.Fatalf("the check does not see the Work's goroutines:\n%s", g)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(within):
		t.Fatal("Run did not return after Close")
	}
	if got := hash(t, c, w.workKey(callKey(1)))["done"]; got != "1" {
		t.Errorf("Close did not flush the finish: done %q", got)
	}
	if _, err := w.Claim(ctx, callKey(2), time.Minute, record(2, time.Now().Add(time.Minute))); err == nil {
		t.Error("Claim after Close: no error")
	}
	eventually(t, "the Work's goroutines end", func() bool { return workGoroutines() == "" })
}

// workGoroutines returns the stacks of the goroutines running the code of
// Work (not the client's, which the Client owns).
func workGoroutines() string {
	buf := make([]byte, 1<<20)
	var b strings.Builder
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "cluster.(*Work)") && !strings.Contains(g, "workGoroutines") {
			b.WriteString(g + "\n\n")
		}
	}
	return b.String()
}

func TestReplicaID(t *testing.T) {
	srv := startRedis(t)
	c := connect(t, srv, Settings{KeyPrefix: "p:"})
	for _, tc := range []struct{ given, want string }{
		{"pod-1", "pod-1"},
		{"a{b}", "617b627d"},
	} {
		w := newWork(t, c, WorkOptions{ReplicaID: tc.given})
		if got := w.ReplicaID(); got != tc.want {
			t.Errorf("ReplicaID(%q) = %q; want %q", tc.given, got, tc.want)
		}
		if w.hbKey != "p:hb:{"+tc.want+"}" || w.indexKey != "p:wi:{"+tc.want+"}" {
			t.Errorf("keys %q, %q", w.hbKey, w.indexKey)
		}
	}
	a, b := newWork(t, c, WorkOptions{}), newWork(t, c, WorkOptions{})
	if a.ReplicaID() == b.ReplicaID() || strings.ContainsAny(a.ReplicaID(), "{}") || strings.Count(a.ReplicaID(), "-") < 2 {
		t.Errorf("random ids %q, %q; want two different <hostname>-<pid>-<hex>", a.ReplicaID(), b.ReplicaID())
	}
}

// The claim's cost: one round trip; with a record, the work and the index
// too.
func BenchmarkClaim(b *testing.B) {
	srv := startRedis(b)
	c := connect(b, srv, Settings{})
	var n uint64 // a new call each time
	for _, size := range []int{-1, 2048} {
		name := "no record"
		if size >= 0 {
			name = fmt.Sprintf("record %d B", size)
		}
		b.Run(name, func(b *testing.B) {
			w := newWork(b, c, WorkOptions{})
			ctx := context.Background()
			data := bytes.Repeat([]byte{'x'}, max(size, 0))
			deadline := time.Now().Add(time.Hour)
			keys := make([]string, b.N)
			for i := range keys {
				keys[i] = fmt.Sprint("bench-", i)
			}
			var e journal.Entry
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				var k [16]byte
				n++
				for j := range 8 {
					k[j] = byte(n >> (8 * j))
				}
				var rec *journal.Entry
				if size >= 0 {
					e = journal.Entry{Key: keys[i], Deadline: deadline, Data: data}
					rec = &e
				}
				if ok, err := w.Claim(ctx, k, time.Hour, rec); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
