package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/ringside/ringside/core/internal/admin"
	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/cluster"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/dispatch"
	"github.com/ringside/ringside/core/internal/feedback"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/pluginhost"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// NewLogger returns the slog logger the log block asks for, writing to w.
func NewLogger(l config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	o := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, o)))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, o)))
}

// Limits of both listeners: the request line and headers (a notify_cb
// query is at most ~30 KB: param and app_svr_data percent-encoded), and any
// body (none of ringside's requests has one).
const (
	maxHeader = 64 << 10
	maxBody   = 64 << 10
)

// JournalPath is where the delivery journal of a directory file lives:
// beside it, "ringside.db" → "ringside.journal" (and "x.journal" →
// "x.journal.journal", never the directory file itself).
func JournalPath(directoryPath string) string {
	p := strings.TrimSuffix(directoryPath, filepath.Ext(directoryPath)) + ".journal"
	if p == directoryPath {
		p += ".journal"
	}
	return p
}

// Serve loads the config at path and serves until SIGINT or SIGTERM, then
// stops accepting (503), drains deliveries up to shutdown_grace, leaves the
// rest in the journal and stops the plugins. SIGHUP or a change of the file
// reloads the config. Config diagnostics are written to stderr.
func Serve(ctx context.Context, path string, opt Options, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer cleanupPlugins(500 * time.Millisecond)
	// SIGHUP is caught before anything is announced: a SIGHUP sent as soon
	// as "ringside serving" is logged must reload, not end the process (its
	// default action). One that arrives during the start is a reload of
	// the config just loaded.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, diags := LoadConfig(path, opt)
	if diags.HasErrors() {
		WriteDiagnostics(stderr, cfg, diags)
		return errConfig
	}
	// The log block is read before plugins start, so their logs use it too.
	log := NewLogger(cfg.Log, stderr)
	opt.Logger = log
	metrics := telemetry.NewMetrics()
	opt.Metrics = metrics

	if err := admin.CheckListen(cfg.Server.AdminListen, cfg.Server.AdminToken); err != nil {
		return err
	}
	// Tracing starts before the plugins, so their first start (Info,
	// Schema, Configure) is traced like a restart's.
	tr, err := telemetry.StartTracing(ctx, tracingSettings(cfg, opt.getenv()), stdout)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Shutdown(sctx)
	}()
	first, more := Start(ctx, cfg, opt)
	diags = append(diags, more...)
	if diags.HasErrors() {
		if ctx.Err() != nil { // SIGTERM while the plugins started: not a config error
			log.Info("stopped before serving")
			return nil
		}
		WriteDiagnostics(stderr, cfg, diags)
		return errConfig
	}
	var rt atomic.Pointer[Runtime]
	rt.Store(first)
	defer func() { rt.Load().Close() }()
	logWarnings(log, cfg, diags)

	// The device directory: the embedded file, or in cluster mode the
	// directory shared in Redis, whose file and lock are never opened.
	var (
		store directory.Store
		file  *directory.SQLite // nil in cluster mode
		redis *cluster.Client   // nil in the embedded mode
		watch *clusterWatch     // nil in the embedded mode
	)
	if cfg.Cluster != nil {
		if redis, err = ConnectCluster(ctx, cfg); err != nil {
			if ctx.Err() != nil { // SIGTERM while connecting
				log.Info("stopped before serving")
				return nil
			}
			return err
		}
		defer redis.Close()
		watch = watchCluster(redis, strings.Join(cfg.Cluster.Addresses, ","), time.Second, log, metrics)
		defer watch.Close()
		// While Redis is away, calls ring the devices each callee had when
		// this replica last looked it up.
		store = cluster.NewLastKnown(boundedStore{redis.Directory()}, 0, func() bool { return watch.Err() == nil })
		log.Info("cluster: connected to redis", "addresses", strings.Join(cfg.Cluster.Addresses, ","), "mode", redis.Mode(), "key_prefix", cfg.Cluster.KeyPrefix)
	} else {
		if file, err = openDirectory(cfg, log, metrics); err != nil {
			return err
		}
		defer file.Close()
		// Every write goes through the cache (the devices API, pruning), so
		// the callback path reads the file only for a callee it has not
		// seen.
		cache := directory.NewCache(file, cfg.Directory.CacheUsers)
		if ok, err := cache.Preload(ctx, file); err != nil {
			return err
		} else if ok {
			log.Debug("directory preloaded into memory")
		}
		store = cache
		// Reading the whole file left garbage several times the cache's
		// size; give its pages back now rather than over the scavenger's
		// minutes.
		debug.FreeOSMemory()
	}

	var jr *journal.Journal
	var pending []journal.Entry
	if cfg.Delivery.Journal {
		if jr, err = journal.OpenWith(JournalPath(cfg.Directory.Path), journal.Options{Logger: log, Metrics: metrics}); err != nil {
			return err
		}
		defer jr.Close()
		if pending, err = jr.Pending(ctx, time.Now()); err != nil {
			return err
		}
		metrics.GaugeFunc("ringside_journal_entries", "Accepted callbacks in the journal whose deliveries have not ended.",
			func() float64 { return float64(jr.Size()) })
	}

	dedup := dispatch.NewDedup(cfg.Delivery.DedupWindow)
	calls := calllog.New(calllog.Options{MaxCalls: cfg.CallLog.MaxCalls, MaxAge: cfg.CallLog.MaxAge})
	metrics.GaugeFunc("ringside_call_log_records", "Calls the call log keeps.",
		func() float64 { return float64(calls.Len()) })
	dopt := dispatch.Options{
		Planner:     first.Planner(store),
		Dedup:       dedup,
		CallLog:     calls,
		MaxInFlight: cfg.Server.MaxInFlight,
		Metrics:     metrics,
		Logger:      log,
		Tracer:      tr.Provider.Tracer("github.com/ringside/ringside/core/internal/dispatch"),
	}
	if jr != nil {
		dopt.Journal = jr
	}
	// In cluster mode the cross-replica claim of a callback records its
	// work in Redis in the same round trip, for a live replica to take over
	// if this one dies; the journal keeps only what Redis could not take.
	var work *cluster.Work
	if redis != nil {
		work = redis.Work(cluster.WorkOptions{Logger: log, Metrics: metrics})
		dopt.SharedDedup = work
		dopt.SharedUp = func() bool { return watch.Err() == nil }
	}
	disp := dispatch.New(dopt)
	// Feedback to the app server, started before resumed calls publish.
	var fb *feedback.Sender
	if f := cfg.Feedback; f != nil {
		var kind string
		if n := first.Notifiers[f.Notifier]; n != nil {
			kind = n.Kind
		}
		fb, err = feedback.Start(feedback.Options{Config: f, Kind: kind, Log: calls, Metrics: metrics, Logger: log,
			Deliverer: func() delivery.Deliverer { return disp.Deliverer(f.Notifier) }})
		if err != nil {
			return err
		}
		defer fb.Close()
	}
	metrics.GaugeFunc("ringside_callbacks_in_delivery", "Accepted callbacks whose deliveries have not ended.",
		func() float64 { return float64(disp.InFlight()) })
	if n := disp.Resume(context.Background(), pending); n > 0 {
		log.Info("resumed journaled callbacks", "count", n)
	}
	workDone := make(chan struct{})
	if work != nil {
		log.Info("cluster: heartbeating; taking over the calls of replicas that die", "replica", work.ReplicaID())
		go func() {
			defer close(workDone)
			work.Run(ctx, func(es []journal.Entry) { disp.ResumeTaken(context.Background(), es) })
		}()
	} else {
		close(workDone)
	}

	var closing atomic.Bool
	var inFlight atomic.Int64
	notify := &swapHandler{}
	notify.set(notifyHandler(cfg, disp, metrics, log, &inFlight))
	callEvt, groupEvt := &swapHandler{}, &swapHandler{}
	callEvt.set(eventHandler(notifyHandler(cfg, disp, metrics, log, &inFlight), callback.KindCallEvent))
	groupEvt.set(eventHandler(notifyHandler(cfg, disp, metrics, log, &inFlight), callback.KindGroupCallEvent))
	// traced wraps a callback's handler in a server span; the middleware
	// costs a few % of CPU even with a no-op provider, so only when tracing.
	traced := func(h http.Handler, operation, path string) http.Handler {
		h = closingGuard(&closing, h)
		if !tr.Enabled() {
			return h
		}
		return otelhttp.NewHandler(h, operation,
			otelhttp.WithTracerProvider(tr.Provider),
			otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "GET " + path }),
			otelhttp.WithFilter(func(r *http.Request) bool { return !closing.Load() }),
		)
	}
	notifyCB := traced(notify, "notify_cb", cfg.Server.NotifyPath)
	// Not a ServeMux: it would redirect //notify_cb to notify_cb before
	// the source and token checks; any other path is a JSON 404.
	callEvtCB := traced(callEvt, "call_event", cfg.Server.CallEventPath)
	groupEvtCB := traced(groupEvt, "group_call_event", cfg.Server.GroupCallEventPath)
	public := eventPaths(cfg, callback.OnlyPath(cfg.Server.NotifyPath, notifyCB), callEvtCB, groupEvtCB)
	// durable is nil while what ringside accepts survives a restart: the
	// directory's writes and, when on, the journal's. Both are atomic loads.
	durable := func() error {
		if file != nil {
			if err := file.Healthy(); err != nil {
				return err
			}
		}
		if jr != nil {
			return jr.Healthy()
		}
		return nil
	}
	metrics.GaugeFunc("ringside_durable", "1 while device writes (and, with the journal, accepted callbacks) reach their files, else 0; /readyz says why.",
		func() float64 {
			if durable() != nil {
				return 0
			}
			return 1
		})
	adminHandler := admin.New(admin.Options{
		Store:      store,
		Token:      cfg.Server.AdminToken,
		MaxIDBytes: cfg.Server.MaxIDBytes,
		Ready: func(ctx context.Context) error {
			if closing.Load() {
				return errors.New("shutting down")
			}
			if err := durable(); err != nil {
				return err
			}
			if watch != nil {
				if err := watch.Err(); err != nil {
					return err
				}
			}
			return rt.Load().Health(ctx)
		},
		Metrics: metrics.Handler(),
		Logger:  log,
		CallLog: calls,
		Explain: func(ctx context.Context, rawQuery string) (any, error) {
			return explain(ctx, rt.Load().Planner(store), rawQuery, rt.Load().Config.Server.MaxIDBytes)
		},
	})

	pubLn, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	// Bounded, so idle connections cannot take every file descriptor: at
	// the bound a new connection closes the one idle the longest.
	pubLimit := callback.LimitListener(pubLn, callback.MaxConns())
	pubLn = pubLimit
	adminLn, err := net.Listen("tcp", cfg.Server.AdminListen)
	if err != nil {
		pubLn.Close()
		return fmt.Errorf("server.admin_listen: %w", err)
	}
	pubSrv := newServer(public, 10*time.Second, 30*time.Second, log)
	pubSrv.ConnState = pubLimit.ConnState
	adminSrv := newServer(adminHandler, 30*time.Second, 120*time.Second, log)

	scheme, err := useTLS(pubSrv, cfg.Server.TLS)
	if err != nil {
		return fmt.Errorf("server.tls: %w", err)
	}
	adminScheme, err := useTLS(adminSrv, cfg.Server.AdminTLS)
	if err != nil {
		return fmt.Errorf("server.admin_tls: %w", err)
	}
	errc := make(chan error, 2)
	go serveOn(pubSrv, pubLn, errc)
	go serveOn(adminSrv, adminLn, errc)
	log.Info("ringside serving",
		"notify_cb", scheme+"://"+pubLn.Addr().String()+cfg.Server.NotifyPath,
		"call_event", scheme+"://"+pubLn.Addr().String()+cfg.Server.CallEventPath,
		"group_call_event", scheme+"://"+pubLn.Addr().String()+cfg.Server.GroupCallEventPath,
		"admin", adminScheme+"://"+adminLn.Addr().String(),
		"page", adminScheme+"://"+adminLn.Addr().String()+"/",
		"notifiers", len(first.Notifiers), "routes", len(cfg.Routes), "config", path)

	// Reloads: SIGHUP (caught from the start, above), or a change of the
	// file seen by polling once it has settled. One goroutine applies them
	// in turn; a request made while another waits joins it (the file is
	// read when the reload runs). A shutdown cancels the reload in progress
	// (its plugin starts are abandoned, its new processes killed) and drops
	// the one waiting.
	reloads := make(chan string, 1)
	requestReload := func(why string) {
		select {
		case reloads <- why:
		default: // one is waiting already: it reads the file when it runs
		}
	}
	reload := func(why string) {
		refuse := func(diags string, attrs ...any) {
			metrics.Reloads.WithLabelValues("error").Inc()
			log.Error("config reload refused; the previous config keeps serving", append([]any{"reason", why, "diagnostics", diags}, attrs...)...)
		}
		// No mistake in loading, checking or rendering a config may end
		// the process: a panic is a refused reload.
		defer func() {
			if p := recover(); p != nil {
				refuse("", "panic", fmt.Sprint(p))
				log.Debug("config reload panic", "stack", string(debug.Stack()))
			}
		}()
		next, diags := LoadConfig(path, opt)
		var nrt *Runtime
		if !diags.HasErrors() {
			var more hcl.Diagnostics
			nrt, more = rt.Load().Reload(ctx, next, opt)
			diags = append(diags, more...)
		}
		if diags.HasErrors() {
			if ctx.Err() != nil {
				log.Info("config reload abandoned: shutting down", "reason", why)
				return
			}
			var buf bytes.Buffer
			WriteDiagnostics(&buf, next, diags)
			refuse(buf.String())
			return
		}
		logWarnings(log, next, diags)
		if changed := restartOnly(rt.Load().Config, next); len(changed) > 0 {
			log.Warn("config reloaded, but these settings apply only after a restart", "settings", strings.Join(changed, ", "))
		}
		rt.Store(nrt)
		disp.SetPlanner(nrt.Planner(store))
		dedup.SetWindow(next.Delivery.DedupWindow)
		calls.SetRetention(next.CallLog.MaxCalls, next.CallLog.MaxAge)
		disp.SetMaxInFlight(next.Server.MaxInFlight)
		notify.set(notifyHandler(next, disp, metrics, log, &inFlight))
		callEvt.set(eventHandler(notifyHandler(next, disp, metrics, log, &inFlight), callback.KindCallEvent))
		groupEvt.set(eventHandler(notifyHandler(next, disp, metrics, log, &inFlight), callback.KindGroupCallEvent))
		metrics.Reloads.WithLabelValues("ok").Inc()
		log.Info("config reloaded", "reason", why, "notifiers", len(nrt.Notifiers), "routes", len(next.Routes))
	}
	reloader := make(chan struct{}) // closed when the reloads' goroutine ends
	go func() {
		defer close(reloader)
		for {
			select {
			case <-ctx.Done():
				return
			case why := <-reloads:
				if ctx.Err() != nil {
					return
				}
				reload(why)
			}
		}
	}()
	go watchFile(ctx, path, time.Second, func() { requestReload("file changed") })

	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			requestReload("SIGHUP")
		case err := <-errc:
			return fmt.Errorf("listener: %w", err)
		}
	}

	// shutdown_grace applies only after a restart (restartOnly says so).
	grace := cfg.Server.ShutdownGrace
	log.Info("shutting down", "grace", grace)
	closing.Store(true)
	gctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = pubSrv.Shutdown(gctx)
	if err := disp.Wait(gctx); err != nil {
		if work != nil {
			log.Warn("shutdown grace over; another replica takes over the unfinished deliveries", "in_delivery", disp.InFlight())
		} else {
			log.Warn("shutdown grace over; unfinished deliveries stay in the journal", "in_delivery", disp.InFlight())
		}
	}
	if work != nil {
		// Takeovers stopped with ctx; marks not written yet are, and the
		// heartbeat goes, so what is left is taken over at once.
		<-workDone
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		if err := work.Close(cctx); err != nil {
			log.Warn("cluster: leaving redis", "error", err)
		}
		ccancel()
	}
	if err := fb.Stop(gctx); err != nil {
		log.Warn("shutdown grace over; feedback events not sent were dropped")
	}
	// A reload canceled by the shutdown ends at once (it only closes what
	// it started); it must end before the runtime is closed.
	select {
	case <-reloader:
	case <-time.After(max(time.Until(deadlineOf(gctx)), 0) + reloadEndWait):
		log.Warn("a config reload did not end; exiting anyway")
	}
	_ = adminSrv.Shutdown(gctx)
	log.Info("stopped")
	return nil
}

