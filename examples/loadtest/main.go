// Command loadtest measures ringside against the ideal path for its job.
//
// It starts a fake APNs (plugins/fakes: HTTP/2 over TLS, a self-signed
// certificate written to a temp file and trusted through SSL_CERT_FILE,
// ES256 provider tokens checked) in its own process, so that the time a
// callback was due and the time its push arrived are read from one clock.
// It writes a .p8 key and a ringside config (an apns notifier pointed at
// the fake) into a temp folder, registers one apns device per callee
// through the devices API of a first ringside, launches the measured
// ringside binary on that directory, and drives an open-loop load of notify_cb callbacks at -rate for
// -duration: every callback has a unique sid and callee, is due at a fixed
// time whether or not earlier ones were answered, and its latencies are
// measured from that due time. Then it runs the same load against the
// baseline — a minimal Go server that parses the callback and pushes with
// sideshow/apns2 itself — and prints ringside / baseline ratios.
//
// With -cluster, ringside runs in cluster mode on a redis-server the load
// generator starts (or on -redis), and each measured run also prints
// Redis's work per accepted callback, read from INFO before and after it;
// -compare-cluster runs ringside embedded and in cluster mode alternately.
//
//	go run ./examples/loadtest -rate 2000 -duration 10s
//	go run ./examples/loadtest -rate 2000 -apns-delay 20ms -mode ringside
//	go run ./examples/loadtest -find-max
//	go run ./examples/loadtest -compare-cluster -rate 1000 -runs 3
//
// See docs/benchmarks.md.
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	teamID = "TEAM123456"
	keyID  = "KEY1234567"
	topic  = "com.example.app.voip"
)

