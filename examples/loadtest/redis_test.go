package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadRESP(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
		err  bool
	}{
		{"status", "+OK\r\n", "OK", false},
		{"integer", ":-12\r\n", int64(-12), false},
		{"bulk", "$5\r\nhe\r\nl\r\n", "he\r\nl", false},
		{"nil bulk", "$-1\r\n", nil, false},
		{"array", "*2\r\n$1\r\n0\r\n*1\r\n:3\r\n", []any{"0", []any{int64(3)}}, false},
		{"nil array", "*-1\r\n", nil, false},
		{"error", "-ERR wrong\r\n", nil, true},
		{"short bulk", "$9\r\nabc\r\n", nil, true},
		{"unknown type", "!x\r\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRESP(bufio.NewReader(strings.NewReader(tc.in)))
			if (err != nil) != tc.err {
				t.Fatalf("error %v; want an error: %t", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v; want %#v", got, tc.want)
			}
		})
	}
}

// info is an INFO reply with the fields redisStats reads.
func info(set, eval, infos, in, out int64, cpu string, mem, keys int64) string {
	var b strings.Builder
	b.WriteString("# Commandstats\r\n")
	b.WriteString("cmdstat_set:calls=" + itoa(set) + ",usec=5,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n")
	b.WriteString("cmdstat_eval:calls=" + itoa(eval) + ",usec=5,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n")
	b.WriteString("cmdstat_info:calls=" + itoa(infos) + ",usec=5,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n")
	b.WriteString("\r\n# Stats\r\ntotal_net_input_bytes:" + itoa(in) + "\r\ntotal_net_output_bytes:" + itoa(out) + "\r\ntracking_total_keys:" + itoa(keys/2) + "\r\n")
	b.WriteString("\r\n# CPU\r\nused_cpu_sys:" + cpu + "\r\nused_cpu_user:" + cpu + "\r\n")
	b.WriteString("\r\n# Memory\r\nused_memory:" + itoa(mem) + "\r\nused_memory_rss:" + itoa(2*mem) + "\r\n")
	b.WriteString("\r\n# Keyspace\r\ndb0:keys=" + itoa(keys) + ",expires=0,avg_ttl=0\r\n")
	return b.String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCostSubtractsIdleAndOwnReadings(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := parseInfo(info(100, 10, 5, 10_000, 50_000, "1.000000", 1<<20, 10))
	a.At, a.RequestLen, a.ReplyLen = t0, 60, 900
	b := parseInfo(info(2_100, 1_010, 6, 310_060, 250_900, "1.500000", 1<<20+100_000, 1_010))
	b.At, b.RequestLen, b.ReplyLen = t0.Add(10*time.Second), 60, 950
	// The background: 4 SETs a second, 100 B in and out, 1 ms of CPU.
	idle := &redisDelta{Seconds: 1, Calls: map[string]float64{"set": 4}, NetIn: 100, NetOut: 100, CPU: time.Millisecond}

	c := cost(a, b, idle, 1000)
	// 2,000 SETs less 40 of background; 1,000 EVALs; the reading's INFO is not a command of ringside's.
	want := map[string]float64{"set": 1.96, "eval": 1}
	if !reflect.DeepEqual(c.Calls, want) {
		t.Errorf("calls per callback %v; want %v", c.Calls, want)
	}
	if c.Ops != 2.96 {
		t.Errorf("ops %v; want 2.96", c.Ops)
	}
	// In: 300,060 less b's own request (60) less 1,000 B of background.
	if c.BytesIn != 299 {
		t.Errorf("bytes in %v; want 299", c.BytesIn)
	}
	// Out: 200,900 less a's own reply (900) less 1,000 B of background.
	if c.BytesOut != 199 {
		t.Errorf("bytes out %v; want 199", c.BytesOut)
	}
	// CPU: 1 s (user + sys) less 10 ms, over 1,000 callbacks.
	if c.CPUms < 0.989 || c.CPUms > 0.991 {
		t.Errorf("cpu per callback %v ms; want 0.99", c.CPUms)
	}
	if c.MemoryPer != 100 || c.KeysPer != 1 {
		t.Errorf("memory %v B and %v keys per callback; want 100 and 1", c.MemoryPer, c.KeysPer)
	}
	if c.Tracked != 505 {
		t.Errorf("tracked keys %d; want 505 (the last reading's)", c.Tracked)
	}
	if c.RawCPUCores < 0.099 || c.RawCPUCores > 0.101 {
		t.Errorf("cores %v; want 0.1", c.RawCPUCores)
	}
}

func TestVariants(t *testing.T) {
	tests := []struct {
		name string
		o    options
		want []string
	}{
		{"default", options{Mode: "both"}, []string{nameEmbedded, nameBaseline}},
		{"ringside", options{Mode: "ringside"}, []string{nameEmbedded}},
		{"baseline", options{Mode: "baseline", Cluster: true}, []string{nameBaseline}},
		{"cluster", options{Mode: "both", Cluster: true}, []string{nameCluster, nameBaseline}},
		{"redis", options{Mode: "ringside", Redis: "127.0.0.1:1"}, []string{nameCluster}},
		{"compare", options{Mode: "both", CompareCluster: true}, []string{nameEmbedded, nameCluster, nameBaseline}},
		{"compare ringside", options{Mode: "ringside", CompareCluster: true}, []string{nameEmbedded, nameCluster}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.variants(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v; want %v", got, tc.want)
			}
		})
	}
	three := []string{"a", "b", "c"}
	for run, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if got := rotate(three, run); !reflect.DeepEqual(got, want) {
			t.Errorf("rotate(%v, %d) = %v; want %v", three, run, got, want)
		}
	}
}