// reloadEndWait is how long past shutdown_grace a shutdown waits for a
// canceled reload to end.
const reloadEndWait = 500 * time.Millisecond

func deadlineOf(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}

// cleanupPlugins kills every plugin process left, waiting at most wait: a
// process whose start a shutdown abandoned cannot be killed before its
// start times out (go-plugin holds it), and dies with ringside instead
// (the kernel kills it when its parent exits, see pluginhost).
func cleanupPlugins(wait time.Duration) {
	done := make(chan struct{})
	go func() {
		pluginhost.Cleanup()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

// notifyHandler is the notify_cb handler of cfg; inFlight counts requests
// across the handlers of reloaded configs.
func notifyHandler(cfg *config.Config, disp *dispatch.Dispatcher, m *telemetry.Metrics, log *slog.Logger, inFlight *atomic.Int64) *callback.Handler {
	return &callback.Handler{
		Acceptor:          disp,
		MaxIDBytes:        cfg.Server.MaxIDBytes,
		RejectUnreachable: cfg.Server.RejectUnreachable,
		MaxInFlight:       cfg.Server.MaxInFlight,
		NotifyToken:       cfg.Server.NotifyToken,
		AllowCIDRs:        cfg.Server.AllowCIDRs,
		TrustedProxies:    cfg.Server.TrustedProxies,
		InFlight:          inFlight,
		Metrics:           m,
		Logger:            log,
	}
}

// eventHandler turns a notify_cb handler into the handler of an event kind.
func eventHandler(h *callback.Handler, kind callback.Kind) *callback.Handler {
	h.Kind = kind
	return h
}

// eventPaths serves the Call Event and Group Call Event callbacks at their
// paths (exact, as notify_cb's) and everything else through notify, which
// answers any path but its own 404.
func eventPaths(cfg *config.Config, notify, callEvt, groupEvt http.Handler) http.Handler {
	callPath, groupPath := cfg.Server.CallEventPath, cfg.Server.GroupCallEventPath
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case callPath:
			callEvt.ServeHTTP(w, r)
		case groupPath:
			groupEvt.ServeHTTP(w, r)
		default:
			notify.ServeHTTP(w, r)
		}
	})
}

