package cluster

// Pending work in Redis, and its takeover when a replica dies.
//
// Key layout (KeyPrefix first; a hash tag puts each call's keys in one
// Cluster slot, and each replica's keys in one slot):
//
//	{prefix}dedup:{<hex k>}   string: the claim of call k, the claiming
//	                          replica's id, PX the dedup window.
//	{prefix}w:{<hex k>}       hash: the work of call k, recorded with its
//	                          claim. k = journal key, o = owner replica id,
//	                          t = deadline (Unix ms), r = data,
//	                          "d" NUL <notifier> NUL <token> = "1" per
//	                          device delivered (token "" for a notifier
//	                          without devices), done = "1" once every
//	                          delivery ended. PEXPIREAT deadline + 60 s; kept
//	                          after done (so Held sees it) until then.
//	{prefix}wi:{<replica id>} sorted set: the replica's index of its work,
//	                          member <hex k>, score its deadline (Unix ms).
//	{prefix}hb:{<replica id>} string: the replica's heartbeat (Unix ms),
//	                          PX HeartbeatTTL. No heartbeat: the replica is
//	                          dead.
//	{prefix}replicas          sorted set: member replica id, score its last
//	                          heartbeat (Unix ms); how replicas are found.
//	{prefix}take:{<replica id>} string NX PX 10 s: the lock of one takeover
//	                          of that replica's work, the taker's id.
//
// A replica id holds no '{' or '}' (one that does is hex-encoded).
//
// The index may hold members whose work is not the replica's: a lost claim
// adds its member too (one round trip for the claim and the index), and a
// taker adds what it is about to take before taking it. A takeover skips
// them (the work's owner is checked), and a replica removes the members of
// its index whose deadline passed (every TTL).
//
// Operations:
//
//   - Claim: one round trip (DoMulti) of an EVAL on {dedup, w} (SET NX PX
//     the replica id; if set, the work hash written afresh and its expiry)
//     and ZADD to the replica's index. Without a record: SET NX PX alone.
//   - Delivered, Finish: queued, written at most 50 ms later, 512 a round
//     trip, by a script that sets the field only if the hash is still the
//     work of that journal key (not expired, not claimed again since), so
//     a mark never creates a hash; Finish also removes the index member.
//     Retried while Redis is away or busy, until the work's deadline;
//     beyond 100,000 waiting, marks are dropped (counted, logged).
//   - Heartbeat, every TTL/8: SET hb PX TTL GET, then ZADD replicas. GET
//     tells a Redis that lost the last heartbeat (restarted, or it
//     lapsed): the replica then counts its unbroken heartbeats from zero,
//     and declares others dead only after TTL + TTL/8 of them.
//   - Takeover, every TTL/8: the replicas without a heartbeat, each under
//     its lock (SET take NX GET PX 10 s, which also reads whether it is
//     the taker's own from an attempt that failed midway); 256 members at
//     a time: ZADD to the taker's index, then a script per member (owner
//     is the dead replica, or the taker whose answer was lost, and not
//     done: owner := taker, all fields returned; past its deadline: done,
//     not handed over), then ZREM from the dead replica's index. Once it
//     is empty: ZREM replicas, unlock.

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// DefaultHeartbeatTTL is how long a heartbeat lives when
// WorkOptions.HeartbeatTTL is zero.
const DefaultHeartbeatTTL = 2 * time.Second

const (
	// workKeep is how long the work of a call stays in Redis after its
	// deadline, done or not.
	workKeep = time.Minute
	// takeLockTTL bounds how long a taker that died holds a takeover.
	takeLockTTL = 10 * time.Second
	// takePage is how many calls a takeover takes in one round trip.
	takePage = 256
	// flushEvery bounds how long a mark waits in the queue.
	flushEvery = 50 * time.Millisecond
	// maxQueue bounds the marks waiting to be written; more are dropped.
	maxQueue = 100_000
	// writeBatch is how many marks go in one round trip.
	writeBatch = 512
	// writeTimeout bounds one round trip of the writer or of Run.
	writeTimeout = 5 * time.Second
)

// errWorkClosed is Claim's error after Close.
var errWorkClosed = errors.New("cluster work closed")

