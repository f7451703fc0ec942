package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// redisConn is a plain RESP2 connection to one Redis node, for the load
// generator's own reads (INFO, SCAN, UNLINK). It counts the bytes it
// writes and reads, so that its own traffic can be taken out of the
// server's network counters. It is not safe for concurrent use.
type redisConn struct {
	c     net.Conn
	r     *bufio.Reader
	wrote int64
	read  int64
}

// dialRedis connects to addr.
func dialRedis(addr string) (*redisConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	rc := &redisConn{c: c}
	rc.r = bufio.NewReader(countingReader{c, &rc.read})
	return rc, nil
}

func (c *redisConn) Close() error { return c.c.Close() }

// countingReader adds the bytes read from r to *n.
type countingReader struct {
	r io.Reader
	n *int64
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	*cr.n += int64(n)
	return n, err
}

// do sends one command and returns its reply: a string (status or bulk),
// an int64, a []any, or nil (a nil bulk or array). An error reply is an
// error.
func (c *redisConn) do(args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	n, err := io.WriteString(c.c, b.String())
	c.wrote += int64(n)
	if err != nil {
		return nil, err
	}
	return readRESP(c.r)
}

// readRESP reads one RESP2 reply.
func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, fmt.Errorf("redis: %s", line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("redis: bad bulk length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("redis: bad array length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

// redisStats is one reading of a Redis node's INFO: calls per command,
// network bytes, CPU and memory.
type redisStats struct {
	At      time.Time
	Calls   map[string]int64 // command name (lower case, "client|caching") → calls
	NetIn   int64            // total_net_input_bytes
	NetOut  int64            // total_net_output_bytes
	CPU     time.Duration    // used_cpu_user + used_cpu_sys
	Memory  int64            // used_memory
	RSS     int64            // used_memory_rss
	Keys    int64            // keys of every database
	Tracked int64            // tracking_total_keys: keys some client caches
	// RequestLen and ReplyLen are the bytes of this reading's own INFO
	// request and reply: the server counts the request of a reading in
	// it, and its reply in the next.
	RequestLen, ReplyLen int64
}

// infoSections are the INFO sections a reading asks for (Redis ≥ 7 takes
// several in one INFO).
var infoSections = []string{"INFO", "commandstats", "stats", "cpu", "memory", "keyspace"}

// stats reads the node's INFO.
func (c *redisConn) stats() (redisStats, error) {
	w0, r0 := c.wrote, c.read
	rep, err := c.do(infoSections...)
	if err != nil {
		return redisStats{}, err
	}
	text, ok := rep.(string)
	if !ok {
		return redisStats{}, fmt.Errorf("redis: INFO answered %T", rep)
	}
	s := parseInfo(text)
	s.At = time.Now()
	s.RequestLen, s.ReplyLen = c.wrote-w0, c.read-r0
	return s, nil
}

// parseInfo reads the fields of an INFO reply that redisStats keeps.
func parseInfo(text string) redisStats {
	s := redisStats{Calls: map[string]int64{}}
	num := func(v string) int64 { n, _ := strconv.ParseInt(v, 10, 64); return n }
	for line := range strings.SplitSeq(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "cmdstat_"):
			// cmdstat_set:calls=3,usec=12,usec_per_call=4.00,rejected_calls=0,failed_calls=0
			for f := range strings.SplitSeq(v, ",") {
				if n, ok := strings.CutPrefix(f, "calls="); ok {
					s.Calls[strings.TrimPrefix(k, "cmdstat_")] = num(n)
				}
			}
		case k == "total_net_input_bytes":
			s.NetIn = num(v)
		case k == "total_net_output_bytes":
			s.NetOut = num(v)
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			s.CPU += time.Duration(f * float64(time.Second))
		case k == "tracking_total_keys":
			s.Tracked = num(v)
		case k == "used_memory":
			s.Memory = num(v)
		case k == "used_memory_rss":
			s.RSS = num(v)
		case strings.HasPrefix(k, "db"):
			// db0:keys=10,expires=0,avg_ttl=0
			for f := range strings.SplitSeq(v, ",") {
				if n, ok := strings.CutPrefix(f, "keys="); ok {
					s.Keys += num(n)
				}
			}
		}
	}
	return s
}

