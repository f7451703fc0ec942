package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// peer is the fake APNs both servers push to, in the load generator's
// process so that send time and arrival time are read from one clock. It
// records, per callback, when its push arrived.
type peer struct {
	*fakes.APNs
	// CAFile is the fake's certificate as PEM, for SSL_CERT_FILE.
	CAFile string

	delay time.Duration // answer after this long
	fault float64       // fraction of pushes answered 503

	run    atomic.Pointer[runRecord] // the run pushes are recorded into
	faults atomic.Int64
}

// newPeer starts the fake APNs, checking provider tokens when checkJWT,
// and writes its certificate into dir.
func newPeer(dir string, delay time.Duration, fault float64, checkJWT bool) (*peer, error) {
	p := &peer{delay: delay, fault: fault}
	p.APNs = fakes.StartAPNs(fakes.APNsOptions{TeamID: teamID, KeyID: keyID, SkipTokenCheck: !checkJWT, Discard: true, Answer: p.answer})
	var err error
	if p.CAFile, err = p.WriteCA(dir); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// answer records the arrival of a push, at its receipt (before any
// -apns-delay); a push that will be answered 503 has not arrived.
func (p *peer) answer(push *fakes.Push) fakes.Answer {
	if p.fault > 0 && rand.Float64() < p.fault {
		p.faults.Add(1)
		return fakes.Answer{Status: 503, Reason: "ServiceUnavailable", Delay: p.delay}
	}
	p.record(push.Body, mono(push.At))
	return fakes.Answer{Delay: p.delay}
}

// runRecord is one load run's arrivals, indexed by the callback's sequence
// number (the last 12 hex digits of its sid; the first 8 are the run tag).
type runRecord struct {
	tag      uint32
	arrivals []atomic.Int64 // mono ns of the first accepted push; 0: none
	dups     atomic.Int64
	foreign  atomic.Int64 // pushes of another run, or with an unreadable sid
}

func newRunRecord(tag uint32, n int) *runRecord {
	return &runRecord{tag: tag, arrivals: make([]atomic.Int64, n)}
}

// record notes the arrival at of the push whose JSON body is body.
func (p *peer) record(body []byte, at int64) {
	rr := p.run.Load()
	if rr == nil {
		return
	}
	tag, seq, ok := parseSID(sidOf(body))
	if !ok || tag != rr.tag || seq >= uint64(len(rr.arrivals)) {
		rr.foreign.Add(1)
		return
	}
	if !rr.arrivals[seq].CompareAndSwap(0, at) {
		rr.dups.Add(1)
	}
}

// sidOf reads the top-level "sid" of a push body: a scan for the key (the
// payloads of both servers write it without spaces), else a JSON decode.
func sidOf(body []byte) string {
	const key = `"sid":"`
	if i := bytes.Index(body, []byte(key)); i >= 0 && len(body) >= i+len(key)+36 {
		return string(body[i+len(key) : i+len(key)+36])
	}
	var v struct {
		SID string `json:"sid"`
	}
	_ = json.Unmarshal(body, &v)
	return v.SID
}

// epoch is the origin of the times the load generator records: mono(t)
// is t's distance from it on the monotonic clock, in nanoseconds. The
// wall clock would do for one process too, but a VM's wall clock is
// stepped and slewed (by tens of milliseconds a second, seen on this
// box), which would read as latency.
var epoch = time.Now()

func mono(t time.Time) int64 { return int64(t.Sub(epoch)) }

// makeSID builds a unique UUID-shaped sid from a run tag and a sequence number.
func makeSID(tag uint32, seq uint64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", tag, seq)
}

func parseSID(s string) (tag uint32, seq uint64, ok bool) {
	if len(s) != 36 {
		return 0, 0, false
	}
	t, err1 := strconv.ParseUint(s[:8], 16, 32)
	n, err2 := strconv.ParseUint(s[24:], 16, 64)
	return uint32(t), n, err1 == nil && err2 == nil
}
