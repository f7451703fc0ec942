// Package app wires ringside's parts together: it loads a config and starts
// its plugin processes (Load), and serves notify_cb and the admin API until
// a signal ends it (Serve).
package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/core/internal/pluginhost"
	"github.com/ringside/ringside/core/internal/route"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// Options are what the CLI hands to Load and Serve.
type Options struct {
	// Builtins are the names of the plugins this binary serves itself with
	// `ringside plugin NAME`.
	Builtins []string
	// Executable is the ringside binary (for built-in plugins); "" → os.Executable().
	Executable string
	// Getenv reads the environment (env() in configs, OTEL_* settings).
	Getenv func(string) string
	// Logger gets a WARN line per disabled notifier a route names, at
	// start and on reload; nil → not logged.
	Logger *slog.Logger
	// Metrics counts plugin restarts and gauges the configured and enabled
	// notifiers; nil → not counted.
	Metrics *telemetry.Metrics
	// CheckOnly starts the plugins only to check the config (validate,
	// explain, test, diff): each is told so in Configure, and opens no
	// connection to its provider. Serve leaves it false.
	CheckOnly bool
	// PluginStartTimeout bounds each plugin process's start (the go-plugin
	// handshake and the Info and Schema calls) and its Configure call, at
	// start and on reload; 0 → DefaultPluginStartTimeout. A plugin that
	// does not answer in time fails the start (or the reload) with a
	// diagnostic at its notifier.
	PluginStartTimeout time.Duration
}

// DefaultPluginStartTimeout is Options.PluginStartTimeout's default: a
// built-in plugin starts in a fraction of a second.
const DefaultPluginStartTimeout = 10 * time.Second

func (o Options) startTimeout() time.Duration {
	if o.PluginStartTimeout <= 0 {
		return DefaultPluginStartTimeout
	}
	return o.PluginStartTimeout
}

// Runtime is a loaded config whose enabled notifiers have configured plugin
// processes.
type Runtime struct {
	Config    *config.Config
	Routes    *route.Table
	Notifiers map[string]*plan.Notifier
	// Disabled are the disabled notifiers, by name, with why (see
	// config.Config.DisabledReason): they have no process.
	Disabled map[string]plan.Disabled
	Tracing  telemetry.Tracing
	clients  map[string]*pluginhost.Supervised
	specs    map[string]string // notifier → specKey
	configs  map[string]string // notifier → ConfigJSON
}

// LoadConfig loads the config file at path (no plugin started).
func LoadConfig(path string, opt Options) (*config.Config, hcl.Diagnostics) {
	return config.Load(path, config.Options{Builtins: opt.Builtins, Getenv: opt.getenv()})
}

func (o Options) getenv() func(string) string {
	if o.Getenv == nil {
		return os.Getenv
	}
	return o.Getenv
}

// Start starts one plugin process per enabled notifier of cfg, checks each
// notifier's attributes against its plugin's schema and configures the
// plugin. Disabled notifiers are checked against their plugin's schema too,
// but keep no process. On any error diagnostic every process started is
// stopped and the runtime is nil.
func Start(ctx context.Context, cfg *config.Config, opt Options) (*Runtime, hcl.Diagnostics) {
	return start(ctx, cfg, opt, nil)
}

// Reload is Start for a new config while rt keeps serving: a notifier whose
// plugin, process settings and attributes are unchanged keeps its running
// process. On success the processes of rt that the new runtime does not use
// are retired (stopped once their deliveries in flight end) and rt must not
// be used again; on error rt is untouched and keeps serving.
func (rt *Runtime) Reload(ctx context.Context, cfg *config.Config, opt Options) (*Runtime, hcl.Diagnostics) {
	next, diags := start(ctx, cfg, opt, rt)
	if diags.HasErrors() {
		return nil, diags
	}
	for name, sup := range rt.clients {
		if next.clients[name] != sup {
			sup.Retire()
		}
	}
	rt.clients = nil
	return next, diags
}

// notifierState is what start learns of one notifier.
type notifierState struct {
	client *pluginhost.Client     // a new process, or nil
	reuse  *pluginhost.Supervised // the previous runtime's process, or nil
	schema config.Schema
	err    error
}