func logWarnings(log *slog.Logger, cfg *config.Config, diags hcl.Diagnostics) {
	for _, d := range diags {
		var buf bytes.Buffer
		WriteDiagnostics(&buf, cfg, hcl.Diagnostics{d})
		log.Warn("config warning", "diagnostic", strings.TrimSpace(buf.String()))
	}
}

// restartOnly names the settings that differ between a and b but are
// applied only at start.
func restartOnly(a, b *config.Config) []string {
	var out []string
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			out = append(out, name)
		}
	}
	check("server.listen", a.Server.Listen, b.Server.Listen)
	check("server.notify_path", a.Server.NotifyPath, b.Server.NotifyPath)
	check("server.call_event_path", a.Server.CallEventPath, b.Server.CallEventPath)
	check("server.group_call_event_path", a.Server.GroupCallEventPath, b.Server.GroupCallEventPath)
	check("server.admin_listen", a.Server.AdminListen, b.Server.AdminListen)
	check("server.admin_token", a.Server.AdminToken, b.Server.AdminToken)
	check("server.tls", a.Server.TLS, b.Server.TLS)
	check("server.admin_tls", a.Server.AdminTLS, b.Server.AdminTLS)
	check("server.shutdown_grace", a.Server.ShutdownGrace, b.Server.ShutdownGrace)
	check("delivery.journal", a.Delivery.Journal, b.Delivery.Journal)
	check("directory", a.Directory, b.Directory)
	check("cluster", clusterSettingsOf(a.Cluster), clusterSettingsOf(b.Cluster))
	check("log", a.Log, b.Log)
	check("telemetry", a.Telemetry, b.Telemetry)
	check("feedback", feedback.Settings(a.Feedback), feedback.Settings(b.Feedback))
	return out
}

