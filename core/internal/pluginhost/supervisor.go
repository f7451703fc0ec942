package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Supervised keeps one notifier's plugin process running: when the process
// exits it starts a new one with backoff and configures it like the first.
// Deliveries in flight on the dead process fail with an error (a transient
// failure, which the host retries) and later ones go to the new process.
//
// With Checks.Spare it keeps a spare beside the current process: a second
// process, started and configured, that takes over the moment the current
// one is found dead, so that a crash costs the deliveries in flight a retry
// and no later delivery a process start. A new spare is then started in the
// background.
type Supervised struct {
	spec       Spec
	configJSON []byte
	hooks      Hooks
	backoff    func(failures int) time.Duration
	checks     Checks
	began      time.Time

	cur   atomic.Pointer[Client]
	spare atomic.Pointer[Client]
	// spareFails and spareNext pace the starts of spares that fail; only
	// the watch goroutine touches them.
	spareFails  int
	spareNext   time.Time
	spareMisses int
	// filling: a spare is being started, on a goroutine of its own (fills
	// counts it, for Close), which hands it over on started.
	filling bool
	fills   sync.WaitGroup
	started chan spareStart

	mu       sync.Mutex
	inflight int  // deliveries running
	retired  bool // close when inflight reaches 0

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// ErrRestarting is returned by Deliver while the plugin process is being
// replaced.
var ErrRestarting = errors.New("plugin process exited; restarting")

// Hooks are told what the supervisor does; any may be nil.
type Hooks struct {
	// OnRestart is called after each successful restart.
	OnRestart func()
	// OnKill is called when the supervisor kills a process that is alive
	// but not serving, with the reason: "health" (it missed its health
	// checks) or "hung" (it answered none of its calls).
	OnKill func(reason string)
}

// Checks say when a live process is taken for hung and killed.
type Checks struct {
	// Every is the interval of health checks; Timeout bounds each.
	Every, Timeout time.Duration
	// Misses health checks failed in a row (no answer, not a "not ready"
	// answer) get the process killed.
	Misses int
	// Stall: a process that has answered nothing for this long while a
	// call sent to it this long ago waits is killed.
	Stall time.Duration
	// Spare: from this long after the supervision starts (so that a spare
	// does not slow the start of ringside), keep a spare process; zero:
	// none (unlike the other fields, zero is not a default).
	Spare time.Duration
}

// DefaultChecks: a health check every second with a one-second timeout,
// killed after three missed in a row (a stopped process is replaced within
// about four seconds, well inside a 60 s ring window); killed when it has
// answered no call for 30 s while one sent 30 s ago waits. A single call
// can legitimately take seconds (a webhook's timeout, the FCM SDK's own
// retries of a 503), but a process that answers nothing at all for half a
// ring window is not serving; its calls still have the other half to be
// retried. No spare.
var DefaultChecks = Checks{Every: time.Second, Timeout: time.Second, Misses: 3, Stall: 30 * time.Second}

// Supervise watches c, a started and configured plugin process of spec.
// onRestart (may be nil) is called after each successful restart. Close
// ends the supervision and the process.
func Supervise(c *Client, configJSON []byte, onRestart func()) *Supervised {
	return SuperviseWith(c, configJSON, Hooks{OnRestart: onRestart}, DefaultChecks)
}

// SuperviseWith is Supervise with hooks and checks of the caller's; zero
// fields of checks take DefaultChecks'.
func SuperviseWith(c *Client, configJSON []byte, hooks Hooks, checks Checks) *Supervised {
	if checks.Every <= 0 {
		checks.Every = DefaultChecks.Every
	}
	if checks.Timeout <= 0 {
		checks.Timeout = DefaultChecks.Timeout
	}
	if checks.Misses <= 0 {
		checks.Misses = DefaultChecks.Misses
	}
	if checks.Stall <= 0 {
		checks.Stall = DefaultChecks.Stall
	}
	s := &Supervised{
		spec:       c.spec,
		configJSON: configJSON,
		hooks:      hooks,
		checks:     checks,
		backoff:    restartBackoff,
		began:      time.Now(),
		kick:       make(chan struct{}, 1),
		started:    make(chan spareStart, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	s.cur.Store(c)
	go s.watch()
	return s
}

// restartBackoff is 100 ms doubling to 5 s.
func restartBackoff(failures int) time.Duration {
	d := 100 * time.Millisecond << min(failures, 6)
	return min(d, 5*time.Second)
}

// Client returns the current process.
func (s *Supervised) Client() *Client { return s.cur.Load() }

// Deliver makes the attempt through the current process. While the
// process is being replaced it fails at once with ErrRestarting, which the
// caller retries like any failed attempt.
func (s *Supervised) Deliver(ctx context.Context, a *delivery.Attempt) ([]delivery.Outcome, error) {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	defer s.release()
	c := s.cur.Load()
	if c.Exited() {
		if c = s.promote(c); c == nil {
			s.wake()
			return nil, fmt.Errorf("notifier %q: %w", s.spec.Notifier, ErrRestarting)
		}
	}
	outs, err := c.Deliver(ctx, a)
	if err != nil && c.dead() {
		// The retry of this attempt goes to the spare.
		s.promote(c)
		s.wake()
	}
	return outs, err
}

// promote makes the spare the current process in place of dead, and
// returns the current process; nil when there was no live spare (the watch
// goroutine then starts a process).
func (s *Supervised) promote(dead *Client) *Client {
	sp := s.spare.Swap(nil)
	if sp == nil {
		return nil
	}
	if sp.Exited() {
		go sp.Kill()
		return nil
	}
	if !s.cur.CompareAndSwap(dead, sp) {
		// Replaced meanwhile by another promotion or a restart: keep the
		// spare for the next death.
		if !s.spare.CompareAndSwap(nil, sp) {
			go sp.Kill()
		}
		return s.cur.Load()
	}
	go dead.Kill()
	select {
	case <-s.stop:
		// Close may have killed dead before the swap: nobody else will
		// end sp.
		sp.Kill()
		return nil
	default:
	}
	if s.hooks.OnRestart != nil {
		s.hooks.OnRestart()
	}
	if log := s.spec.Logger; log != nil {
		log.Warn("plugin process restarted", "notifier", s.spec.Notifier, "plugin", s.spec.Plugin, "spare", true)
	}
	// The watch goroutine starts the next spare.
	s.wake()
	return sp
}

// Health reports whether the current process is alive and ready.
func (s *Supervised) Health(ctx context.Context) error {
	c := s.cur.Load()
	if c.Exited() {
		s.wake()
		return fmt.Errorf("notifier %q: %w", s.spec.Notifier, ErrRestarting)
	}
	return c.Health(ctx)
}

// Close stops supervising and kills the process. Deliveries still running
// fail.
func (s *Supervised) Close() {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		// A spare still starting ends with stop; one started meanwhile
		// is waiting on started.
		s.fills.Wait()
		select {
		case st := <-s.started:
			if st.c != nil {
				st.c.Kill()
			}
		default:
		}
		if sp := s.spare.Swap(nil); sp != nil {
			sp.Kill()
		}
		s.cur.Load().Kill()
	})
}

// Retire closes s once the deliveries in flight on it have ended (after a
// reload replaced it), without blocking.
func (s *Supervised) Retire() {
	s.mu.Lock()
	s.retired = true
	idle := s.inflight == 0
	s.mu.Unlock()
	if idle {
		go s.Close()
	}
}

func (s *Supervised) release() {
	s.mu.Lock()
	s.inflight--
	closeNow := s.retired && s.inflight == 0
	s.mu.Unlock()
	if closeNow {
		go s.Close()
	}
}

func (s *Supervised) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// watch restarts the process when it exits, and kills it (to be
// restarted) when it misses its health checks or answers none of its
// calls. It ends when Close is called.
func (s *Supervised) watch() {
	defer close(s.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastCheck := time.Now()
	misses := 0
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		case <-s.kick:
		case st := <-s.started:
			s.spareStarted(st)
		}
		c := s.cur.Load()
		if c.dead() {
			misses = 0
			if s.promote(c) == nil {
				s.restart()
			}
			s.fillSpare()
			continue
		}
		s.fillSpare()
		if c.stream != nil && c.stream.Stalled(time.Now(), s.checks.Stall) {
			s.kill(c, "hung", fmt.Sprintf("no answer to its calls for %s", s.checks.Stall))
			continue
		}
		if time.Since(lastCheck) < s.checks.Every {
			continue
		}
		lastCheck = time.Now()
		s.checkSpare()
		if err := s.ping(c); err != nil {
			misses++
			if misses >= s.checks.Misses {
				misses = 0
				s.kill(c, "health", fmt.Sprintf("%d health checks in a row unanswered: %v", s.checks.Misses, err))
			}
			continue
		}
		misses = 0
	}
}