// redisDelta is what a node did between two readings, the load
// generator's own INFOs taken out.
type redisDelta struct {
	Seconds float64
	Calls   map[string]float64
	NetIn   float64
	NetOut  float64
	CPU     time.Duration
}

// ownCommand is the command the load generator's readings send; it is
// left out of every figure.
const ownCommand = "info"

// diff returns what the node did from a to b.
func diff(a, b redisStats) redisDelta {
	d := redisDelta{
		Seconds: b.At.Sub(a.At).Seconds(),
		Calls:   map[string]float64{},
		NetIn:   float64(b.NetIn - a.NetIn - b.RequestLen), // b's request is counted in b
		NetOut:  float64(b.NetOut - a.NetOut - a.ReplyLen), // a's reply is counted in b
		CPU:     b.CPU - a.CPU,
	}
	for k, n := range b.Calls {
		if k == ownCommand {
			continue
		}
		if m := n - a.Calls[k]; m != 0 {
			d.Calls[k] = float64(m)
		}
	}
	return d
}

// rate is d per second.
func (d redisDelta) rate() redisDelta {
	if d.Seconds <= 0 {
		return redisDelta{Calls: map[string]float64{}}
	}
	r := redisDelta{Seconds: 1, Calls: map[string]float64{},
		NetIn: d.NetIn / d.Seconds, NetOut: d.NetOut / d.Seconds, CPU: time.Duration(float64(d.CPU) / d.Seconds)}
	for k, v := range d.Calls {
		r.Calls[k] = v / d.Seconds
	}
	return r
}

// redisCost is Redis's work per accepted callback in one measured run,
// the idle background (the rate measured before the load, times the run's
// length) subtracted.
type redisCost struct {
	Accepted int     `json:"accepted_callbacks"`
	Seconds  float64 `json:"seconds"`
	// Calls are the commands Redis ran, by name: a script's (EVAL,
	// EVALSHA) and, under their own names, the commands it called. Ops is
	// their sum.
	Calls    map[string]float64 `json:"calls_per_callback"`
	Ops      float64            `json:"ops_per_callback"`
	BytesIn  float64            `json:"bytes_in_per_callback"`
	BytesOut float64            `json:"bytes_out_per_callback"`
	CPUms    float64            `json:"cpu_ms_per_callback"`
	// MemoryPer is used_memory's growth per callback (dedup claims and
	// anything else that outlives the call); the rest is at the run's end.
	MemoryPer float64 `json:"memory_bytes_per_callback"`
	KeysPer   float64 `json:"keys_per_callback"`
	// Tracked is how many keys Redis tracks for client-side caches at the
	// run's end.
	Tracked   int64   `json:"tracking_keys"`
	MemoryMiB float64 `json:"used_memory_mib"`
	RSSMiB    float64 `json:"rss_mib"`
	// RawCPUCores is redis-server's CPU over the run, background included.
	RawCPUCores float64     `json:"cpu_cores"`
	Idle        *redisDelta `json:"idle_per_second"`
}

// cost divides what the node did from a to b, less idle × the time, by
// accepted.
func cost(a, b redisStats, idle *redisDelta, accepted int) *redisCost {
	d := diff(a, b)
	c := &redisCost{Accepted: accepted, Seconds: d.Seconds, Calls: map[string]float64{}, Idle: idle,
		MemoryMiB: float64(b.Memory) / (1 << 20), RSSMiB: float64(b.RSS) / (1 << 20), Tracked: b.Tracked}
	if d.Seconds > 0 {
		c.RawCPUCores = d.CPU.Seconds() / d.Seconds
	}
	if accepted <= 0 {
		return c
	}
	n := float64(accepted)
	bg := redisDelta{Calls: map[string]float64{}}
	if idle != nil {
		bg = *idle
	}
	t := d.Seconds
	for k, v := range d.Calls {
		if per := (v - bg.Calls[k]*t) / n; per > 0.0005 {
			c.Calls[k] = per
			c.Ops += per
		}
	}
	c.BytesIn = max(0, (d.NetIn-bg.NetIn*t)/n)
	c.BytesOut = max(0, (d.NetOut-bg.NetOut*t)/n)
	c.CPUms = max(0, (d.CPU.Seconds()-bg.CPU.Seconds()*t)*1e3/n)
	c.MemoryPer = float64(b.Memory-a.Memory) / n
	c.KeysPer = float64(b.Keys-a.Keys) / n
	return c
}