// clusterSettingsOf is c without where it is written: moving the block is
// no change.
func clusterSettingsOf(c *config.Cluster) *config.Cluster {
	if c == nil {
		return nil
	}
	cc := *c
	cc.DeclRange = hcl.Range{}
	return &cc
}

// openDirectory opens the embedded directory file of cfg, locked: one
// serve per file, with or without a journal (explain still reads it); the
// file is checked every second and rebuilt if it was removed.
func openDirectory(cfg *config.Config, log *slog.Logger, m *telemetry.Metrics) (*directory.SQLite, error) {
	return directory.OpenSQLiteWith(cfg.Directory.Path, directory.SQLiteOptions{
		Exclusive:   true,
		CheckEvery:  time.Second,
		WriteFailed: func(error) { m.DirectoryWriteErrors.Inc() },
		Logger:      log,
	})
}

// watchFile calls changed when path's size or modification time has
// changed and then held still for a whole poll: a file being written (an
// editor saving in place, a copy in progress) is not reloaded half-way.
// It polls every interval until ctx ends. A missing file is not a change
// to reload (an editor may remove it before writing it anew).
func watchFile(ctx context.Context, path string, every time.Duration, changed func()) {
	type state struct {
		size int64
		mod  time.Time
	}
	stat := func() state {
		fi, err := os.Stat(path)
		if err != nil {
			return state{size: -1}
		}
		return state{fi.Size(), fi.ModTime()}
	}
	same := func(a, b state) bool { return a.size == b.size && a.mod.Equal(b.mod) }
	seen := stat() // the state last reloaded (or started with)
	var settling *state
	tick(ctx, every, func() {
		s := stat()
		switch {
		case same(s, seen):
			settling = nil
		case settling == nil || !same(s, *settling):
			settling = &s // changed: wait for it to hold still
		default:
			seen, settling = s, nil
			if s.size >= 0 {
				changed()
			}
		}
	})
}

