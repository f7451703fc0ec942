package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// startRedis makes cluster mode's Redis ready: it starts a redis-server
// of its own, or checks -redis holds nothing under the key prefix, and
// opens the probe. The returned func stops what it started and removes the
// keys it wrote to -redis.
func (e *env) startRedis() (func(), error) {
	var stop []func()
	undo := func() {
		for _, f := range slices.Backward(stop) {
			f()
		}
	}
	if e.o.Redis != "" {
		e.redisAddr = e.o.Redis
		n, err := countPrefix(e.redisAddr, e.o.RedisPrefix)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, fmt.Errorf("-redis %s holds keys under %q: choose another -redis-prefix (the load generator deletes its keys when it ends)", e.redisAddr, e.o.RedisPrefix)
		}
		stop = append(stop, func() {
			if n, err := deletePrefix(e.redisAddr, e.o.RedisPrefix); err != nil {
				fmt.Fprintf(e.out, "redis: deleting the keys under %q: %v (%d deleted)\n", e.o.RedisPrefix, err, n)
			}
		})
	} else {
		srv, err := startRedis(filepath.Join(e.dir, "redis"))
		if err != nil {
			return nil, err
		}
		e.redisAddr = srv.addr
		stop = append(stop, srv.stop)
	}
	p, err := newRedisProbe(e.redisAddr)
	if err != nil {
		undo()
		return nil, err
	}
	e.probe = p
	stop = append(stop, func() { _ = p.Close() })
	version := "?"
	if rep, err := p.conn.do("INFO", "server"); err == nil {
		if text, ok := rep.(string); ok {
			for line := range strings.SplitSeq(text, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					version = v
				}
			}
		}
	}
	how := "started by the load generator: loopback, no persistence; it shares the CPUs with everything else"
	if e.o.Redis != "" {
		how = "given with -redis"
	}
	fmt.Fprintf(e.out, "redis %s on %s (%s); key_prefix %q\n", version, e.redisAddr, how, e.o.RedisPrefix)
	return undo, nil
}

