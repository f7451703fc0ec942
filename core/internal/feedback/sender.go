package feedback

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// Backoff bounds the pause before a batch's next attempt: random in
// [0, Base·2ⁿ⁻¹] after the nth, capped at Max.
type Backoff = delivery.Backoff

// Defaults of Options.
var (
	DefaultBackoff        = Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}
	DefaultAttemptTimeout = 30 * time.Second
)

// Options configures a Sender. Config, Log and Deliverer are required;
// the rest has defaults.
type Options struct {
	// Config is the feedback block.
	Config *config.Feedback
	// Kind is the device kind of the notifier Config names: a notifier
	// with one is refused, since a batch is for no device.
	Kind string
	// Log is the call log whose events are sent.
	Log *calllog.Log
	// Deliverer returns the notifier's live plugin process, nil while it
	// has none (the attempt is then retried). It is called per attempt,
	// so a batch goes on through a process a reload restarted.
	Deliverer func() delivery.Deliverer
	// Metrics counts drops and batches; nil counts nothing.
	Metrics *telemetry.Metrics
	// Logger logs dropped batches (WARN) and retries (DEBUG); nil logs
	// nothing.
	Logger *slog.Logger
	// Now is the clock; nil → time.Now.
	Now func() time.Time
	// Jitter returns a number in [0, 1) that scales each backoff; nil →
	// math/rand/v2.
	Jitter func() float64
	// Nonce tells this process's batch ids from another's; "" → random.
	Nonce string
	// Backoff is the retries' backoff; zero → DefaultBackoff.
	Backoff Backoff
	// AttemptTimeout bounds one attempt; 0 → DefaultAttemptTimeout.
	AttemptTimeout time.Duration
}

// Sender sends the call log's outcome events to the app server. Its two
// goroutines end when Stop returns: one takes the events off the
// subscription into the queue, the other batches and sends them.
type Sender struct {
	opt      Options
	kinds    kinds
	sub      *calllog.Subscription
	queue    chan Event
	stopping chan struct{} // closed by Stop: send what is queued, then end
	stopOnce sync.Once
	cancel   context.CancelFunc // cancels send's ctx when Stop's ends: drop the rest
	done     chan struct{}      // closed when the sending goroutine ends
	log      *slog.Logger
	dropped  atomic.Uint64
}

// Start subscribes to the call log and starts sending. Stop ends it.
func Start(opt Options) (*Sender, error) {
	f := opt.Config
	if f == nil || opt.Log == nil || opt.Deliverer == nil {
		return nil, errors.New("feedback: Config, Log and Deliverer are required")
	}
	if opt.Kind != "" {
		return nil, fmt.Errorf("feedback.notifier %q delivers to %s devices; feedback needs a notifier without a device kind, such as a webhook notifier", f.Notifier, opt.Kind)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Jitter == nil {
		opt.Jitter = rand.Float64
	}
	if opt.Nonce == "" {
		var b [16]byte
		_, _ = crand.Read(b[:])
		opt.Nonce = hex.EncodeToString(b[:])
	}
	if opt.Backoff == (Backoff{}) {
		opt.Backoff = DefaultBackoff
	}
	if opt.AttemptTimeout <= 0 {
		opt.AttemptTimeout = DefaultAttemptTimeout
	}
	s := &Sender{
		opt:      opt,
		kinds:    kinds{},
		queue:    make(chan Event, max(f.Queue, 1)),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		log:      opt.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range f.Events {
		s.kinds[k] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.sub = opt.Log.Subscribe(max(f.Queue, 1), s.drop)
	go s.take()
	go s.send(ctx)
	return s, nil
}

// Stop stops taking events and sends what is queued; it returns when that
// is sent, or when ctx ends: then the batch in flight and the events
// still queued are dropped (and counted), and ctx's error is returned.
// Stop on a nil Sender does nothing.
func (s *Sender) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() { close(s.stopping) })
	defer s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	<-s.done
	return ctx.Err()
}

// Close stops at once: what is queued is dropped (and counted). After a
// Stop that returned, or on a nil Sender, it does nothing.
func (s *Sender) Close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Stop(ctx)
}

// Dropped is how many call log events found the queue full.
func (s *Sender) Dropped() uint64 { return s.dropped.Load() }

func (s *Sender) drop() {
	s.dropped.Add(1)
	if m := s.opt.Metrics; m != nil {
		m.FeedbackEventsDropped.Inc()
	}
}

// take moves the events of the configured kinds from the subscription to
// the queue, never waiting: an event that finds the queue full is
// dropped. Once stopping, it ends the subscription, moves what it still
// holds, and closes the queue.
func (s *Sender) take() {
	defer close(s.queue)
	put := func(e *calllog.Event) {
		ev, ok := s.kinds.outcome(e, s.opt.Log)
		if !ok {
			return
		}
		select {
		case s.queue <- ev:
		default:
			s.drop()
		}
	}
	for {
		select {
		case e := <-s.sub.C:
			put(e)
		case <-s.stopping:
			s.sub.Close() // after it, nothing more is sent to sub.C
			for {
				select {
				case e := <-s.sub.C:
					put(e)
				default:
					return
				}
			}
		}
	}
}