// tick calls f every interval until ctx ends, and returns then: the first
// call comes an interval after tick starts, and none starts once ctx has
// ended.
func tick(ctx context.Context, every time.Duration, f func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return
		}
		f()
	}
}

// swapHandler serves through the handler of the current config.
type swapHandler struct {
	h atomic.Pointer[callback.Handler]
}

func (s *swapHandler) set(h *callback.Handler) { s.h.Store(h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.Load().ServeHTTP(w, r) }

// closingGuard answers 503 once shutdown has begun.
func closingGuard(closing *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if closing.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"unavailable"}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// errConfig means the config had errors, already printed.
var errConfig = errors.New("config has errors")

// IsConfigError reports whether err means the config had errors that were
// already printed.
func IsConfigError(err error) bool { return errors.Is(err, errConfig) }

// useTLS sets srv up to serve TLS with the certificate t names, when t is
// set, and returns the URL scheme srv then serves.
func useTLS(srv *http.Server, t *config.TLS) (string, error) {
	if t == nil {
		return "http", nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return "", err
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return "https", nil
}

// serveOn serves srv on ln, over TLS if useTLS set it up, and sends errc
// the error that ends it.
func serveOn(srv *http.Server, ln net.Listener, errc chan<- error) {
	if srv.TLSConfig != nil {
		errc <- srv.ServeTLS(ln, "", "")
		return
	}
	errc <- srv.Serve(ln)
}

// newServer is an HTTP server of h with the bounds both listeners share
// (body and header sizes, the time to read a request) and the write and
// idle timeouts given; its own errors are logged at DEBUG.
func newServer(h http.Handler, write, idle time.Duration, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           http.MaxBytesHandler(h, maxBody),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      write,
		IdleTimeout:       idle,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