// Work is this replica's share of the cluster's accepted calls: the
// cross-replica dedup claim, the pending work recorded with it, and the
// takeover of the work of replicas that died.
//
// The claim is first-wins and atomic (SET NX in a script), so two replicas
// given the same callback at the same instant ring once; there is no
// stagger. A won claim with a record writes the work in the same round
// trip; marks of progress (Delivered, Finish) are queued and written in the
// background. Run heartbeats and takes over; Close flushes and leaves.
type Work struct {
	c       *Client
	rid     string
	ttl     time.Duration
	log     *slog.Logger
	metrics *telemetry.Metrics
	now     func() time.Time

	// Keys of this replica, built once.
	hbKey, indexKey, replicasKey string

	mu     sync.Mutex
	closed bool
	byKey  map[string]held     // journal key -> the work held
	byHex  map[[16]byte]string // call -> journal key of the newest work held
	queue  []op
	// healthy is the Unix ns since which this replica's heartbeats have
	// succeeded without a break; 0 while they fail.
	healthy atomic.Int64

	wake       chan struct{}        // a mark was queued
	flush      chan context.Context // Close: write everything, bounded by the context, and end
	writerDone chan struct{}        // the writer ended
	flushErr   error                // what the writer's last flush left unwritten; read after writerDone
	closing    chan struct{}        // closed by Close: Run ends
	closeOnce  sync.Once
	runs       sync.WaitGroup

	dropped atomic.Int64          // marks dropped since the last log line
	errLog  telemetry.EverySecond // Redis errors of Run and of the writer
	dropLog telemetry.EverySecond // marks dropped
}

// held is a call whose work this replica recorded or took.
type held struct {
	k        [16]byte
	deadline int64 // Unix ms
}

// WorkOptions are the settings of Client.Work. The zero value of each is
// its default.
type WorkOptions struct {
	// ReplicaID names this process in Redis; empty: a random one
	// ("<hostname>-<pid>-<8 hex>"). A restarted process is a new replica.
	// An id with '{' or '}' is hex-encoded.
	ReplicaID string
	// HeartbeatTTL is how long a replica's heartbeat lives: a replica whose
	// heartbeat is older is dead and its work is taken. 0: 2 s. Heartbeats
	// are written every TTL/8.
	HeartbeatTTL time.Duration
	// Logger receives takeovers, and Redis errors (at most one line a
	// second). Nil: discarded.
	Logger *slog.Logger
	// Metrics, when set, counts takeovers (ClusterTakeovers), the calls
	// taken (ClusterCallsTaken) and the marks dropped on a full queue
	// (ClusterMarksDropped).
	Metrics *telemetry.Metrics
}