func start(ctx context.Context, cfg *config.Config, opt Options, prev *Runtime) (*Runtime, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	getenv := opt.getenv()
	exe := opt.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "cannot find the ringside executable", Detail: err.Error()})
		}
	}
	rt := &Runtime{
		Config:    cfg,
		Notifiers: map[string]*plan.Notifier{},
		Disabled:  map[string]plan.Disabled{},
		Tracing:   tracingSettings(cfg, getenv),
		clients:   map[string]*pluginhost.Supervised{},
		specs:     map[string]string{},
		configs:   map[string]string{},
	}

	// Start every notifier's plugin at once: each start is an exec and a
	// handshake. A process of the previous runtime with the same settings
	// answers the schema instead. Each notifier's start (Info, Schema,
	// Configure) is one trace, under its span in spanCtx, "plugin.start
	// NOTIFIER" ("plugin.reuse NOTIFIER" for a process kept); the spans
	// end once every notifier is done.
	results := make([]notifierState, len(cfg.Notifiers))
	spanCtx := make([]context.Context, len(cfg.Notifiers))
	spans := make([]trace.Span, len(cfg.Notifiers))
	defer func() {
		for _, span := range spans {
			span.End()
		}
	}()
	for i, n := range cfg.Notifiers {
		spanCtx[i], spans[i] = pluginhost.StartSpan(ctx, rt.spec(n, exe, opt.Logger))
	}
	var wg sync.WaitGroup
	for i, n := range cfg.Notifiers {
		spec := rt.spec(n, exe, opt.Logger)
		rt.specs[n.Name] = specKey(spec)
		if prev != nil && n.Enabled && prev.clients[n.Name] != nil && prev.specs[n.Name] == rt.specs[n.Name] {
			sup := prev.clients[n.Name]
			spans[i].SetName("plugin.reuse " + n.Name)
			sctx, cancel := context.WithTimeout(spanCtx[i], opt.startTimeout())
			s, err := sup.Client().Schema(sctx)
			cancel()
			if err == nil {
				results[i] = notifierState{reuse: sup, schema: s}
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = startPlugin(spanCtx[i], spec, opt.startTimeout())
		}()
	}
	wg.Wait()

	reported := map[string]bool{} // plugin blocks whose failure is reported
	notStarted := func(n *config.Notifier, err error) {
		p := cfg.Plugins[n.Plugin]
		if p != nil && reported[p.Name] {
			return // one diagnostic per plugin block, whichever notifiers use it
		}
		if p != nil {
			reported[p.Name] = true
		}
		diags = append(diags, notStarted(n, p, rt.spec(n, exe, nil), err))
	}
	for i, n := range cfg.Notifiers {
		r := results[i]
		if r.err != nil {
			notStarted(n, r.err)
			continue
		}
		schemaDiags := cfg.ApplySchema(n, r.schema)
		if d := payloadTooLarge(n, r.schema.MaxPayloadBytes); d != nil {
			schemaDiags = append(schemaDiags, d)
		}
		diags = append(diags, schemaDiags...)
		if !n.Enabled || schemaDiags.HasErrors() {
			if r.client != nil {
				r.client.Kill()
			}
			if !n.Enabled {
				rt.Disabled[n.Name] = plan.Disabled{Name: n.Name, Plugin: n.Plugin, Kind: n.Devices, Reason: cfg.DisabledReason(n)}
			}
			continue
		}
		js, err := n.ConfigJSON()
		if err != nil {
			if r.client != nil {
				r.client.Kill()
			}
			diags = append(diags, n.AttrDiagnostic("", err.Error()))
			continue
		}
		// A process is kept when what it was told is the same: its
		// attributes, the template attributes and payload keys the block
		// sets, and whether it only checks; and when its supervision is
		// the same (spare).
		b := block(n, opt.CheckOnly)
		rt.configs[n.Name] = string(js) + "\x00" + strings.Join(b.Templates, ",") + "\x00" + strings.Join(b.PayloadKeys, ",") + "\x00" + strconv.FormatBool(n.Spare) + "\x00" + strconv.FormatBool(b.CheckOnly)
		if r.reuse != nil && prev.configs[n.Name] == rt.configs[n.Name] {
			rt.clients[n.Name] = r.reuse
		} else {
			if r.reuse != nil { // same process settings, new attributes: a fresh process
				spans[i].SetName("plugin.start " + n.Name)
				if r = startPlugin(spanCtx[i], rt.spec(n, exe, opt.Logger), opt.startTimeout()); r.err != nil {
					notStarted(n, r.err)
					continue
				}
			}
			r.client.SetBlock(b) // known only now, from the plugin's schema
			rt.clients[n.Name] = pluginhost.SuperviseWith(r.client, js, supervisorHooks(opt.Metrics, n.Name), checks(n))
			cctx, cancel := context.WithTimeout(spanCtx[i], opt.startTimeout())
			attrErrs, err := r.client.Configure(cctx, js)
			cancel()
			if err != nil {
				diags = append(diags, n.AttrDiagnostic("", "plugin configure: "+err.Error()))
				continue
			}
			for _, ae := range attrErrs {
				d := n.AttrDiagnostic(ae.Attribute, ae.Message)
				if ae.Warning {
					d.Severity = hcl.DiagWarning
					d.Summary = fmt.Sprintf("plugin %s warns about %s", n.Plugin, cmp.Or(ae.Attribute, "notifier "+strconv.Quote(n.Name)))
				}
				diags = append(diags, d)
			}
		}
		rt.Notifiers[n.Name] = &plan.Notifier{
			Name:      n.Name,
			Plugin:    n.Plugin,
			Kind:      n.Devices,
			TTL:       n.TTL,
			Payload:   n.Payload,
			Templates: n.Templates,
			Deliverer: rt.clients[n.Name],
		}
	}
	if diags.HasErrors() {
		// Close only what this start created; reused processes stay with prev.
		for name, sup := range rt.clients {
			if prev == nil || prev.clients[name] != sup {
				sup.Close()
			}
		}
		rt.clients = nil
		return nil, diags
	}

	routes := make([]*route.Route, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		routes = append(routes, &route.Route{Name: r.Name, On: r.On, When: r.When, Users: r.Users, Rung: r.Rung, Notify: r.Notify, Fallback: r.Fallback, Continue: r.Continue})
	}
	rt.Routes = route.New(routes, func(name string) bool { return rt.Notifiers[name] != nil })
	rt.report(opt)
	return rt, diags
}

