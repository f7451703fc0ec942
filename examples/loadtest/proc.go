package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux platform Go supports.
const clockTicks = 100

// procStat is a process tree's CPU time and resident memory.
type procStat struct {
	CPU     time.Duration // utime+stime, summed over the tree
	RootCPU time.Duration // utime+stime of the root process alone
	RSS     int64         // VmRSS in bytes, summed over the tree
	RootRSS int64         // VmRSS of the root process alone
	PSS     int64         // Pss summed over the tree: pages shared between the processes (the same binary's text) counted once
	Procs   int
}

// statTree reads pid and all its descendants.
func statTree(pid int) procStat {
	var s procStat
	for _, p := range tree(pid) {
		cpu, ok := cpuOf(p)
		if !ok {
			continue
		}
		s.CPU += cpu
		rss := rssOf(p)
		s.RSS += rss
		s.PSS += pssOf(p)
		if p == pid {
			s.RootRSS = rss
			s.RootCPU = cpu
		}
		s.Procs++
	}
	return s
}

// tree returns pid and its descendants, read from the ppid field of every
// /proc/<n>/stat.
func tree(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(n)
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], n)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name: [0] is state, [1] ppid, … [11] utime, [12] stime.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}

func cpuOf(pid int) (time.Duration, bool) {
	f := statFields(pid)
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks, true
}

func rssOf(pid int) int64 { return kbField(pid, "status", "VmRSS:") }

func pssOf(pid int) int64 { return kbField(pid, "smaps_rollup", "Pss:") }

// kbField reads a "Name:   N kB" line of /proc/<pid>/<file>, in bytes.
func kbField(pid int, file, name string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// sampler polls a process tree and keeps the peak RSS.
type sampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	peakRSS  int64
	peakRoot int64
	peakPSS  int64
	maxProcs int
}

func startSampler(pid int, every time.Duration) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	st := statTree(s.pid)
	s.mu.Lock()
	s.peakRSS = max(s.peakRSS, st.RSS)
	s.peakRoot = max(s.peakRoot, st.RootRSS)
	s.peakPSS = max(s.peakPSS, st.PSS)
	s.maxProcs = max(s.maxProcs, st.Procs)
	s.mu.Unlock()
}

// Stop ends sampling and returns the peak RSS of the tree and of the root
// process alone, the peak PSS of the tree, and the largest tree seen.
func (s *sampler) Stop() (int64, int64, int64, int) {
	close(s.stop)
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakRSS, s.peakRoot, s.peakPSS, s.maxProcs
}

// machineBusy is the CPU time every CPU of the machine spent not idle
// (user, nice, system, irq, softirq, steal), from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}
