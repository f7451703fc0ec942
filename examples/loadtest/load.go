package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// lineParam is LINE Planet's documented example param (base64 of the
// call's JSON), sent as every callback's param.
const lineParam = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="

const serviceID = "planetkit"

// loadSpec is one open-loop run.
type loadSpec struct {
	URL       string // notify_cb URL, without query
	Rate      float64
	Duration  time.Duration
	Conns     int           // keep-alive connections at most
	Inflight  int           // outstanding requests at most; past it a send is counted as client_saturated
	Timeout   time.Duration // per request
	Drain     time.Duration // wait for arrivals after the last answer
	Callees   int           // callee i = seq % Callees
	Tag       uint32
	CountFrom uint64 // first sequence number (unique sids across runs of one process)
	// Redis, when set, is read before the load and after the drain, and
	// its work is divided by the accepted callbacks.
	Redis *redisProbe
	// KillAfter, when positive, SIGKILLs the server's serving plugin
	// process this long into the load.
	KillAfter time.Duration
}

// result is what a run measured.
type result struct {
	Name       string         `json:"name"`
	Rate       float64        `json:"rate"`
	Duration   time.Duration  `json:"duration"`
	Sent       int            `json:"sent"`
	OK         int            `json:"ok_2xx"`
	Codes      map[string]int `json:"non_2xx"` // status code, "timeout", "error" or "client_saturated"
	Arrived    int            `json:"arrived"`
	Lost       int            `json:"lost"`
	Duplicates int64          `json:"duplicates"`
	Foreign    int64          `json:"foreign"`
	Resp       pcts           `json:"response_ms"`
	E2E        pcts           `json:"e2e_ms"`
	Resp503    pcts           `json:"response_503_ms"`
	CPUms      float64        `json:"cpu_ms_total"`
	CPUPer     float64        `json:"cpu_ms_per_callback"`
	// CPUServerPer is the server process's own share of CPUPer, and
	// CPUPluginPer its descendants' (ringside's plugin processes).
	CPUServerPer float64 `json:"cpu_ms_per_callback_server"`
	CPUPluginPer float64 `json:"cpu_ms_per_callback_plugins"`
	PeakRSS      float64 `json:"peak_rss_mib"`
	PeakRootRSS  float64 `json:"peak_server_process_rss_mib"`
	PeakPSS      float64 `json:"peak_pss_mib"`
	Procs        int     `json:"processes"`
	AchievedQPS  float64 `json:"achieved_rate"`
	// LoadgenCores is the load generator's own CPU (with the fake APNs),
	// and OtherCores every other process's, in cores over the run: noise.
	LoadgenCores float64 `json:"loadgen_cores"`
	OtherCores   float64 `json:"other_cores"`
	// Redis is the Redis work per accepted callback (cluster mode).
	Redis *redisCost `json:"redis,omitempty"`
	// Kill is how deliveries went around the kill of the plugin.
	Kill *killResult `json:"kill,omitempty"`
}