// needRedis skips a test on a machine without redis-server.
func needRedis(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed: apt-get install redis-server")
	}
}

// TestRedisStatsOnARealServer checks, on a real redis-server, that a
// reading leaves its own INFOs out: the bytes between two readings are
// exactly another connection's traffic, and its commands are counted, a
// script's inner ones under their own names.
func TestRedisStatsOnARealServer(t *testing.T) {
	needRedis(t)
	srv, err := startRedis(filepath.Join(t.TempDir(), "redis"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	probe, err := newRedisProbe(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	other, err := dialRedis(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	a, err := probe.conn.stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"SET", "k1", "v"}, {"SET", "k2", "v"}, {"ZADD", "z", "1", "m"},
		{"EVAL", "redis.call('SET', KEYS[1], '1'); return redis.call('ZADD', KEYS[2], 2, 'n')", "2", "k3", "z"},
	} {
		if _, err := other.do(cmd...); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	b, err := probe.conn.stats()
	if err != nil {
		t.Fatal(err)
	}
	d := diff(a, b)
	want := map[string]float64{"set": 3, "zadd": 2, "eval": 1}
	if !reflect.DeepEqual(d.Calls, want) {
		t.Errorf("calls %v; want %v", d.Calls, want)
	}
	if d.NetIn != float64(other.wrote) || d.NetOut != float64(other.read) {
		t.Errorf("net in %v, out %v; want the other connection's %d written, %d read", d.NetIn, d.NetOut, other.wrote, other.read)
	}
	if b.Keys-a.Keys != 4 {
		t.Errorf("keys grew by %d; want 4", b.Keys-a.Keys)
	}

	// deletePrefix removes the keys under a prefix, and only those.
	if _, err := other.do("SET", "lt:x", "1"); err != nil {
		t.Fatal(err)
	}
	if n, err := countPrefix(srv.addr, "lt:"); err != nil || n != 1 {
		t.Fatalf("countPrefix = %d, %v; want 1", n, err)
	}
	if n, err := deletePrefix(srv.addr, "lt:"); err != nil || n != 1 {
		t.Fatalf("deletePrefix = %d, %v; want 1", n, err)
	}
	if rep, err := other.do("EXISTS", "lt:x", "k1"); err != nil || rep != int64(1) {
		t.Fatalf("EXISTS lt:x k1 = %v, %v; want 1 (k1 only)", rep, err)
	}
}

// TestSmokeCluster runs one second of load at a low rate against ringside
// embedded, ringside in cluster mode on a redis-server of its own, and the
// baseline.
func TestSmokeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ringside and runs three one-second loads; not in -short")
	}
	needRedis(t)
	var out bytes.Buffer
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	o := options{Mode: "both", Rate: 50, Duration: time.Second, Warmup: 200 * time.Millisecond, Drain: 3 * time.Second,
		Conns: 8, Inflight: 1000, Timeout: 5 * time.Second, CheckJWT: true, Journal: true,
		CompareCluster: true, RedisPrefix: "ringside:", RedisIdle: 500 * time.Millisecond, JSON: jsonPath}
	if err := run(t.Context(), o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, want := range []string{"ringside: 50/s", "ringside-cluster: 50/s", "baseline: 50/s",
		"ringside / baseline:", "ringside-cluster / baseline:", "ringside-cluster / ringside (embedded):",
		"redis per accepted callback (50;", "ringside-cluster: 50 callees in its Redis"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Count(out.String(), "lost 0 ") != 3 {
		t.Errorf("a push was lost:\n%s", out.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Results []*result }
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Results {
		switch {
		case r.Name == nameCluster && r.Redis == nil:
			t.Errorf("%s: no Redis figures", r.Name)
		case r.Name == nameCluster && r.Redis.Ops < 1:
			// Each accepted callback is claimed in Redis at least.
			t.Errorf("%s: %.2f Redis ops per callback; want ≥ 1 (%v)", r.Name, r.Redis.Ops, r.Redis.Calls)
		case r.Name != nameCluster && r.Redis != nil:
			t.Errorf("%s: Redis figures %+v", r.Name, r.Redis)
		}
	}
}