// send batches the queue's events and delivers one batch at a time, until
// the queue is closed and empty; once ctx ends, it drops what is left.
func (s *Sender) send(ctx context.Context) {
	defer close(s.done)
	for {
		ev, ok := <-s.queue
		if !ok {
			return
		}
		batch := s.fill([]Event{ev})
		if ctx.Err() != nil {
			s.dropBatch(batch, "shutdown grace over")
			continue
		}
		s.deliver(ctx, batch)
	}
}

// fill adds queued events to batch until it holds Batch events, flush_after
// has passed, or (once stopping) the queue is closed: take closes it as
// soon as it has moved the subscription's last events.
func (s *Sender) fill(batch []Event) []Event {
	f := s.opt.Config
	t := time.NewTimer(f.FlushAfter)
	defer t.Stop()
	stopping := s.stopping
	for len(batch) < f.Batch {
		if stopping == nil {
			ev, ok := <-s.queue
			if !ok {
				return batch
			}
			batch = append(batch, ev)
			continue
		}
		select {
		case ev, ok := <-s.queue:
			if !ok {
				return batch
			}
			batch = append(batch, ev)
		case <-t.C:
			return batch
		case <-stopping:
			stopping = nil
		}
	}
	return batch
}

// MaxBatchBytes bounds a batch's payload, well within what the plugin
// host sends in one message: a larger batch (long reasons) goes as two
// halves, in order.
const MaxBatchBytes = 256 << 10

// deliver sends one batch, retrying it until it is delivered, it fails
// permanently, retry_for has passed or Stop's ctx ends.
func (s *Sender) deliver(ctx context.Context, batch []Event) {
	body, err := encode(batch)
	if err != nil {
		s.dropBatch(batch, "encode: "+err.Error())
		return
	}
	if len(body) > MaxBatchBytes && len(batch) > 1 {
		h := len(batch) / 2
		s.deliver(ctx, batch[:h])
		s.deliver(ctx, batch[h:])
		return
	}
	a := &delivery.Attempt{ID: s.batchID(batch), Call: &callback.Call{}, Payload: body}
	giveUp := s.opt.Now().Add(s.opt.Config.RetryFor)
	var res delivery.Result
	var reason string
	s.opt.Backoff.Retry(ctx, giveUp, s.opt.Now, s.opt.Jitter, func(n int) (bool, time.Duration) {
		a.Number = n
		if n > 1 {
			s.log.Debug("feedback batch retried", "id", a.ID, "attempt", n, "events", len(batch), "last reason", reason)
		}
		var after time.Duration
		res, reason, after = s.attempt(ctx, a)
		switch res {
		case delivery.Delivered, delivery.Permanent, delivery.Gone:
			return true, 0
		}
		return false, after
	})
	switch {
	case res == delivery.Delivered:
		if m := s.opt.Metrics; m != nil {
			m.FeedbackBatches.WithLabelValues("delivered").Inc()
		}
	case res == delivery.Permanent || res == delivery.Gone:
		s.dropBatch(batch, reason)
	case ctx.Err() != nil:
		s.dropBatch(batch, "shutdown grace over; last reason: "+reason)
	default:
		s.dropBatch(batch, "retry_for over; last reason: "+reason)
	}
}

// attempt makes one attempt of a and classifies it.
func (s *Sender) attempt(ctx context.Context, a *delivery.Attempt) (res delivery.Result, reason string, after time.Duration) {
	name := s.opt.Config.Notifier
	d := s.opt.Deliverer()
	if d == nil {
		return delivery.Retry, fmt.Sprintf("notifier %q has no plugin process", name), 0
	}
	ctx, cancel := context.WithTimeout(ctx, s.opt.AttemptTimeout)
	defer cancel()
	a.Deadline = s.opt.Now().Add(s.opt.AttemptTimeout)
	outs, err := d.Deliver(ctx, a)
	switch {
	case err != nil:
		return delivery.Retry, err.Error(), 0
	case len(outs) != 1:
		return delivery.Retry, fmt.Sprintf("notifier %q: %d outcomes for one batch", name, len(outs)), 0
	}
	o := outs[0]
	return o.Result, o.Reason, o.RetryAfter
}

// dropBatch counts and logs a batch given up.
func (s *Sender) dropBatch(batch []Event, reason string) {
	if m := s.opt.Metrics; m != nil {
		m.FeedbackBatches.WithLabelValues("dropped").Inc()
	}
	s.log.Warn("feedback batch dropped", "notifier", s.opt.Config.Notifier, "id", s.batchID(batch), "events", len(batch), "reason", reason)
}

// batchID is the batch's delivery id: the same on every attempt, unique
// to this process's batch of these events.
func (s *Sender) batchID(batch []Event) string {
	h := sha256.New()
	h.Write([]byte(s.opt.Nonce))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], batch[0].seq)
	binary.BigEndian.PutUint64(b[8:], batch[len(batch)-1].seq)
	h.Write(b[:])
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}