type pcts struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(d []time.Duration) pcts {
	if len(d) == 0 {
		return pcts{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(q*float64(len(d))+0.5) - 1
		i = min(max(i, 0), len(d)-1)
		return float64(d[i]) / 1e6
	}
	return pcts{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(d[len(d)-1]) / 1e6}
}

// errorRate is the share of sent callbacks that were not answered 2xx or
// whose push never arrived.
func (r *result) errorRate() float64 {
	if r.Sent == 0 {
		return 1
	}
	return float64(r.Sent-r.OK+r.Lost) / float64(r.Sent)
}

// sustained reports whether the run meets the sustained-rate criteria:
// < 1% errors and p99 ≤ 100 ms for both the answer and the push.
func (r *result) sustained() bool {
	return r.errorRate() < 0.01 && r.Resp.P99 <= 100 && r.E2E.P99 <= 100 && r.AchievedQPS >= 0.97*r.Rate
}

// query builds callback seq's query string: a unique sid and callee.
func query(tag uint32, seq uint64, callees int) string {
	callee := "u" + strconv.FormatUint(seq%uint64(callees), 10)
	return "sid=" + makeSID(tag, seq) +
		"&from_service_id=" + serviceID + "&from_user_id=caller" +
		"&to_service_id=" + serviceID + "&to_user_id=" + callee +
		"&type=A&stid=loadtest&param=" + url.QueryEscape(lineParam)
}

// runLoad drives spec against the server whose pushes f records, sampling
// the process tree of pid, and returns the measurements.
func runLoad(spec loadSpec, f *peer, pid int) (*result, error) {
	n := int(spec.Rate * spec.Duration.Seconds())
	if n <= 0 {
		return nil, errors.New("rate × duration is less than one callback")
	}
	rr := newRunRecord(spec.Tag, int(spec.CountFrom)+n)
	f.run.Store(rr)
	defer f.run.Store(nil)

	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        spec.Conns,
		MaxIdleConnsPerHost: spec.Conns,
		MaxConnsPerHost:     spec.Conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: spec.Timeout}

	sched := make([]int64, n) // scheduled send time, mono ns
	answered := make([]int64, n)
	codes := make([]int32, n) // HTTP status; -1 timeout, -2 error, -3 client saturated
	sem := make(chan struct{}, spec.Inflight)
	var wg sync.WaitGroup
	var inflight atomic.Int64

	var redis0 redisStats
	if spec.Redis != nil {
		var err error
		if redis0, err = spec.Redis.conn.stats(); err != nil {
			return nil, err
		}
	}
	st0 := statTree(pid)
	self0, _ := cpuOf(os.Getpid())
	busy0 := machineBusy()
	smp := startSampler(pid, 200*time.Millisecond)
	start := time.Now()
	var kill killRecord
	killed := make(chan struct{})
	if spec.KillAfter > 0 {
		go killPlugin(pid, spec.KillAfter, &kill, killed)
	} else {
		close(killed)
	}
	interval := float64(time.Second) / spec.Rate
	for i := 0; i < n; {
		due := int(float64(time.Since(start))/interval) + 1
		for ; i < n && i < due; i++ {
			at := start.Add(time.Duration(float64(i) * interval))
			sched[i] = mono(at)
			select {
			case sem <- struct{}{}:
			default:
				codes[i] = -3
				continue
			}
			wg.Add(1)
			inflight.Add(1)
			seq := spec.CountFrom + uint64(i)
			go func(i int, u string) {
				defer func() { <-sem; inflight.Add(-1); wg.Done() }()
				resp, err := client.Get(u)
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						codes[i] = -1
					} else {
						codes[i] = -2
					}
					answered[i] = mono(time.Now())
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answered[i] = mono(time.Now())
				codes[i] = int32(resp.StatusCode)
			}(i, spec.URL+"?"+query(spec.Tag, seq, spec.Callees))
		}
		if i < n {
			next := start.Add(time.Duration(float64(i) * interval))
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}
	sendEnd := time.Since(start)
	wg.Wait()
	<-killed
	if kill.err != nil {
		return nil, kill.err
	}

	// Drain: wait until every 2xx has its push, or spec.Drain passes.
	deadline := time.Now().Add(spec.Drain)
	for time.Now().Before(deadline) {
		missing := false
		for i := 0; i < n; i++ {
			if codes[i] >= 200 && codes[i] < 300 && rr.arrivals[spec.CountFrom+uint64(i)].Load() == 0 {
				missing = true
				break
			}
		}
		if !missing {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	st1 := statTree(pid)
	cpu, rootCPU := st1.CPU-st0.CPU, st1.RootCPU-st0.RootCPU
	self1, _ := cpuOf(os.Getpid())
	busy := machineBusy() - busy0
	peak, peakRoot, peakPSS, procs := smp.Stop()
	wall := time.Since(start).Seconds()
	var redis1 redisStats
	if spec.Redis != nil {
		// The marks of the last deliveries follow their pushes by a
		// moment; the idle background of the extra time is subtracted.
		time.Sleep(250 * time.Millisecond)
		var err error
		if redis1, err = spec.Redis.conn.stats(); err != nil {
			return nil, err
		}
	}

	res := &result{Rate: spec.Rate, Duration: spec.Duration, Sent: n, Codes: map[string]int{}, Procs: procs}
	var resp, e2e, resp503 []time.Duration
	for i := 0; i < n; i++ {
		c := codes[i]
		switch {
		case c >= 200 && c < 300:
			res.OK++
		case c == -1:
			res.Codes["timeout"]++
		case c == -2:
			res.Codes["error"]++
		case c == -3:
			res.Codes["client_saturated"]++
		default:
			res.Codes[strconv.Itoa(int(c))]++
		}
		if answered[i] != 0 && c > 0 {
			d := time.Duration(answered[i] - sched[i])
			if c == http.StatusServiceUnavailable {
				resp503 = append(resp503, d)
			} else {
				resp = append(resp, d)
			}
		}
		if a := rr.arrivals[spec.CountFrom+uint64(i)].Load(); a != 0 {
			res.Arrived++
			e2e = append(e2e, time.Duration(a-sched[i]))
		} else if c >= 200 && c < 300 {
			res.Lost++
		}
	}
	if kill.at != 0 {
		res.Kill = killFigures(kill, sched, func(i int) int64 { return rr.arrivals[spec.CountFrom+uint64(i)].Load() })
	}
	res.Duplicates = rr.dups.Load()
	res.Foreign = rr.foreign.Load()
	res.Resp, res.E2E, res.Resp503 = percentiles(resp), percentiles(e2e), percentiles(resp503)
	res.CPUms = float64(cpu) / 1e6
	res.CPUPer = res.CPUms / float64(n)
	res.CPUServerPer = float64(rootCPU) / 1e6 / float64(n)
	res.CPUPluginPer = float64(cpu-rootCPU) / 1e6 / float64(n)
	res.PeakRSS = float64(peak) / (1 << 20)
	res.PeakRootRSS = float64(peakRoot) / (1 << 20)
	res.PeakPSS = float64(peakPSS) / (1 << 20)
	res.AchievedQPS = float64(n) / sendEnd.Seconds()
	res.LoadgenCores = (self1 - self0).Seconds() / wall
	var redisCPU time.Duration
	if spec.Redis != nil {
		res.Redis = cost(redis0, redis1, spec.Redis.idle, res.OK)
		redisCPU = time.Duration(res.Redis.RawCPUCores * wall * float64(time.Second))
	}
	res.OtherCores = max(0, (busy-cpu-redisCPU-(self1-self0)).Seconds()/wall)
	return res, nil
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "%s: %.0f/s for %v (achieved %.0f/s)\n", r.Name, r.Rate, r.Duration, r.AchievedQPS)
	fmt.Fprintf(w, "  sent %d  2xx %d  non-2xx %v  arrived %d  lost %d  duplicates %d  foreign %d  errors %.2f%%\n",
		r.Sent, r.OK, fmtCodes(r.Codes), r.Arrived, r.Lost, r.Duplicates, r.Foreign, 100*r.errorRate())
	fmt.Fprintf(w, "  response ms  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (n=%d)\n", r.Resp.P50, r.Resp.P90, r.Resp.P99, r.Resp.Max, r.Resp.N)
	if r.Resp503.N > 0 {
		fmt.Fprintf(w, "  503 answer ms p50 %.3f  p99 %.3f  max %.3f  (n=%d)\n", r.Resp503.P50, r.Resp503.P99, r.Resp503.Max, r.Resp503.N)
	}
	fmt.Fprintf(w, "  end-to-end ms p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (n=%d)\n", r.E2E.P50, r.E2E.P90, r.E2E.P99, r.E2E.Max, r.E2E.N)
	other := "other processes"
	if r.Redis != nil {
		other = "other processes but redis-server"
	}
	fmt.Fprintf(w, "  machine: load generator + fake APNs %.2f cores, %s %.2f cores (noise)\n", r.LoadgenCores, other, r.OtherCores)
	fmt.Fprintf(w, "  cpu %.0f ms = %.4f ms/callback (server process %.4f, plugins %.4f)  peak rss %.1f MiB (%d processes; the server process alone %.1f MiB; pss %.1f MiB)\n",
		r.CPUms, r.CPUPer, r.CPUServerPer, r.CPUPluginPer, r.PeakRSS, r.Procs, r.PeakRootRSS, r.PeakPSS)
	if r.Redis != nil {
		r.Redis.print(w)
	}
	if r.Kill != nil {
		r.Kill.print(w)
	}
}

func fmtCodes(m map[string]int) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := "{"
	for i, k := range keys {
		if i > 0 {
			s += " "
		}
		s += k + ":" + strconv.Itoa(m[k])
	}
	return s + "}"
}
