package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringside/ringside/plugins/sdk/deliverstream"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Supervised keeps one notifier's plugin process running: when the process
// exits it starts a new one with backoff and configures it like the first.
// Deliveries in flight on the dead process fail with an error (a transient
// failure, which the host retries) and later ones go to the new process.
type Supervised struct {
	spec       Spec
	configJSON []byte
	onRestart  func()
	backoff    func(failures int) time.Duration

	cur atomic.Pointer[Client]

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

// Supervise watches c, a started and configured plugin process of spec.
// onRestart (may be nil) is called after each successful restart. Close
// ends the supervision and the process.
func Supervise(c *Client, configJSON []byte, onRestart func()) *Supervised {
	s := &Supervised{
		spec:       c.spec,
		configJSON: configJSON,
		onRestart:  onRestart,
		backoff:    restartBackoff,
		kick:       make(chan struct{}, 1),
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

// Deliver delivers through the current process.
func (s *Supervised) Deliver(ctx context.Context, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	return deliverstream.Await(func(done func(*pluginpb.DeliverResponse, error)) { s.DeliverAsync(ctx, req, done) })
}

// DeliverAsync is Deliver through the current process without a goroutine
// waiting for the answer (see Client.DeliverAsync).
func (s *Supervised) DeliverAsync(ctx context.Context, req *pluginpb.DeliverRequest, done func(*pluginpb.DeliverResponse, error)) {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	c := s.cur.Load()
	if c.Exited() {
		s.wake()
		s.release()
		go done(nil, fmt.Errorf("notifier %q: %w", s.spec.Notifier, ErrRestarting))
		return
	}
	c.DeliverAsync(ctx, req, func(resp *pluginpb.DeliverResponse, err error) {
		if err != nil && c.Exited() {
			s.wake()
		}
		s.release()
		done(resp, err)
	})
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

// watch restarts the process when it exits. It ends when Close is called.
func (s *Supervised) watch() {
	defer close(s.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		case <-s.kick:
		}
		if !s.cur.Load().Exited() {
			continue
		}
		s.restart()
	}
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
			if s.onRestart != nil {
				s.onRestart()
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

func (s *Supervised) startConfigured() (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, s.spec)
	if err != nil {
		return nil, err
	}
	attrErrs, err := c.Configure(ctx, s.spec.Notifier, s.configJSON)
	if err == nil {
		for _, ae := range attrErrs {
			if !ae.Warning {
				err = fmt.Errorf("configure: %s: %s", ae.Attribute, ae.Message)
				break
			}
		}
	}
	if err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}