// report logs one WARN line per disabled notifier a route names (once,
// whatever the number of routes naming it) and sets the notifier gauges.
func (rt *Runtime) report(opt Options) {
	if opt.Metrics != nil {
		opt.Metrics.SetNotifiers(len(rt.Config.Notifiers), len(rt.Notifiers))
	}
	if opt.Logger == nil {
		return
	}
	warned := map[string]bool{}
	for _, r := range rt.Routes.Routes() {
		for _, ref := range r.Disabled {
			if warned[ref.Name] {
				continue
			}
			warned[ref.Name] = true
			d := rt.Disabled[ref.Name]
			opt.Logger.Warn("notifier disabled: the routes naming it deliver nothing through it",
				"notifier", ref.Name, "plugin", d.Plugin, "reason", d.Reason)
		}
	}
}

// Planner returns the planner of the runtime's routes and notifiers over
// store.
func (rt *Runtime) Planner(store directory.Store) plan.Planner {
	return plan.Planner{
		Routes:        rt.Routes,
		Notifiers:     rt.Notifiers,
		Disabled:      rt.Disabled,
		Store:         store,
		FallbackAfter: rt.Config.Delivery.FallbackAfter,
	}
}

// startPlugin starts spec's process and asks for its schema, within
// timeout. When ctx ends first (a shutdown cancels the reload) it returns
// at once: the start goes on in the background and kills the process when
// it ends (go-plugin cannot stop a handshake half-way; a process that never
// completes it is killed by the kernel when ringside exits). A panic in the
// start is an error, not the end of the process.
func startPlugin(ctx context.Context, spec pluginhost.Spec, timeout time.Duration) notifierState {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	var (
		mu        sync.Mutex
		abandoned bool
		done      = make(chan notifierState, 1)
	)
	go func() {
		defer cancel()
		var st notifierState
		defer func() {
			if p := recover(); p != nil {
				st = notifierState{err: fmt.Errorf("plugin start panicked: %v", p)}
			}
			mu.Lock()
			defer mu.Unlock()
			if abandoned {
				if st.client != nil {
					st.client.Kill()
				}
				return
			}
			done <- st
		}()
		c, err := pluginhost.Start(ctx, spec)
		if err != nil {
			st = notifierState{err: err}
			return
		}
		s, err := c.Schema(ctx)
		if err != nil {
			c.Kill()
			st = notifierState{err: fmt.Errorf("schema: %w", err)}
			return
		}
		st = notifierState{client: c, schema: s}
	}()
	select {
	case st := <-done:
		return st
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		select {
		case st := <-done: // it ended meanwhile: the caller owns its process
			return st
		default:
			abandoned = true // the start kills its process when it ends
		}
		return notifierState{err: fmt.Errorf("start plugin %q (notifier %q): %w", spec.Plugin, spec.Notifier, startCause(ctx, timeout))}
	}
}

// startTimeout is the error of a start that did not end in time.
type startTimeout struct{ after time.Duration }

func (e startTimeout) Error() string {
	return fmt.Sprintf("no answer within %v (did it complete the go-plugin handshake?)", e.after)
}

// startCause says why a start's ctx ended.
func startCause(ctx context.Context, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return startTimeout{timeout}
	}
	return errors.New("canceled: ringside is shutting down")
}

// specKey identifies the process settings of a notifier: a process is reused
// on reload only when they are the same.
func specKey(s pluginhost.Spec) string {
	b, _ := json.Marshal([]any{s.Plugin, s.Command, s.SHA256, s.Env, s.Telemetry})
	return string(b)
}