type options struct {
	Mode        string
	Rate        float64
	Duration    time.Duration
	Warmup      time.Duration
	Drain       time.Duration
	Metrics     bool
	Conns       int
	Inflight    int
	Timeout     time.Duration
	Callees     int
	APNsDelay   time.Duration
	APNs503     float64
	CheckJWT    bool
	Journal     bool
	Spare       bool
	Ringside    string
	KeepDir     bool
	FindMax     bool
	FindStart   float64
	FindStep    float64
	FindLimit   float64
	StepTime    time.Duration
	JSON        string
	PerfOut     string
	MaxInFlight int
	Runs        int

	Cluster        bool
	CompareCluster bool
	Redis          string
	RedisPrefix    string
	RedisIdle      time.Duration
	KillPlugin     time.Duration
	Floor          bool
	FloorMTLS      bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == baselineArg {
		if err := serveBaseline(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == floorArg {
		if err := serveFloor(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.Mode, "mode", "both", "ringside | baseline | both")
	flag.Float64Var(&o.Rate, "rate", 2000, "callbacks per second (open loop)")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "measured load time")
	flag.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured load at -rate before each measurement")
	flag.BoolVar(&o.Metrics, "metrics", false, "after each measured run print ringside's Go runtime metrics (heap, stacks, goroutines, GC cycles)")
	flag.DurationVar(&o.Drain, "drain", 5*time.Second, "after the last answer, how long to wait for pushes before counting them lost")
	flag.IntVar(&o.Conns, "conns", 256, "keep-alive connections to the server at most")
	flag.IntVar(&o.Inflight, "inflight", 20000, "outstanding callbacks at most; past it a due callback is counted client_saturated")
	flag.DurationVar(&o.Timeout, "timeout", 5*time.Second, "per callback; past it the callback counts as a timeout (a hang)")
	flag.IntVar(&o.Callees, "callees", 0, "distinct callees, each with one apns device (0: one per callback of the largest run, at most 100000)")
	flag.DurationVar(&o.APNsDelay, "apns-delay", 0, "the fake APNs answers each push after this long")
	flag.Float64Var(&o.APNs503, "apns-503", 0, "fraction of pushes the fake APNs answers 503 ServiceUnavailable")
	flag.BoolVar(&o.CheckJWT, "check-jwt", true, "verify the ES256 provider token of pushes (each distinct token once)")
	flag.BoolVar(&o.Journal, "journal", true, "ringside's delivery.journal")
	flag.BoolVar(&o.Floor, "floor", false, "with -mode both, also measure the floor in each run: the baseline's handler with the push in ringside's apns plugin process over one DeliverStream (none of ringside's journal, routing, directory or call log): the least an out-of-process design costs")
	flag.BoolVar(&o.FloorMTLS, "floor-mtls", true, "with -floor: go-plugin AutoMTLS on the floor's plugin channel, as ringside has")
	flag.BoolVar(&o.Spare, "spare", false, "spare = true in ringside's notifier: a spare apns plugin process takes over when the serving one dies (with -kill-plugin)")
	flag.StringVar(&o.Ringside, "ringside", "", "ringside binary (default: go build the module into the temp folder)")
	flag.BoolVar(&o.KeepDir, "keep", false, "keep the temp folder (config, logs, directory)")
	flag.IntVar(&o.Runs, "runs", 1, "with -mode both: repeat the comparison this many times, alternating which server goes first, and print each run's ratios and their median (this 2-core VM's speed drifts between runs)")
	flag.BoolVar(&o.FindMax, "find-max", false, "step the rate up to find the sustained rate (< 1% errors, p99 ≤ 100 ms) of each server")
	flag.Float64Var(&o.FindStart, "find-start", 1000, "find-max: first rate")
	flag.Float64Var(&o.FindStep, "find-step", 1000, "find-max: rate step (halved once after the first failure)")
	flag.Float64Var(&o.FindLimit, "find-limit", 30000, "find-max: highest rate tried")
	flag.DurationVar(&o.StepTime, "step-duration", 5*time.Second, "find-max: measured time per step")
	flag.StringVar(&o.JSON, "json", "", "also write the results as JSON to this file")
	flag.StringVar(&o.PerfOut, "perf", "", "record a perf profile (perf record -g) of ringside and its plugins during the measured run into this file")
	flag.IntVar(&o.MaxInFlight, "max-in-flight", 0, "ringside's server.max_in_flight (0: its default)")
	flag.BoolVar(&o.Cluster, "cluster", false, "run ringside in cluster mode (one replica) on a redis-server the load generator starts on a free loopback port without persistence in the temp folder, or on -redis; print Redis's work per accepted callback")
	flag.BoolVar(&o.CompareCluster, "compare-cluster", false, "run ringside embedded and in cluster mode (as -cluster) in each run, alternating the order, and print cluster / embedded (with -mode both the baseline runs too)")
	flag.StringVar(&o.Redis, "redis", "", "cluster mode on this Redis (host:port, no password, database 0) instead of a redis-server of the load generator's; it refuses a Redis holding keys under -redis-prefix and deletes its own keys at the end; other clients' commands count in the figures")
	flag.StringVar(&o.RedisPrefix, "redis-prefix", "ringside:", "cluster mode: ringside's key_prefix")
	flag.DurationVar(&o.KillPlugin, "kill-plugin", 0, "SIGKILL ringside's serving apns plugin process this long into each measured run (not the baseline), and print from the kill to the first push, and to the first push of a callback sent after it")
	flag.DurationVar(&o.RedisIdle, "redis-idle", 2*time.Second, "cluster mode: after each warm-up, read Redis's background (heartbeats, PINGs, takeover scans) over this idle time; it is subtracted from the per-callback figures")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// The servers a run measures.
const (
	nameEmbedded = "ringside"         // ringside, embedded single-node mode
	nameCluster  = "ringside-cluster" // ringside, cluster mode on Redis
	nameBaseline = "baseline"
	nameFloor    = "floor" // the least an out-of-process design costs (floor.go)
)

// env is what the servers share: the temp folder, the key, the fake APNs
// and, in cluster mode, Redis.
type env struct {
	dir     string
	keyFile string
	fake    *peer
	callees int
	bin     string          // the ringside binary, once built
	seeded  map[string]bool // the named ringside's directory holds the callees' devices
	nextTag uint32
	o       options
	out     io.Writer

	redisAddr string      // cluster mode's Redis
	probe     *redisProbe // reads redisAddr's counters
}

// variants returns the servers each run measures, in the first run's
// order.
func (o options) variants() []string {
	var rs []string
	switch {
	case o.CompareCluster:
		rs = []string{nameEmbedded, nameCluster}
	case o.Cluster || o.Redis != "":
		rs = []string{nameCluster}
	default:
		rs = []string{nameEmbedded}
	}
	if o.Floor {
		rs = append(rs, nameFloor)
	}
	switch o.Mode {
	case "baseline":
		return []string{nameBaseline}
	case "both":
		return append(rs, nameBaseline)
	}
	return rs
}

// rotate returns names rotated left by n: each server goes first in turn.
func rotate(names []string, n int) []string {
	n %= len(names)
	return append(slices.Clone(names[n:]), names[:n]...)
}

func run(ctx context.Context, o options, out io.Writer) error {
	switch o.Mode {
	case "ringside", "baseline", "both":
	default:
		return fmt.Errorf("-mode %q: want ringside, baseline or both", o.Mode)
	}
	dir, err := os.MkdirTemp("", "ringside-loadtest-")
	if err != nil {
		return err
	}
	if o.KeepDir {
		fmt.Fprintln(out, "temp folder:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{dir: dir, o: o, out: out, nextTag: uint32(time.Now().Unix()), seeded: map[string]bool{}}
	e.fake, err = newPeer(dir, o.APNsDelay, o.APNs503, o.CheckJWT)
	if err != nil {
		return err
	}
	defer e.fake.Close()
	if e.keyFile, err = e.fake.WriteP8(dir); err != nil {
		return err
	}

	e.callees = o.Callees
	if e.callees <= 0 {
		top := o.Rate * o.Duration.Seconds()
		if o.FindMax {
			top = o.FindLimit * o.StepTime.Seconds()
		}
		e.callees = int(min(max(top, 1), 100000))
	}
	fmt.Fprintf(out, "fake APNs %s (delay %v, 503 rate %g, JWT checked %t); %d callees; %d CPUs\n",
		e.fake.URL, o.APNsDelay, o.APNs503, o.CheckJWT, e.callees, numCPU())

	names := o.variants()
	if slices.Contains(names, nameCluster) {
		stop, err := e.startRedis()
		if err != nil {
			return err
		}
		defer stop()
	}

	var all []*result
	pairs := map[string][]ratios{}   // per ringside variant, its ratios to the baseline per run
	picked := map[string][]*result{} // per server, the result its comparisons use, per run
	for run := range max(o.Runs, 1) {
		if o.Runs > 1 {
			fmt.Fprintf(out, "\n== run %d of %d\n", run+1, o.Runs)
		}
		results := map[string][]*result{}
		for _, name := range rotate(names, run) {
			if o.Runs > 1 || len(names) > 1 {
				fmt.Fprintf(out, "-- %s (load: %s)\n", name, loadAvg())
			}
			srv, err := e.start(ctx, name)
			if err != nil {
				return err
			}
			rs, err := e.measure(srv)
			srv.stop()
			if err != nil {
				return err
			}
			results[name] = rs
			all = append(all, rs...)
			if r := pickResult(rs); r != nil {
				picked[name] = append(picked[name], r)
			}
		}
		for _, name := range names {
			if name == nameBaseline || o.Mode != "both" {
				continue
			}
			if rt, ok := printRatios(out, o, name, results[name], results[nameBaseline]); ok {
				pairs[name] = append(pairs[name], rt)
			}
		}
		if o.CompareCluster && !o.FindMax {
			printClusterRatios(out, pickResult(results[nameEmbedded]), pickResult(results[nameCluster]))
		}
	}
	for _, name := range names {
		if len(pairs[name]) > 1 {
			printMedians(out, o, name, pairs[name])
		}
	}
	if o.CompareCluster && !o.FindMax && len(picked[nameCluster]) > 1 {
		printClusterMedians(out, picked[nameEmbedded], picked[nameCluster])
	}
	c := e.fake.Counts()
	fmt.Fprintf(out, "fake APNs: %d pushes answered, %d with 503, %d bad JWT, %d bad requests\n",
		c.Pushes, e.fake.faults.Load(), c.BadTokens, c.Malformed)
	if o.JSON != "" {
		b, _ := json.MarshalIndent(map[string]any{"options": o, "results": all}, "", "  ")
		if err := os.WriteFile(o.JSON, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// server is a running ringside or baseline.
type server struct {
	name string
	url  string // notify_cb
	cmd  *exec.Cmd
	log  string
	// admin is ringside's admin listener ("" for the baseline).
	admin string
	// redis: ringside runs in cluster mode on env.redisAddr.
	redis bool
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM and waits (ringside drains and stops its plugins).
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// measure runs the warm-up and the measured load(s) against s.
func (e *env) measure(s *server) ([]*result, error) {
	o := e.o
	var seq uint64
	load := func(rate float64, d time.Duration, measured bool) (*result, error) {
		e.nextTag++
		spec := loadSpec{URL: s.url, Rate: rate, Duration: d, Conns: o.Conns, Inflight: o.Inflight,
			Timeout: o.Timeout, Drain: o.Drain, Callees: e.callees, Tag: e.nextTag, CountFrom: seq}
		if measured && s.redis {
			spec.Redis = e.probe
		}
		if measured && s.name != nameBaseline && s.name != nameFloor {
			spec.KillAfter = o.KillPlugin
		}
		if !measured {
			spec.Drain = min(o.Drain, 2*time.Second)
		}
		seq += uint64(rate * d.Seconds())
		var perf *exec.Cmd
		if measured && o.PerfOut != "" && s.name != nameBaseline && s.name != nameFloor {
			perf = startPerf(o.PerfOut, s.pid())
		}
		r, err := runLoad(spec, e.fake, s.pid())
		if perf != nil {
			_ = perf.Process.Signal(os.Interrupt)
			_ = perf.Wait()
		}
		if r != nil {
			r.Name = s.name
		}
		if measured && o.Metrics && s.admin != "" {
			printGoMetrics(e.out, s.admin)
		}
		return r, err
	}
	if o.Warmup > 0 {
		if _, err := load(min(o.Rate, 1000), o.Warmup, false); err != nil {
			return nil, err
		}
	}
	if s.redis && o.RedisIdle > 0 {
		// The background is read once the warm-up's last deliveries
		// are marked in Redis.
		time.Sleep(250 * time.Millisecond)
		if _, err := e.probe.measureIdle(o.RedisIdle); err != nil {
			return nil, err
		}
	}
	if !o.FindMax {
		r, err := load(o.Rate, o.Duration, true)
		if err != nil {
			return nil, err
		}
		r.print(e.out)
		return []*result{r}, nil
	}
	var out []*result
	step, rate := o.FindStep, o.FindStart
	var best *result
	halved := false
	for rate <= o.FindLimit {
		r, err := load(rate, o.StepTime, true)
		if err != nil {
			return nil, err
		}
		r.print(e.out)
		out = append(out, r)
		ok := r.sustained()
		fmt.Fprintf(e.out, "  → %s at %.0f/s: sustained=%t\n", s.name, rate, ok)
		if ok {
			best = r
			rate += step
			time.Sleep(time.Second)
			continue
		}
		if halved || best == nil {
			break
		}
		// One finer step between the last pass and this failure.
		halved = true
		step /= 2
		rate = best.Rate + step
		time.Sleep(3 * time.Second)
	}
	if best != nil {
		fmt.Fprintf(e.out, "%s: sustained rate %.0f/s\n", s.name, best.Rate)
		c := *best
		c.Name = s.name + " max"
		out = append(out, &c)
	} else {
		fmt.Fprintf(e.out, "%s: no rate sustained\n", s.name)
	}
	return out, nil
}

// start launches the named server and waits until it answers.
func (e *env) start(ctx context.Context, name string) (*server, error) {
	switch name {
	case nameBaseline:
		return e.startSelf(ctx, nameBaseline, baselineArg)
	case nameFloor:
		if err := e.build(ctx); err != nil {
			return nil, err
		}
		return e.startSelf(ctx, nameFloor, floorArg, "-plugin", e.bin, "-mtls="+strconv.FormatBool(e.o.FloorMTLS))
	}
	return e.startRingside(ctx, name)
}

// startSelf starts the load generator's own binary as the baseline (or
// the floor): arg and extra are its first and last arguments.
func (e *env) startSelf(ctx context.Context, name, arg string, extra ...string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(e.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{arg, "-endpoint", e.fake.URL, "-key-file", e.keyFile,
		"-team-id", teamID, "-key-id", keyID, "-topic", topic, "-callees", strconv.Itoa(e.callees)}, extra...)
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+e.fake.CAFile)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s did not start: %q %v\n%s", name, line, err, b)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return &server{name: name, url: "http://" + addr + "/notify_cb", cmd: cmd, log: logPath}, nil
}

// build sets e.bin: -ringside, or the module built into the temp folder
// once.
func (e *env) build(ctx context.Context) error {
	if e.bin == "" {
		e.bin = e.o.Ringside
	}
	if e.bin != "" {
		return nil
	}
	// Not e.dir/ringside: that is the embedded ringside's folder.
	bin := filepath.Join(e.dir, "ringside.bin")
	fmt.Fprintln(e.out, "building ringside…")
	b := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ringside/ringside")
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		return fmt.Errorf("go build ringside (run from inside the module, or pass -ringside): %w", err)
	}
	e.bin = bin
	return nil
}

// startRingside starts the named ringside (embedded or cluster mode),
// filling its directory first if it is the first start of that name.
func (e *env) startRingside(ctx context.Context, name string) (*server, error) {
	if err := e.build(ctx); err != nil {
		return nil, err
	}
	if !e.seeded[name] {
		// The directory is filled through a ringside of its own, so that
		// the measured one starts on a directory file (or Redis), as in
		// production.
		t0 := time.Now()
		s, err := e.launchRingside(ctx, e.bin, name)
		if err != nil {
			return nil, err
		}
		err = seed(ctx, s.admin, e.callees)
		s.stop()
		if err != nil {
			return nil, err
		}
		e.seeded[name] = true
		where := "directory file"
		if s.redis {
			where = "Redis"
		}
		fmt.Fprintf(e.out, "%s: %d callees in its %s in %v\n", name, e.callees, where, time.Since(t0).Round(time.Millisecond))
	}
	return e.launchRingside(ctx, e.bin, name)
}

// launchRingside starts the ringside binary bin, configured as the named
// server, in its folder of the temp folder and waits until it is ready.
func (e *env) launchRingside(ctx context.Context, bin, name string) (*server, error) {
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	clustered := name == nameCluster
	clusterBlock := ""
	if clustered {
		clusterBlock = fmt.Sprintf("\ncluster \"redis\" {\n  addresses  = [%q]\n  key_prefix = %q\n}\n", e.redisAddr, e.o.RedisPrefix)
	}
	pub, adm := freePort(), freePort()
	cfg := fmt.Sprintf(`server {
  listen       = %q
  admin_listen = %q
%s}

delivery {
  journal = %t
}

log {
  level = "warn"
}

directory "embedded" {
  path = "ringside.db"
}

notifier "ios" {
  plugin     = "apns"
  team_id    = %q
  key_id     = %q
  key_file   = %q
  topic      = %q
  production = false
  endpoint   = %q
%s}

route "all" {
  notify = ["ios"]
}
%s`, pub, adm, maxInFlight(e.o.MaxInFlight), e.o.Journal, teamID, keyID, e.keyFile, topic, e.fake.URL, spareLine(e.o.Spare), clusterBlock)
	cfgPath := filepath.Join(dir, "ringside.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "ringside.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", "-config", cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+e.fake.CAFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, url: "http://" + pub + "/notify_cb", cmd: cmd, log: logPath, admin: adm, redis: clustered}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + adm + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			s.stop()
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("ringside not ready after 30s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spareLine is the notifier's spare attribute when asked for (a build
// older than the attribute refuses it, so it is not written otherwise).
func spareLine(on bool) string {
	if on {
		return "  spare      = true\n"
	}
	return ""
}

func maxInFlight(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("  max_in_flight = %d\n", n)
}

// seedWorkers is how many device registrations seed keeps in flight.
const seedWorkers = 32

// seed registers one apns device per callee through the devices API of
// the ringside whose admin listener is admin.
func seed(ctx context.Context, admin string, n int) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: seedWorkers}}
	defer client.CloseIdleConnections()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range seedWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				url := "http://" + admin + "/v1/devices/" + serviceID + "/u" + strconv.Itoa(i) + "/apns/" + deviceToken(i)
				req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, nil)
				if err != nil {
					return
				}
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						err = fmt.Errorf("PUT device of u%d: %s", i, resp.Status)
					}
				}
				if err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("seeding the directory: %w", first)
	}
	return ctx.Err()
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPerf records the CPU profile of pid and its descendants.
func startPerf(out string, pid int) *exec.Cmd {
	var pids []string
	for _, p := range tree(pid) {
		pids = append(pids, strconv.Itoa(p))
	}
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-o", out, "-p", strings.Join(pids, ","))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		return nil
	}
	time.Sleep(300 * time.Millisecond)
	return cmd
}

func numCPU() int {
	b, err := os.ReadFile("/sys/fs/cgroup/cpu.max")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			q, _ := strconv.ParseFloat(f[0], 64)
			p, _ := strconv.ParseFloat(f[1], 64)
			if p > 0 {
				return int(q / p)
			}
		}
	}
	return runtime.NumCPU()
}

// ratios are one run's ringside / baseline figures.
type ratios struct {
	E2EP50, E2EP99, CPU, Sustained float64
	RSS, DelayP99                  float64 // ringside's own (MiB, ms)
	DelayOK                        bool
}

// pickResult returns the result a comparison uses: find-max's best step,
// else the last run.
func pickResult(rr []*result) *result {
	for _, r := range rr {
		if strings.HasSuffix(r.Name, " max") {
			return r
		}
	}
	if len(rr) > 0 {
		return rr[len(rr)-1]
	}
	return nil
}

// printRatios prints the named ringside's figures over the baseline's.
func printRatios(w io.Writer, o options, name string, rs, bs []*result) (ratios, bool) {
	r, b := pickResult(rs), pickResult(bs)
	if r == nil || b == nil {
		return ratios{}, false
	}
	rt := ratios{E2EP50: r.E2E.P50 / b.E2E.P50, E2EP99: r.E2E.P99 / b.E2E.P99, CPU: r.CPUPer / b.CPUPer,
		Sustained: r.Rate / b.Rate, RSS: r.PeakRSS, DelayP99: r.E2E.P99, DelayOK: r.sustained()}
	fmt.Fprintf(w, "\n%s / baseline:\n", name)
	if o.FindMax {
		share := r.Rate / b.Rate
		fmt.Fprintf(w, "  sustained rate      %.0f / %.0f = %.0f%%  (target ≥ 55%%: %s)\n", r.Rate, b.Rate, 100*share, verdict(share >= 0.55))
		return rt, true
	}
	fmt.Fprintf(w, "  e2e p50             %.3f / %.3f ms = %s  (target ≤ 2.5×: %s)\n", r.E2E.P50, b.E2E.P50, ratio(r.E2E.P50, b.E2E.P50), verdict(r.E2E.P50 <= 2.5*b.E2E.P50))
	fmt.Fprintf(w, "  e2e p99             %.3f / %.3f ms = %s  (target ≤ 2×: %s)\n", r.E2E.P99, b.E2E.P99, ratio(r.E2E.P99, b.E2E.P99), verdict(r.E2E.P99 <= 2*b.E2E.P99))
	fmt.Fprintf(w, "  response p50        %.3f / %.3f ms = %s\n", r.Resp.P50, b.Resp.P50, ratio(r.Resp.P50, b.Resp.P50))
	fmt.Fprintf(w, "  response p99        %.3f / %.3f ms = %s\n", r.Resp.P99, b.Resp.P99, ratio(r.Resp.P99, b.Resp.P99))
	fmt.Fprintf(w, "  cpu per callback    %.4f / %.4f ms = %s  (target ≤ 2.5×: %s)\n", r.CPUPer, b.CPUPer, ratio(r.CPUPer, b.CPUPer), verdict(r.CPUPer <= 2.5*b.CPUPer))
	fmt.Fprintf(w, "  peak rss            %.1f / %.1f MiB = %s  (target ringside ≤ 80 MiB: %s)\n", r.PeakRSS, b.PeakRSS, ratio(r.PeakRSS, b.PeakRSS), verdict(r.PeakRSS <= 80))
	fmt.Fprintf(w, "  lost                %d / %d", r.Lost, b.Lost)
	if o.APNs503 > 0 {
		fmt.Fprintf(w, "  (target with -apns-503: ringside loses none: %s)", verdict(r.Lost == 0))
	}
	fmt.Fprintln(w)
	if o.APNsDelay > 0 {
		fmt.Fprintf(w, "  apns-delay %v: ringside sustained=%t at %.0f/s, e2e p99 %.3f ms (target: sustained, p99 ≤ 5 ms: %s)\n",
			o.APNsDelay, r.sustained(), r.Rate, r.E2E.P99, verdict(r.sustained() && r.E2E.P99 <= 5))
	}
	return rt, true
}

// verdict is a target's verdict.
func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

// printMedians prints, over the runs, each ratio's values and median with
// the target's verdict on the median.
func printMedians(w io.Writer, o options, name string, pairs []ratios) {
	line := func(name, unit string, get func(ratios) float64, target string, ok func(float64) bool) {
		var vs []float64
		var parts []string
		for _, p := range pairs {
			vs = append(vs, get(p))
			parts = append(parts, fmt.Sprintf("%.2f", get(p)))
		}
		m := median(vs)
		fmt.Fprintf(w, "  %-18s median %.2f%s of [%s]  (target %s: %s)\n", name, m, unit, strings.Join(parts, " "), target, verdict(ok(m)))
	}
	fmt.Fprintf(w, "\nover %d runs (%s / baseline per run):\n", len(pairs), name)
	if o.FindMax {
		line("sustained rate", "", func(p ratios) float64 { return p.Sustained }, "≥ 0.55", func(m float64) bool { return m >= 0.55 })
		return
	}
	line("e2e p50", "×", func(p ratios) float64 { return p.E2EP50 }, "≤ 2.5×", func(m float64) bool { return m <= 2.5 })
	line("e2e p99", "×", func(p ratios) float64 { return p.E2EP99 }, "≤ 2×", func(m float64) bool { return m <= 2 })
	line("cpu per callback", "×", func(p ratios) float64 { return p.CPU }, "≤ 2.5×", func(m float64) bool { return m <= 2.5 })
	line("ringside peak rss", " MiB", func(p ratios) float64 { return p.RSS }, "≤ 80 MiB", func(m float64) bool { return m <= 80 })
	if o.APNsDelay > 0 {
		line("apns-delay e2e p99", " ms", func(p ratios) float64 { return p.DelayP99 }, "≤ 5 ms, sustained", func(m float64) bool {
			for _, p := range pairs {
				if !p.DelayOK {
					return false
				}
			}
			return m <= 5
		})
	}
}

// printGoMetrics prints the Go runtime figures of ringside's /metrics (the
// ringside process only): heap, stacks, goroutines, GC cycles.
func printGoMetrics(w io.Writer, admin string) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		fmt.Fprintf(w, "  metrics: %v\n", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes",
		"go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes", "go_goroutines", "go_gc_duration_seconds_count", "go_memstats_next_gc_bytes"}
	var parts []string
	for line := range strings.SplitSeq(string(body), "\n") {
		for _, k := range want {
			if v, ok := strings.CutPrefix(line, k+" "); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && strings.HasSuffix(k, "_bytes") {
					v = fmt.Sprintf("%.1fMiB", f/(1<<20))
				}
				parts = append(parts, strings.TrimPrefix(strings.TrimPrefix(k, "go_memstats_"), "go_")+"="+v)
			}
		}
	}
	fmt.Fprintf(w, "  ringside process: %s\n", strings.Join(parts, " "))
}