// Work returns this replica's Work on c. It starts a goroutine, the
// writer of marks, which Close ends.
func (c *Client) Work(o WorkOptions) *Work {
	rid := o.ReplicaID
	if rid == "" {
		rid = randomReplicaID()
	}
	if strings.ContainsAny(rid, "{}") {
		rid = hex.EncodeToString([]byte(rid))
	}
	ttl := o.HeartbeatTTL
	if ttl <= 0 {
		ttl = DefaultHeartbeatTTL
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Work{
		c:           c,
		rid:         rid,
		ttl:         ttl,
		log:         log,
		metrics:     o.Metrics,
		now:         time.Now,
		hbKey:       c.prefix + "hb:{" + rid + "}",
		indexKey:    c.prefix + "wi:{" + rid + "}",
		replicasKey: c.prefix + "replicas",
		byKey:       map[string]held{},
		byHex:       map[[16]byte]string{},
		wake:        make(chan struct{}, 1),
		flush:       make(chan context.Context),
		writerDone:  make(chan struct{}),
		closing:     make(chan struct{}),
	}
	go w.writer()
	return w
}

// randomReplicaID returns "<hostname>-<pid>-<8 hex>".
func randomReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "ringside"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// ReplicaID returns the id of this replica in Redis.
func (w *Work) ReplicaID() string { return w.rid }

// workKey and claimKey return the keys of call k.
func (w *Work) workKey(k [16]byte) string {
	var buf [32]byte
	hex.Encode(buf[:], k[:])
	return w.c.prefix + "w:{" + string(buf[:]) + "}"
}

func (w *Work) claimKey(k [16]byte) string {
	var buf [32]byte
	hex.Encode(buf[:], k[:])
	return w.c.prefix + "dedup:{" + string(buf[:]) + "}"
}

func hexOf(k [16]byte) string {
	var buf [32]byte
	hex.Encode(buf[:], k[:])
	return string(buf[:])
}

func (w *Work) indexOf(rid string) string { return w.c.prefix + "wi:{" + rid + "}" }

// claimScript claims KEYS[1] (SET NX PX) for replica ARGV[1] for ARGV[2] ms
// and, when that won, writes the work hash KEYS[2] afresh: k = ARGV[3],
// o = ARGV[1], t = ARGV[4], r = ARGV[5], expiring at ARGV[6] (Unix ms). It
// returns 1 when the claim won, else 0. It is sent whole (EVAL) each time,
// so a claim is one round trip even on a Redis that restarted; Redis keeps
// the compiled script.
const claimScript = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'k', ARGV[3], 'o', ARGV[1], 't', ARGV[4], 'r', ARGV[5])
redis.call('PEXPIREAT', KEYS[2], ARGV[6])
return 1
`

// Claim claims k across replicas for window (first claim wins,
// atomically, no stagger) and, when the claim is won and rec is not nil,
// records rec as this replica's pending work, in the same round trip. It
// reports false when another replica (or this one) claimed k inside the
// window. rec.Key is the journal key (kept for idempotency ids),
// rec.Deadline the last instant any delivery may run, rec.Data opaque
// bytes (up to about 1 MiB); rec.Delivered is not read.
//
// A claim that fails (an error) may still have been made in Redis: its
// work, if any, is then not this replica's to mark, and is taken over when
// this replica dies.
func (w *Work) Claim(ctx context.Context, k [16]byte, window time.Duration, rec *journal.Entry) (bool, error) {
	rdb := w.c.rdb
	window = max(window, time.Millisecond)
	if rec == nil {
		err := rdb.Do(ctx, rdb.B().Set().Key(w.claimKey(k)).Value(w.rid).Nx().Px(window).Build()).Error()
		switch {
		case err == nil:
			return true, nil
		case rueidis.IsRedisNil(err):
			return false, nil
		}
		return false, w.c.wrap("claim callback", err)
	}

	// Held before the round trip, so that a takeover running meanwhile
	// does not hand this call over as well.
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false, errWorkClosed
	}
	prev, hadPrev := w.byHex[k]
	deadline := rec.Deadline.UnixMilli()
	w.byKey[rec.Key] = held{k: k, deadline: deadline}
	w.byHex[k] = rec.Key
	w.mu.Unlock()

	// One string holds every argument built here: one allocation.
	var buf [192]byte
	b := append(buf[:0], w.c.prefix...)
	b = append(b, "dedup:{"...)
	ih := len(b)
	b = hex.AppendEncode(b, k[:])
	ih2 := len(b)
	b = append(b, '}')
	ic := len(b)
	b = append(b, w.c.prefix...)
	b = append(b, "w:{"...)
	b = append(b, b[ih:ih2]...)
	b = append(b, '}')
	iw := len(b)
	b = strconv.AppendInt(b, window.Milliseconds(), 10)
	it := len(b)
	b = strconv.AppendInt(b, deadline, 10)
	ie := len(b)
	b = strconv.AppendInt(b, deadline+workKeep.Milliseconds(), 10)
	s := string(b)
	claimKey, member, workKey := s[:ic], s[ih:ih2], s[ic:iw]
	res := rdb.DoMulti(ctx,
		rdb.B().Eval().Script(claimScript).Numkeys(2).Key(claimKey, workKey).
			Arg(w.rid, s[iw:it], rec.Key, s[it:ie], rueidis.BinaryString(rec.Data), s[ie:]).Build(),
		rdb.B().Zadd().Key(w.indexKey).ScoreMember().ScoreMember(float64(deadline), member).Build(),
	)
	won, err := res[0].AsInt64()
	if err != nil || won != 1 {
		w.mu.Lock()
		delete(w.byKey, rec.Key)
		if w.byHex[k] == rec.Key {
			if _, ok := w.byKey[prev]; hadPrev && ok {
				w.byHex[k] = prev
			} else {
				delete(w.byHex, k)
			}
		}
		w.mu.Unlock()
		if err != nil {
			return false, w.c.wrap("claim callback", err)
		}
		return false, nil
	}
	if res[1].Error() != nil {
		// The work is recorded but not indexed (a Cluster whose index
		// node failed alone): index it in the background.
		w.enqueue(op{kind: opIndex, k: k, key: rec.Key, until: deadline})
	}
	return true, nil
}

// Forget removes the claim of k and the work recorded with it (a callback
// not accepted after all).
func (w *Work) Forget(ctx context.Context, k [16]byte) error {
	w.mu.Lock()
	if key, ok := w.byHex[k]; ok {
		delete(w.byKey, key)
		delete(w.byHex, k)
	}
	w.mu.Unlock()
	rdb := w.c.rdb
	for _, res := range rdb.DoMulti(ctx,
		rdb.B().Del().Key(w.claimKey(k), w.workKey(k)).Build(),
		rdb.B().Zrem().Key(w.indexKey).Member(hexOf(k)).Build(),
	) {
		if err := res.Error(); err != nil {
			return w.c.wrap("forget callback", err)
		}
	}
	return nil
}

// Held reports whether Redis holds work for k, recorded by any replica,
// finished or not (until 60 s past its deadline).
func (w *Work) Held(ctx context.Context, k [16]byte) (bool, error) {
	rdb := w.c.rdb
	n, err := rdb.Do(ctx, rdb.B().Exists().Key(w.workKey(k)).Build()).AsInt64()
	if err != nil {
		return false, w.c.wrap("look up pending work", err)
	}
	return n == 1, nil
}

// Delivered marks that notifier delivered to token ("" for a notifier
// without devices) for the work whose journal key is key. It does not wait
// for Redis: the mark is queued and written in the background (within
// about 50 ms), and retried while Redis is away until the work's deadline.
// A key this Work never recorded or took, or finished, is ignored.
func (w *Work) Delivered(key, notifier, token string) {
	w.mu.Lock()
	h, ok := w.byKey[key]
	w.mu.Unlock()
	if !ok {
		return
	}
	w.enqueue(op{kind: opMark, k: h.k, key: key, field: "d\x00" + notifier + "\x00" + token, until: h.deadline})
}

// Finish says every delivery of the work whose journal key is key ended.
// Like Delivered, it does not wait for Redis.
func (w *Work) Finish(key string) {
	w.mu.Lock()
	h, ok := w.byKey[key]
	if !ok {
		w.mu.Unlock()
		return
	}
	delete(w.byKey, key)
	// A newer work of the same call, claimed after the window, keeps the
	// index member.
	newest := w.byHex[h.k] == key
	if newest {
		delete(w.byHex, h.k)
	}
	w.mu.Unlock()
	w.enqueue(op{kind: opFinish, k: h.k, key: key, until: h.deadline, unindex: newest})
}

// Run heartbeats this replica and takes over the work of dead replicas
// until ctx ends or Close is called, calling take with each batch of
// entries taken (Delivered filled from the marks). Entries past their
// deadline are never handed over: they are finished in Redis and counted
// as dropped. take runs on Run's goroutine and must not block long.
//
// A replica takes over others only once its own heartbeats have succeeded
// without a break for HeartbeatTTL + HeartbeatTTL/8: after Redis restarts
// or this replica reconnects, every live replica has had the time to
// heartbeat again before any is declared dead. Redis errors are logged at
// most once a second, and Run keeps going.
func (w *Work) Run(ctx context.Context, take func([]journal.Entry)) {
	// Counted under mu, so that Close, once closed is set, waits for
	// every Run that started.
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.runs.Add(1)
	w.mu.Unlock()
	defer w.runs.Done()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() {
		select {
		case <-w.closing:
			cancel()
		case <-ctx.Done():
		}
	})
	wg.Go(func() { w.heartbeats(ctx) })

	tick := time.NewTicker(w.ttl / 8)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if w.mayTakeOver() {
			w.takeOverDead(ctx, take)
		}
		if n%8 == 0 {
			w.sweep(ctx)
		}
	}
}

// heartbeats writes this replica's heartbeat every TTL/8 until ctx ends,
// and keeps w.healthy.
func (w *Work) heartbeats(ctx context.Context) {
	tick := time.NewTicker(w.ttl / 8)
	defer tick.Stop()
	var lastOK time.Time
	for {
		now := w.now()
		err := w.beat(ctx, now, &lastOK)
		if err != nil && ctx.Err() == nil {
			w.logErr("cluster: heartbeat failed; taking over no replica until heartbeats succeed again", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// beat writes one heartbeat at now. The heartbeats are unbroken when the
// previous one succeeded less than a TTL ago and Redis still had it;
// otherwise (a failure, a stall, a Redis that lost its keys) they count
// again from now.
func (w *Work) beat(ctx context.Context, now time.Time, lastOK *time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, w.ttl/2)
	defer cancel()
	rdb := w.c.rdb
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	err := rdb.Do(ctx, rdb.B().Set().Key(w.hbKey).Value(ms).Get().Px(w.ttl).Build()).Error()
	lost := rueidis.IsRedisNil(err) // Redis did not have the last one
	if lost {
		err = nil
	}
	if err == nil {
		// Registered only once the heartbeat is written, so that a
		// replica found here has had one.
		err = rdb.Do(ctx, rdb.B().Zadd().Key(w.replicasKey).ScoreMember().ScoreMember(float64(now.UnixMilli()), w.rid).Build()).Error()
	}
	if err != nil {
		w.healthy.Store(0)
		return w.c.wrap("heartbeat", err)
	}
	if lost && !lastOK.IsZero() {
		// Its calls may have been taken over meanwhile, and delivered
		// twice: by the taker and by this replica.
		w.log.Warn("cluster: this replica's heartbeat lapsed (or redis lost it); another replica may have taken its calls over", "replica", w.rid, "last_heartbeat", *lastOK)
	}
	if w.healthy.Load() == 0 || lost || now.Sub(*lastOK) > w.ttl {
		w.healthy.Store(now.UnixNano())
	}
	*lastOK = now
	return nil
}

// mayTakeOver reports whether this replica's heartbeats have succeeded
// without a break for TTL + TTL/8.
func (w *Work) mayTakeOver() bool {
	h := w.healthy.Load()
	return h != 0 && w.now().Sub(time.Unix(0, h)) >= w.ttl+w.ttl/8
}

// sweep removes the members of this replica's index whose deadline passed:
// their work, done or not, is never handed over.
func (w *Work) sweep(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	rdb := w.c.rdb
	before := "(" + strconv.FormatInt(w.now().UnixMilli(), 10)
	if err := rdb.Do(ctx, rdb.B().Zremrangebyscore().Key(w.indexKey).Min("-inf").Max(before).Build()).Error(); err != nil && ctx.Err() == nil {
		w.logErr("cluster: removing past work from this replica's index failed", w.c.wrap("sweep index", err))
	}
}

// takeOverDead takes over the work of every replica whose heartbeat
// lapsed.
func (w *Work) takeOverDead(ctx context.Context, take func([]journal.Entry)) {
	// A read may wait for Redis across an outage (the client sends it
	// again once reconnected) and answer from a Redis where every
	// heartbeat lapsed meanwhile: what it says is trusted only while this
	// replica's own heartbeats went on unbroken since before it was sent.
	h := w.healthy.Load()
	trusted := func() bool { return w.healthy.Load() == h && w.mayTakeOver() }
	rctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	rdb := w.c.rdb
	all, err := rdb.Do(rctx, rdb.B().Zrange().Key(w.replicasKey).Start("0").Stop("-1").Build()).AsStrSlice()
	if err != nil {
		if ctx.Err() == nil {
			w.logErr("cluster: listing replicas failed", w.c.wrap("list replicas", err))
		}
		return
	}
	others := all[:0]
	for _, r := range all {
		if r != w.rid {
			others = append(others, r)
		}
	}
	if len(others) == 0 {
		return
	}
	cmds := make(rueidis.Commands, len(others))
	for i, r := range others {
		cmds[i] = rdb.B().Exists().Key(w.c.prefix + "hb:{" + r + "}").Build()
	}
	for i, res := range rdb.DoMulti(rctx, cmds...) {
		n, err := res.AsInt64()
		if err != nil {
			if ctx.Err() == nil {
				w.logErr("cluster: reading heartbeats failed", w.c.wrap("read heartbeats", err))
			}
			return
		}
		if n == 0 {
			if !trusted() {
				return
			}
			if err := w.takeOver(ctx, others[i], trusted, take); err != nil && ctx.Err() == nil {
				w.logErr("cluster: taking over a replica whose heartbeat lapsed failed; tried again later", err, "replica", others[i])
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// takeScript takes the work hash KEYS[1] of dead replica ARGV[1] for
// replica ARGV[2] at ARGV[3] (Unix ms). Work that is neither's, or done,
// is left: nil. Work past its deadline is finished: 0. Otherwise the owner
// becomes ARGV[2] and every field is returned. Work already ARGV[2]'s is
// returned again (a taker whose answer was lost takes it once more; it
// knows what it holds).
var takeScript = newScript(`
local o = redis.call('HGET', KEYS[1], 'o')
if (o ~= ARGV[1] and o ~= ARGV[2]) or redis.call('HEXISTS', KEYS[1], 'done') == 1 then return false end
if (tonumber(redis.call('HGET', KEYS[1], 't')) or 0) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'done', '1')
  return 0
