package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/ringside/ringside/core/admin"
	"github.com/ringside/ringside/core/callback"
	"github.com/ringside/ringside/core/config"
	"github.com/ringside/ringside/core/directory"
	"github.com/ringside/ringside/core/dispatch"
	"github.com/ringside/ringside/core/pluginhost"
	"github.com/ringside/ringside/core/telemetry"
)

// NewLogger returns the slog logger the log block asks for, writing to w.
func NewLogger(l config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	o := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// Serve loads the config at path and serves until SIGINT or SIGTERM, then
// stops accepting (503), drains deliveries up to shutdown_grace and stops
// the plugins. Config diagnostics are written to diagOut.
func Serve(ctx context.Context, path string, opt Options, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer pluginhost.Cleanup()

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

	rt, diags := Start(ctx, cfg, opt)
	if diags.HasErrors() {
		WriteDiagnostics(stderr, cfg, diags)
		return errConfig
	}
	defer rt.Close()
	for _, d := range diags {
		log.Warn("config", "warning", d.Error())
	}

	tr, err := telemetry.StartTracing(ctx, rt.Tracing, stdout)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Shutdown(sctx)
	}()

	store, err := directory.OpenSQLite(cfg.Directory.Path)
	if err != nil {
		return err
	}
	defer store.Close()

	if err := admin.CheckListen(cfg.Server.AdminListen, cfg.Server.AdminToken); err != nil {
		return err
	}
	disp := dispatch.New(dispatch.Options{
		Planner: dispatch.Planner{Routes: rt.Routes, Notifiers: rt.Notifiers, Store: store},
		Dedup:   dispatch.NewDedup(cfg.Delivery.DedupWindow),
		Metrics: metrics,
		Logger:  log,
		Tracer:  tr.Provider.Tracer("github.com/ringside/ringside/core/dispatch"),
	})

	var closing atomic.Bool
	notify := &callback.Handler{
		Acceptor:          disp,
		MaxIDBytes:        cfg.Server.MaxIDBytes,
		RejectUnreachable: cfg.Server.RejectUnreachable,
		MaxInFlight:       cfg.Server.MaxInFlight,
		NotifyToken:       cfg.Server.NotifyToken,
		Metrics:           metrics,
		Logger:            log,
	}
	public := http.NewServeMux()
	public.Handle(cfg.Server.NotifyPath, otelhttp.NewHandler(closingGuard(&closing, notify), "notify_cb",
		otelhttp.WithTracerProvider(tr.Provider),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "GET " + cfg.Server.NotifyPath }),
		otelhttp.WithFilter(func(r *http.Request) bool { return !closing.Load() }),
	))
	public.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"not_found"}`)
	})
	adminHandler := admin.New(admin.Options{
		Store:      store,
		Token:      cfg.Server.AdminToken,
		MaxIDBytes: cfg.Server.MaxIDBytes,
		Ready: func(ctx context.Context) error {
			if closing.Load() {
				return errors.New("shutting down")
			}
			return rt.Health(ctx)
		},
		Metrics: metrics.Handler(),
		Logger:  log,
	})

	pubLn, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.Server.AdminListen)
	if err != nil {
		pubLn.Close()
		return fmt.Errorf("server.admin_listen: %w", err)
	}
	pubSrv := &http.Server{
		Handler:           public,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	adminSrv := &http.Server{Handler: adminHandler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}

	errc := make(chan error, 2)
	scheme := "http"
	if t := cfg.Server.TLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("server.tls: %w", err)
		}
		pubSrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
		go func() { errc <- pubSrv.ServeTLS(pubLn, "", "") }()
	} else {
		go func() { errc <- pubSrv.Serve(pubLn) }()
	}
	go func() { errc <- adminSrv.Serve(adminLn) }()
	log.Info("ringside serving",
		"notify_cb", scheme+"://"+pubLn.Addr().String()+cfg.Server.NotifyPath,
		"admin", "http://"+adminLn.Addr().String(),
		"notifiers", len(rt.Notifiers), "routes", len(cfg.Routes), "config", path)

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("listener: %w", err)
	}

	log.Info("shutting down", "grace", cfg.Server.ShutdownGrace)
	closing.Store(true)
	gctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace)
	defer cancel()
	_ = pubSrv.Shutdown(gctx)
	if err := disp.Wait(gctx); err != nil {
		log.Warn("shutdown grace over; deliveries left unfinished", "error", err)
	}
	_ = adminSrv.Shutdown(gctx)
	log.Info("stopped")
	return nil
}

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