// checkSpare makes a health check of the spare, and kills it (to be
// replaced by fillSpare) when it missed checks.Misses in a row: a spare
// that answers nothing must not take over. It runs on the watch goroutine
// only.
func (s *Supervised) checkSpare() {
	sp := s.spare.Load()
	if sp == nil {
		return
	}
	err := s.ping(sp)
	if err == nil {
		s.spareMisses = 0
		return
	}
	if s.spareMisses++; s.spareMisses < s.checks.Misses {
		return
	}
	s.spareMisses = 0
	if s.spare.CompareAndSwap(sp, nil) {
		if log := s.spec.Logger; log != nil {
			log.Error("plugin spare process not serving; killed to be replaced", "notifier", s.spec.Notifier, "plugin", s.spec.Plugin, "detail", fmt.Sprintf("%d health checks in a row unanswered: %v", s.checks.Misses, err))
		}
		sp.killNow()
	}
}

// ping makes a health check of c and returns its error when it got no
// answer (a "not ready" answer is an answer: the process serves).
func (s *Supervised) ping(c *Client) error {
	ctx, cancel := s.untilClose(s.checks.Timeout)
	defer cancel()
	_, err := c.rpc.Health(ctx, &pluginpb.HealthRequest{})
	return err
}

// untilClose returns a context that ends after d, or as soon as Close is
// called, whichever comes first. Its goroutine ends with the context.
func (s *Supervised) untilClose(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// kill ends c, a process that is alive but not serving, at once (SIGKILL:
// a stopped process cannot answer a polite request), so that the calls
// waiting on it fail and are retried on the new process watch starts.
func (s *Supervised) kill(c *Client, reason, why string) {
	if log := s.spec.Logger; log != nil {
		log.Error("plugin process not serving; killed to be restarted", "notifier", s.spec.Notifier, "plugin", s.spec.Plugin, "reason", reason, "detail", why)
	}
	if s.hooks.OnKill != nil {
		s.hooks.OnKill(reason)
	}
	c.killNow()
	s.wake()
}

// restart replaces the exited process, retrying with backoff until it
// succeeds or Close is called.
func (s *Supervised) restart() {
	log := s.spec.Logger
	for failures := 0; ; failures++ {
		c, err := s.startConfigured()
		if err == nil {
			old := s.cur.Swap(c)
			old.Kill()
			if s.hooks.OnRestart != nil {
				s.hooks.OnRestart()
			}
			if log != nil {
				log.Warn("plugin process restarted", "notifier", s.spec.Notifier, "plugin", s.spec.Plugin, "attempts", failures+1)
			}
			return
		}
		wait := s.backoff(failures)
		if log != nil {
			log.Error("plugin restart failed", "notifier", s.spec.Notifier, "plugin", s.spec.Plugin, "error", err, "retry_in", wait)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(wait):
		}
	}
}

// spareStart is the outcome of a spare's start: the process, or why not.
type spareStart struct {
	c   *Client
	err error
}

// fillSpare starts a spare, when checks.Spare asks for one and there is
// none (or it died idle), once checks.Spare has passed since the
// supervision began, pacing starts that fail like restarts. The start runs
// on a goroutine of its own, so that a spare that hangs while it starts
// holds up no watch of the serving process; spareStarted takes its
// outcome. It runs on the watch goroutine only.
func (s *Supervised) fillSpare() {
	s.mu.Lock()
	retired := s.retired
	s.mu.Unlock()
	if retired || s.filling || s.checks.Spare <= 0 || time.Since(s.began) < s.checks.Spare {
		return
	}
	if sp := s.spare.Load(); sp != nil {
		if !sp.Exited() {
			return
		}
		if s.spare.CompareAndSwap(sp, nil) {
			go sp.Kill()
		}
	}
	if time.Now().Before(s.spareNext) {
		return
	}
	s.filling = true
	s.fills.Add(1)
	go func() {
		defer s.fills.Done()
		c, err := s.startConfigured()
		s.started <- spareStart{c, err}
	}()
}

// spareStarted keeps the spare fillSpare started, or paces the next try.
// It runs on the watch goroutine only.
func (s *Supervised) spareStarted(st spareStart) {
	s.filling = false
	if st.err != nil {
		wait := s.backoff(s.spareFails)
		s.spareFails++
		s.spareNext = time.Now().Add(wait)
		if log := s.spec.Logger; log != nil {
			log.Error("plugin spare process failed to start", "notifier", s.spec.Notifier, "plugin", s.spec.Plugin, "error", st.err, "retry_in", wait)
		}
		return
	}
	s.spareFails = 0
	if !s.spare.CompareAndSwap(nil, st.c) {
		go st.c.Kill()
		return
	}
	if log := s.spec.Logger; log != nil {
		log.Info("plugin spare process ready", "notifier", s.spec.Notifier, "plugin", s.spec.Plugin)
	}
}

// startTimeout bounds a restart's start and configure.
const startTimeout = 30 * time.Second

func (s *Supervised) startConfigured() (*Client, error) {
	// Close does not wait for a start that hangs.
	ctx, cancel := s.untilClose(startTimeout)
	defer cancel()
	ctx, span := StartSpan(ctx, s.spec)
	defer span.End()
	c, err := Start(ctx, s.spec)
	if err != nil {
		span.SetStatus(codes.Error, "start failed")
		return nil, err
	}
	attrErrs, err := c.Configure(ctx, s.configJSON)
	if err == nil {
		for _, ae := range attrErrs {
			if !ae.Warning {
				err = fmt.Errorf("configure: %s: %s", ae.Attribute, ae.Message)
				break
			}
		}
	}
	if err != nil {
		span.SetStatus(codes.Error, "configure failed")
		c.Kill()
		return nil, err
	}
	return c, nil
}