// countPrefix returns how many keys of the Redis at addr start with
// prefix, stopping at the first one found.
func countPrefix(addr, prefix string) (int, error) {
	c, err := dialRedis(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	cursor := "0"
	for {
		rep, err := c.do("SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000")
		if err != nil {
			return 0, err
		}
		a, ok := rep.([]any)
		if !ok || len(a) != 2 {
			return 0, errors.New("redis: SCAN answered an unexpected reply")
		}
		cursor, _ = a[0].(string)
		if keys, _ := a[1].([]any); len(keys) > 0 {
			return len(keys), nil
		}
		if cursor == "0" {
			return 0, nil
		}
	}
}

// loadAvg is the box's load average (1, 5 and 15 minutes), to be noted
// beside each figure: other work on the box slows every server.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// median is the median of vs (0 for none).
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Sorted(slices.Values(vs))
	if len(vs)%2 == 0 {
		return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return vs[len(vs)/2]
}

// ratio is x/y as "1.23×", or "n/a".
func ratio(x, y float64) string {
	if y == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", x/y)
}

// redisOf returns r's Redis cost, or a zero one.
func redisOf(r *result) redisCost {
	if r == nil || r.Redis == nil {
		return redisCost{}
	}
	return *r.Redis
}

// printClusterRatios prints one run's cluster-mode figures over the
// embedded mode's.
func printClusterRatios(w io.Writer, emb, clu *result) {
	if emb == nil || clu == nil {
		return
	}
	rc := redisOf(clu)
	fmt.Fprintf(w, "\n%s / %s (embedded):\n", nameCluster, nameEmbedded)
	lat := func(name string, c, e float64) {
		fmt.Fprintf(w, "  %-18s %.3f / %.3f ms = %s  (%+.3f ms)\n", name, c, e, ratio(c, e), c-e)
	}
	lat("e2e p50", clu.E2E.P50, emb.E2E.P50)
	lat("e2e p99", clu.E2E.P99, emb.E2E.P99)
	lat("response p50", clu.Resp.P50, emb.Resp.P50)
	lat("response p99", clu.Resp.P99, emb.Resp.P99)
	fmt.Fprintf(w, "  %-18s %.4f / %.4f ms = %s; ringside process %.4f / %.4f, plugin %.4f / %.4f; redis-server %.4f more\n",
		"cpu per callback", clu.CPUPer, emb.CPUPer, ratio(clu.CPUPer, emb.CPUPer),
		clu.CPUServerPer, emb.CPUServerPer, clu.CPUPluginPer, emb.CPUPluginPer, rc.CPUms)
	fmt.Fprintf(w, "  %-18s %.1f / %.1f MiB (ringside + plugin); redis-server rss %.1f MiB\n", "peak rss", clu.PeakRSS, emb.PeakRSS, rc.RSSMiB)
	fmt.Fprintf(w, "  %-18s %d / %d, duplicates %d / %d\n", "lost", clu.Lost, emb.Lost, clu.Duplicates, emb.Duplicates)
}

// printClusterMedians prints, over the runs, each figure of both modes:
// every run's value and the median, and the median of the per-run ratios
// and differences.
func printClusterMedians(w io.Writer, emb, clu []*result) {
	n := min(len(emb), len(clu))
	if n == 0 {
		return
	}
	emb, clu = emb[:n], clu[:n]
	vals := func(rs []*result, get func(*result) float64) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = get(r)
		}
		return out
	}
	list := func(vs []float64, format string) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmt.Sprintf(format, v)
		}
		return strings.Join(parts, " ")
	}
	fmt.Fprintf(w, "\nover %d runs, median [each run] (%s vs %s):\n", n, nameCluster, nameEmbedded)
	both := func(name, unit, format string, get func(*result) float64) {
		c, e := vals(clu, get), vals(emb, get)
		rs, ds := make([]float64, n), make([]float64, n)
		for i := range n {
			if e[i] != 0 {
				rs[i] = c[i] / e[i]
			}
			ds[i] = c[i] - e[i]
		}
		fmt.Fprintf(w, "  %-22s cluster "+format+" [%s], embedded "+format+" [%s] %s; ratio %.2f× [%s], added "+format+" %s [%s]\n",
			name, median(c), list(c, format), median(e), list(e, format), unit,
			median(rs), list(rs, "%.2f"), median(ds), unit, list(ds, "%+"+format[1:]))
	}
	both("e2e p50", "ms", "%.3f", func(r *result) float64 { return r.E2E.P50 })
	both("e2e p99", "ms", "%.3f", func(r *result) float64 { return r.E2E.P99 })
	both("response p50", "ms", "%.3f", func(r *result) float64 { return r.Resp.P50 })
	both("response p99", "ms", "%.3f", func(r *result) float64 { return r.Resp.P99 })
	both("cpu/callback total", "ms", "%.4f", func(r *result) float64 { return r.CPUPer })
	both("cpu/callback ringside", "ms", "%.4f", func(r *result) float64 { return r.CPUServerPer })
	both("cpu/callback plugin", "ms", "%.4f", func(r *result) float64 { return r.CPUPluginPer })
	both("peak rss", "MiB", "%.1f", func(r *result) float64 { return r.PeakRSS })
	one := func(name, unit, format string, get func(redisCost) float64) {
		v := vals(clu, func(r *result) float64 { return get(redisOf(r)) })
		fmt.Fprintf(w, "  %-22s "+format+" %s [%s]\n", name, median(v), unit, list(v, format))
	}
	one("redis-server cpu/cb", "ms", "%.4f", func(c redisCost) float64 { return c.CPUms })
	one("redis ops/callback", "", "%.2f", func(c redisCost) float64 { return c.Ops })
	one("redis bytes in/cb", "B", "%.0f", func(c redisCost) float64 { return c.BytesIn })
	one("redis bytes out/cb", "B", "%.0f", func(c redisCost) float64 { return c.BytesOut })
	one("redis-server rss", "MiB", "%.1f", func(c redisCost) float64 { return c.RSSMiB })
}