// WriteDiagnostics prints diags with their source lines, secrets hidden;
// cfg may be nil (a config that did not load), in which case the source is
// read from disk and only the name and URL rules hide secrets.
func WriteDiagnostics(w io.Writer, cfg *config.Config, diags hcl.Diagnostics) {
	if cfg == nil {
		config.WriteDiagnostics(w, nil, diags)
		return
	}
	cfg.WriteDiagnostics(w, diags)
}

// Close stops every plugin process of the runtime, all at once: each may
// take go-plugin's grace period to exit, and a shutdown has a deadline.
func (rt *Runtime) Close() {
	var wg sync.WaitGroup
	for name, c := range rt.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close()
		}()
		delete(rt.clients, name)
	}
	wg.Wait()
}

// Health reports the first notifier whose plugin is not ready.
func (rt *Runtime) Health(ctx context.Context) error {
	for name, c := range rt.clients {
		if err := c.Health(ctx); err != nil {
			return fmt.Errorf("notifier %q: %w", name, err)
		}
	}
	return nil
}

// spareAfter is how long after a notifier's plugin process its spare
// starts, when it says spare = true: late enough not to slow ringside's
// start.
const spareAfter = time.Second

// checks are the supervision of n's plugin process: the defaults, with a
// spare only when n says spare = true.
func checks(n *config.Notifier) pluginhost.Checks {
	if !n.Spare {
		return pluginhost.Checks{}
	}
	return pluginhost.Checks{Spare: spareAfter}
}

// supervisorHooks count a notifier's plugin restarts and kills.
func supervisorHooks(m *telemetry.Metrics, notifier string) pluginhost.Hooks {
	if m == nil {
		return pluginhost.Hooks{}
	}
	return pluginhost.Hooks{
		OnRestart: m.PluginRestarts.WithLabelValues(notifier).Inc,
		OnKill:    func(reason string) { m.PluginKills.WithLabelValues(notifier, reason).Inc() },
	}
}

func (rt *Runtime) spec(n *config.Notifier, exe string, log *slog.Logger) pluginhost.Spec {
	s := pluginhost.Spec{
		Notifier:  n.Name,
		Plugin:    n.Plugin,
		Telemetry: telemetry.PluginEnv(rt.Tracing, n.Name),
		Logger:    log,
	}
	s.Telemetry["RINGSIDE_PLUGIN_LOG_LEVEL"] = rt.Config.Log.Level
	if p, ok := rt.Config.Plugins[n.Plugin]; ok {
		s.Command = p.Command
		s.SHA256 = p.SHA256
		s.Env = p.Env
		return s
	}
	s.Command = []string{exe, "plugin", n.Plugin}
	return s
}

// block is what a plugin is told of n besides its attributes: the
// template attributes it sets, sorted, and its payload's keys.
func block(n *config.Notifier, checkOnly bool) *pluginhost.Block {
	return &pluginhost.Block{Templates: slices.Sorted(maps.Keys(n.Templates)), PayloadKeys: n.PayloadKeys, CheckOnly: checkOnly}
}

func tracingSettings(cfg *config.Config, getenv func(string) string) telemetry.Tracing {
	t := telemetry.Tracing{
		Exporter:    cfg.Telemetry.Traces,
		Endpoint:    cfg.Telemetry.Endpoint,
		ServiceName: cfg.Telemetry.ServiceName,
	}
	return telemetry.FromEnv(t, cfg.Telemetry.Explicit, getenv)
}

// smallestCall is the smallest valid callback: every id one byte, a
// four-byte param, no app_svr_data.
var smallestCall = callback.Call{
	SID: "00000000-0000-0000-0000-000000000000", FromServiceID: "a", FromUserID: "a",
	ToServiceID: "a", ToUserID: "a", Type: "A", Param: "AAAA",
}

// payloadTooLarge reports a notifier whose payload is over its plugin's
// limit even for the smallest callback: every delivery would fail. The size
// is a lower bound of what any provider counts (keys and values, without
// JSON's quotes and punctuation). A payload that fails for that callback
// depends on the call, and is left to the plugin at send time.
func payloadTooLarge(n *config.Notifier, limit int) *hcl.Diagnostic {
	if limit <= 0 || n.Payload == nil {
		return nil
	}
	c := smallestCall
	b, err := plan.Payload(&c, n.Payload, callexpr.Context(&c))
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	size := 0
	for k, v := range m {
		size += len(k)
		if s, ok := v.(string); ok {
			size += len(s)
		} else {
			js, _ := json.Marshal(v)
			size += len(js)
		}
	}
	if size <= limit {
		return nil
	}
	d := n.AttrDiagnostic("payload", "")
	d.Summary = fmt.Sprintf("payload is too large for plugin %s", n.Plugin)
	d.Detail = fmt.Sprintf("Even for the smallest callback the rendered payload holds at least %d bytes of keys and values, over the %d bytes plugin %s accepts: every delivery would fail. Shorten the payload.", size, limit, n.Plugin)
	return d
}