// fmtCalls prints calls by name, largest first.
func fmtCalls(m map[string]float64, format string) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" "+fmt.Sprintf(format, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (c *redisCost) print(w io.Writer) {
	if c.Idle != nil {
		fmt.Fprintf(w, "  redis idle background per second (before the load, subtracted below): %s; in %.0f B, out %.0f B, cpu %.2f ms\n",
			fmtCalls(c.Idle.Calls, "%.1f"), c.Idle.NetIn, c.Idle.NetOut, float64(c.Idle.CPU)/1e6)
	}
	fmt.Fprintf(w, "  redis per accepted callback (%d; a script's commands count under their own names too): %.2f ops = %s\n", c.Accepted, c.Ops, fmtCalls(c.Calls, "%.2f"))
	fmt.Fprintf(w, "    in %.0f B, out %.0f B, redis-server cpu %.4f ms (%.2f cores over the run, background included)\n",
		c.BytesIn, c.BytesOut, c.CPUms, c.RawCPUCores)
	fmt.Fprintf(w, "    used_memory %+.0f B and %+.2f keys per callback; at the end used_memory %.1f MiB, rss %.1f MiB, %d keys tracked for client-side caches\n",
		c.MemoryPer, c.KeysPer, c.MemoryMiB, c.RSSMiB, c.Tracked)
}

// redisProbe reads a Redis node's counters around the measured runs.
type redisProbe struct {
	conn *redisConn
	idle *redisDelta // the background per second, once measured
}

func newRedisProbe(addr string) (*redisProbe, error) {
	c, err := dialRedis(addr)
	if err != nil {
		return nil, err
	}
	return &redisProbe{conn: c}, nil
}

func (p *redisProbe) Close() error { return p.conn.Close() }

// measureIdle reads the background rate over d, while nothing is sent.
func (p *redisProbe) measureIdle(d time.Duration) (redisDelta, error) {
	a, err := p.conn.stats()
	if err != nil {
		return redisDelta{}, err
	}
	time.Sleep(d)
	b, err := p.conn.stats()
	if err != nil {
		return redisDelta{}, err
	}
	r := diff(a, b).rate()
	p.idle = &r
	return r, nil
}

// redisServer is a redis-server the load generator started.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts redis-server on a free loopback port in dir, without
// persistence, and waits until it answers PING.
func startRedis(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed (Debian: apt-get install redis-server); install it, or pass -redis ADDR of a Redis to use")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	addr := freePort()
	_, port, _ := net.SplitHostPort(addr)
	logPath := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", logPath)
	cmd.Dir = dir
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &redisServer{addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialRedis(addr)
		if err == nil {
			_, err = c.do("PING")
			c.Close()
			if err == nil {
				return s, nil
			}
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("redis-server exited: %v\n%s", cmd.ProcessState, b)
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("redis-server on %s did not answer PING in 10s: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 5 s) and waits.
func (s *redisServer) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// deletePrefix removes every key that starts with prefix (SCAN + UNLINK),
// and returns how many it removed.
func deletePrefix(addr, prefix string) (int, error) {
	c, err := dialRedis(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n := 0
	cursor := "0"
	for {
		rep, err := c.do("SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000")
		if err != nil {
			return n, err
		}
		a, ok := rep.([]any)
		if !ok || len(a) != 2 {
			return n, fmt.Errorf("redis: SCAN answered %v", rep)
		}
		cursor, _ = a[0].(string)
		keys, _ := a[1].([]any)
		if len(keys) > 0 {
			args := []string{"UNLINK"}
			for _, k := range keys {
				if s, ok := k.(string); ok {
					args = append(args, s)
				}
			}
			if _, err := c.do(args...); err != nil {
				return n, err
			}
			n += len(args) - 1
		}
		if cursor == "0" {
			return n, nil
		}
	}
}