end
redis.call('HSET', KEYS[1], 'o', ARGV[2])
return redis.call('HGETALL', KEYS[1])
`)

// unlockScript deletes the lock KEYS[1] if ARGV[1] holds it.
const unlockScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

// takeOver takes the work of the dead replica r, a page at a time, under
// a lock: its index's members are added to this replica's index first,
// then taken (takeScript), then removed from r's index. A taker that dies
// midway leaves the rest in r's index for the next, and what it took in its
// own, taken when it is dead in turn.
func (w *Work) takeOver(ctx context.Context, r string, trusted func() bool, take func([]journal.Entry)) error {
	rdb := w.c.rdb
	lockKey := w.c.prefix + "take:{" + r + "}"
	theirs := w.indexOf(r)
	rctx, cancel := context.WithTimeout(ctx, writeTimeout)
	res := rdb.DoMulti(rctx,
		rdb.B().Set().Key(lockKey).Value(w.rid).Nx().Get().Px(takeLockTTL).Build(),
		rdb.B().Exists().Key(w.c.prefix+"hb:{"+r+"}").Build(),
		rdb.B().Zscore().Key(w.replicasKey).Member(r).Build(),
	)
	cancel()
	holder, err := res[0].ToString()
	switch {
	case rueidis.IsRedisNil(err):
	case err != nil:
		return w.c.wrap("lock takeover", err)
	case holder != w.rid:
		return nil // another replica is taking it over
	}
	// Not dead after all (back meanwhile), or taken over meanwhile by
	// another replica, which removes it from the replicas before it
	// unlocks.
	hb, err := res[1].AsInt64()
	if err == nil {
		err = res[2].Error()
	}
	if err != nil || hb != 0 || !trusted() {
		ctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		_ = rdb.Do(ctx, rdb.B().Eval().Script(unlockScript).Numkeys(1).Key(lockKey).Arg(w.rid).Build()).Error()
		if rueidis.IsRedisNil(err) {
			return nil
		}
		if err != nil {
			return w.c.wrap("read heartbeat", err)
		}
		return nil
	}

	var calls, dropped int
	for ctx.Err() == nil {
		n, d, more, err := w.takePage(ctx, r, theirs, lockKey, trusted, take)
		calls += n
		dropped += d
		if err != nil {
			if calls+dropped > 0 {
				w.log.Info("cluster: took over part of the calls of a replica whose heartbeat lapsed", "replica", r, "calls", calls, "dropped_past_deadline", dropped)
			}
			return err
		}
		if !more {
			break
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	rctx, cancel = context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	for _, res := range rdb.DoMulti(rctx,
		rdb.B().Zrem().Key(w.replicasKey).Member(r).Build(),
		rdb.B().Eval().Script(unlockScript).Numkeys(1).Key(lockKey).Arg(w.rid).Build(),
	) {
		if err := res.Error(); err != nil {
			err = w.c.wrap("end takeover", err)
			w.logErr("cluster: ending a takeover failed", err, "replica", r)
			break
		}
	}
	w.log.Info("cluster: took over the calls of a replica whose heartbeat lapsed", "replica", r, "calls", calls, "dropped_past_deadline", dropped)
	if w.metrics != nil {
		w.metrics.ClusterTakeovers.Inc()
	}
	return nil
}

// takePage takes up to takePage calls of r's index and hands them to
// take. more is false once the index is empty.
func (w *Work) takePage(ctx context.Context, r, theirs, lockKey string, trusted func() bool, take func([]journal.Entry)) (calls, dropped int, more bool, _ error) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	rdb := w.c.rdb
	page, err := rdb.Do(ctx, rdb.B().Zrange().Key(theirs).Start("0").Stop(strconv.Itoa(takePage-1)).Withscores().Build()).AsZScores()
	if err != nil {
		return 0, 0, false, w.c.wrap("read index", err)
	}
	if len(page) == 0 {
		return 0, 0, false, nil
	}
	if !trusted() {
		return 0, 0, false, errors.New("take over calls: this replica's heartbeats broke off; stopped")
	}
	// Ours first: a taker that dies after taking leaves the calls in its
	// own index.
	add := rdb.B().Zadd().Key(w.indexKey).ScoreMember()
	for _, z := range page {
		add = add.ScoreMember(z.Score, z.Member)
	}
	if err := rdb.Do(ctx, add.Build()).Error(); err != nil {
		return 0, 0, false, w.c.wrap("index taken calls", err)
	}
	execs := make([]scriptExec, len(page))
	nowMs := strconv.FormatInt(w.now().UnixMilli(), 10)
	for i, z := range page {
		execs[i] = scriptExec{keys: []string{w.c.prefix + "w:{" + z.Member + "}"}, args: []string{r, w.rid, nowMs}}
	}
	results := takeScript.run(ctx, rdb, execs)
	type taken struct {
		k [16]byte
		e journal.Entry
	}
	var (
		got     []taken
		done    = make([]string, 0, len(page)) // answered: off their index
		lastErr error
	)
	for i, res := range results {
		err := res.Error()
		switch {
		case rueidis.IsRedisNil(err):
			done = append(done, page[i].Member)
			continue
		case err != nil:
			if refused(err) {
				done = append(done, page[i].Member) // it always will be
			}
			lastErr = err
			continue
		}
		done = append(done, page[i].Member)
		if n, err := res.AsInt64(); err == nil && n == 0 {
			dropped++
			continue
		}
		fields, err := res.AsStrSlice()
		if err != nil {
			lastErr = err
			continue
		}
		var t taken
		if _, err := hex.Decode(t.k[:], []byte(page[i].Member)); err != nil {
			continue
		}
		var ok bool
		if t.e, ok = entryOf(fields); ok {
			got = append(got, t)
		}
	}
	var batch []journal.Entry
	w.mu.Lock()
	for _, t := range got {
		if _, ours := w.byHex[t.k]; ours {
			continue // taken before, or claimed here meanwhile
		}
		w.byKey[t.e.Key] = held{k: t.k, deadline: t.e.Deadline.UnixMilli()}
		w.byHex[t.k] = t.e.Key
		batch = append(batch, t.e)
	}
	w.mu.Unlock()
	if len(done) > 0 {
		rem := rdb.B().Zrem().Key(theirs).Member(done...).Build()
		lock := rdb.B().Pexpire().Key(lockKey).Milliseconds(takeLockTTL.Milliseconds()).Build()
		for _, res := range rdb.DoMulti(ctx, rem, lock) {
			if err := res.Error(); err != nil && lastErr == nil {
				lastErr = err
			}
		}
	}
	if len(batch) > 0 {
		if w.metrics != nil {
			w.metrics.ClusterCallsTaken.Add(float64(len(batch)))
		}
		take(batch)
	}
	if lastErr != nil {
		return len(batch), dropped, false, w.c.wrap("take over calls", lastErr)
	}
	return len(batch), dropped, true, nil
}

// entryOf reads the fields of a work hash (name, value, …) into an
// entry; ok is false when the journal key or the deadline is missing.
func entryOf(fields []string) (e journal.Entry, ok bool) {
	var hasKey, hasDeadline bool
	for i := 0; i+1 < len(fields); i += 2 {
		f, v := fields[i], fields[i+1]
		switch {
		case f == "k":
			e.Key, hasKey = v, true
		case f == "t":
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return e, false
			}
			e.Deadline, hasDeadline = time.UnixMilli(ms), true
		case f == "r":
			e.Data = []byte(v)
		case strings.HasPrefix(f, "d\x00"):
			notifier, token, ok := strings.Cut(f[2:], "\x00")
			if !ok {
				continue
			}
			if e.Delivered == nil {
				e.Delivered = map[[2]string]bool{}
			}
			e.Delivered[[2]string{notifier, token}] = true
		}
	}
	return e, hasKey && hasDeadline
}

// Close ends Run, flushes the queued marks (bounded by ctx), and deletes
// this replica's heartbeat, so that nothing waits for it to lapse. Work
// still pending stays for takeover: a live replica takes it at its next
// tick. With none pending, the replica's index and its entry among the
// replicas go too. Claim fails after Close; marks are ignored.
func (w *Work) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.closing)
	})
	ran := make(chan struct{})
	go func() {
		w.runs.Wait()
		close(ran)
	}()
	select {
	case <-ran:
	case <-ctx.Done():
	}
	select {
	case w.flush <- ctx:
	case <-w.writerDone:
	}
	select {
	case <-w.writerDone:
	case <-ctx.Done():
		return fmt.Errorf("leave redis: %w", ctx.Err())
	}
	w.mu.Lock()
	pending := len(w.byKey)
	w.mu.Unlock()
	rdb := w.c.rdb
	cmds := rueidis.Commands{rdb.B().Del().Key(w.hbKey).Build()}
	if pending == 0 && w.flushErr == nil {
		cmds = append(cmds,
			rdb.B().Del().Key(w.indexKey).Build(),
			rdb.B().Zrem().Key(w.replicasKey).Member(w.rid).Build())
	} else {
		// Listed, so a live replica finds the work at its next tick.
		cmds = append(cmds, rdb.B().Zadd().Key(w.replicasKey).ScoreMember().ScoreMember(float64(w.now().UnixMilli()), w.rid).Build())
	}
	for _, res := range rdb.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return w.c.wrap("leave redis", err)
		}
	}
	return w.flushErr
}

// The writer of marks.

type opKind uint8

const (
	opMark   opKind = iota // set field of the work
	opFinish               // set done; unindex: remove from this replica's index
	opIndex                // add to this replica's index
)

// op is a mark waiting to be written.
type op struct {
	kind    opKind
	unindex bool
	k       [16]byte
	key     string // journal key: a mark is written only to this work
	field   string
	until   int64 // Unix ms: past it the op is dropped
}

// markScript sets field ARGV[2] of work KEYS[1] to "1" if the work is the
// one of journal key ARGV[1] (not expired, nor claimed again since).
var markScript = newScript(`
if redis.call('HGET', KEYS[1], 'k') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], '1')
return 1
`)

// enqueue queues o for the writer, or drops it when the queue is full.
func (w *Work) enqueue(o op) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	full := len(w.queue) >= maxQueue
	if !full {
		w.queue = append(w.queue, o)
	}
	w.mu.Unlock()
	if full {
		w.drop(1)
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// drop counts n marks dropped, and logs them at most once a second.
func (w *Work) drop(n int) {
	w.dropped.Add(int64(n))
	if w.metrics != nil {
		w.metrics.ClusterMarksDropped.Add(float64(n))
	}
	if _, ok := w.dropLog.Allow(w.now()); ok {
		w.log.Error("cluster: marks of pending work dropped: too many waiting for redis", "dropped", w.dropped.Swap(0), "queue", maxQueue)
	}
}

// writer writes the queued marks, at most flushEvery after the first is
// queued, until Close.
func (w *Work) writer() {
	defer close(w.writerDone)
	timer := time.NewTimer(0)
	<-timer.C
	var backoff time.Duration
	for {
		select {
		case <-w.wake:
		case ctx := <-w.flush:
			w.flushErr = w.drain(ctx)
			return
		}
		wait := flushEvery
		if backoff > 0 {
			wait = backoff
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case ctx := <-w.flush:
			timer.Stop()
			w.flushErr = w.drain(ctx)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		failed, err := w.write(ctx, w.takeQueue())
		cancel()
		if len(failed) == 0 {
			backoff = 0
			continue
		}
		w.logErr("cluster: writing marks of pending work failed; retried until their deadline", err, "marks", len(failed))
		w.requeue(failed)
		backoff = min(max(2*backoff, 100*time.Millisecond), time.Second)
	}
}

// drain writes every queued mark, retrying until ctx ends; it returns an
// error when some are left.
func (w *Work) drain(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for {
		ops := w.takeQueue()
		if len(ops) == 0 {
			return nil
		}
		failed, err := w.write(ctx, ops)
		if len(failed) == 0 {
			continue
		}
		w.requeue(failed)
		select {
		case <-ctx.Done():
			return w.c.wrap(fmt.Sprintf("write %d marks of pending work", len(failed)), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (w *Work) takeQueue() []op {
	w.mu.Lock()
	q := w.queue
	w.queue = nil
	w.mu.Unlock()
	return q
}

// requeue puts failed back in front of the queue.
func (w *Work) requeue(failed []op) {
	w.mu.Lock()
	w.queue = append(failed, w.queue...)
	if len(w.queue) > maxQueue {
		n := len(w.queue) - maxQueue
		w.queue = w.queue[n:]
		defer w.drop(n)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// write writes ops, writeBatch a round trip, and returns those to try
// again (Redis away or slow) with the last error. Ops past their deadline
// are dropped; so are ops Redis refuses.
func (w *Work) write(ctx context.Context, ops []op) (failed []op, lastErr error) {
	rdb := w.c.rdb
	now := w.now().UnixMilli()
	for len(ops) > 0 {
		chunk := ops[:min(len(ops), writeBatch)]
		ops = ops[len(chunk):]
		var (
			execs   []scriptExec
			execOf  []int // op of each exec
			cmds    rueidis.Commands
			cmdOf   []int // op of each command
			retried = make([]bool, len(chunk))
		)
		for i, o := range chunk {
			if o.until < now {
				continue
			}
			switch o.kind {
			case opMark, opFinish:
				field := o.field
				if o.kind == opFinish {
					field = "done"
				}
				execs = append(execs, scriptExec{keys: []string{w.workKey(o.k)}, args: []string{o.key, field}})
				execOf = append(execOf, i)
				if o.kind == opFinish && o.unindex {
					cmds = append(cmds, rdb.B().Zrem().Key(w.indexKey).Member(hexOf(o.k)).Build())
					cmdOf = append(cmdOf, i)
				}
			case opIndex:
				cmds = append(cmds, rdb.B().Zadd().Key(w.indexKey).ScoreMember().ScoreMember(float64(o.until), hexOf(o.k)).Build())
				cmdOf = append(cmdOf, i)
			}
		}
		fail := func(i int, err error) {
			if refused(err) {
				w.logErr("cluster: redis refused a mark of pending work; dropped", w.c.wrap("write mark", err))
				return
			}
			lastErr = err
			if !retried[i] {
				retried[i] = true
				failed = append(failed, chunk[i])
			}
		}
		if len(cmds) > 0 {
			for j, res := range rdb.DoMulti(ctx, cmds...) {
				if err := res.Error(); err != nil {
					fail(cmdOf[j], err)
				}
			}
		}
		for j, res := range markScript.run(ctx, rdb, execs) {
			if err := res.Error(); err != nil {
				fail(execOf[j], err)
			}
		}
	}
	return failed, lastErr
}

// Scripts run in background batches: EVALSHA, and EVAL for those a Redis
// without the script (restarted) answers NOSCRIPT.

type script struct{ body, sha string }

type scriptExec struct{ keys, args []string }

func newScript(body string) *script {
	sum := sha1.Sum([]byte(body))
	return &script{body: body, sha: hex.EncodeToString(sum[:])}
}

// run runs s once per exec in one round trip (two when some node lacked
// the script) and returns the results in order.
func (s *script) run(ctx context.Context, rdb rueidis.Client, execs []scriptExec) []rueidis.RedisResult {
	if len(execs) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, len(execs))
	for i, e := range execs {
		cmds[i] = rdb.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(e.keys))).Key(e.keys...).Arg(e.args...).Build()
	}
	results := rdb.DoMulti(ctx, cmds...)
	var again []int
	for i, res := range results {
		if err, ok := rueidis.IsRedisErr(res.Error()); ok && err.IsNoScript() {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return results
	}
	cmds = cmds[:0]
	for _, i := range again {
		e := execs[i]
		cmds = append(cmds, rdb.B().Eval().Script(s.body).Numkeys(int64(len(e.keys))).Key(e.keys...).Arg(e.args...).Build())
	}
	for j, res := range rdb.DoMulti(ctx, cmds...) {
		results[again[j]] = res
	}
	return results
}

// refused reports whether err is Redis refusing a command for good (a
// generic error, a key of the wrong type): sending it again would not
// help. A Redis loading its data, busy, in failover or out of memory
// answers errors of other kinds, worth trying again.
func refused(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	if !ok {
		return false
	}
	msg := e.Error()
	return strings.HasPrefix(msg, "ERR") || strings.HasPrefix(msg, "WRONGTYPE")
}

// logErr logs err at WARN, at most once a second (the next line counts
// the lines not logged).
func (w *Work) logErr(msg string, err error, args ...any) {
	n, ok := w.errLog.Allow(w.now())
	if !ok {
		return
	}
	w.log.Warn(msg, append(args, "error", err, "not_logged", n)...)
}
