// Package cli is ringside's command line: serve, validate, explain, plugin
// and version. It returns exit codes and writes only to the writers it is
// given, so tests drive it directly.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ringside/ringside/core/internal/app"
	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/core/internal/pluginhost"
	"github.com/ringside/ringside/plugins/sdk"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // config or runtime error
	ExitUsage = 2 // usage error, or an invalid explain query
)

// Version and Commit are set at build time with
// -ldflags "-X github.com/ringside/ringside/core/cli.Version=…".
var (
	Version = "dev"
	Commit  = ""
)

// Builtin serves one built-in plugin over go-plugin; it returns when the
// host kills the plugin.
type Builtin func()

// Main runs ringside with args (without the program name).
func Main(args []string, stdout, stderr io.Writer, builtins map[string]Builtin) int {
	c := &cmd{stdout: stdout, stderr: stderr, builtins: builtins}
	if len(args) > 0 && isHelp(args[0]) {
		c.usage(stdout)
		return ExitOK
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return c.serve(args)
	}
	switch args[0] {
	case "serve":
		return c.serve(args[1:])
	case "validate":
		return c.validate(args[1:])
	case "calls":
		return c.calls(args[1:])
	case "explain":
		return c.explain(args[1:])
	case "test":
		return c.test(args[1:])
	case "diff":
		return c.diff(args[1:])
	case "plugin":
		return c.plugin(args[1:])
	case "version":
		return c.version(args[1:])
	case "webpush-keys":
		return c.webpushKeys(args[1:])
	case "directory":
		return c.directory(args[1:])
	default:
		fmt.Fprintf(stderr, "ringside: unknown command %q\n", args[0])
		c.usage(stderr)
		return ExitUsage
	}
}

// isHelp reports whether arg asks for the usage.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "-help" || arg == "--help"
}

type cmd struct {
	stdout, stderr io.Writer
	builtins       map[string]Builtin
}

func (c *cmd) usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  ringside [serve] [-config FILE]                 serve notify_cb and the admin API
  ringside validate [-config FILE | FILE]         check a config and every plugin schema
  ringside explain [-config FILE] [-json] QUERY   dry-run a notify_cb query: routes, notifiers
                                                  (disabled ones with why), devices, payloads
  ringside test [-config FILE] [-json] [-run REGEXP] [PATH...]
                                                  run route tests (*.test.hcl beside the config, or
                                                  the files and folders given); nothing is delivered
  ringside diff -config CANDIDATE [-live FILE] [-admin ADDR] [-token T] [-calls FILE] [-limit N] [-json]
                                                  replay recent calls through the live and the
                                                  candidate config; list what would change
  ringside calls [-admin ADDR] [-token T] [-follow] [SID]
                                                  recent calls, or one call's timeline, from the
                                                  admin API; -follow watches them arrive
  ringside directory migrate [-config FILE] [-from PATH]
                                                  copy an embedded directory file (the config's
                                                  directory path, or PATH) into the cluster's Redis
  ringside version                                print version, commit and Go version
  ringside plugin NAME                            serve a built-in plugin (ringside runs this itself)
  ringside webpush-keys                           print a fresh VAPID key pair for the webpush plugin
  ringside help                                   print this

FILE defaults to config.hcl.
`)
}

func (c *cmd) options() app.Options {
	names := make([]string, 0, len(c.builtins))
	for n := range c.builtins {
		names = append(names, n)
	}
	slices.Sort(names)
	return app.Options{Builtins: names}
}

func (c *cmd) flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("ringside "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	path := fs.String("config", "config.hcl", "configuration `file`")
	return fs, path
}

// parse parses args with fs: -h prints the usage and the command's flags
// to stdout and ends the command with ExitOK; a flag error prints the
// error, the usage and the flags to stderr and ends it with ExitUsage.
func (c *cmd) parse(fs *flag.FlagSet, args []string) (exit int, ok bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if err == nil {
		fs.SetOutput(c.stderr)
		return 0, true
	}
	w, exit := c.stderr, ExitUsage
	if errors.Is(err, flag.ErrHelp) {
		w, exit = c.stdout, ExitOK
	} else {
		fmt.Fprintf(w, "%s: %v\n", fs.Name(), err)
	}
	c.usage(w)
	fmt.Fprintf(w, "\nflags of %s:\n", fs.Name())
	fs.SetOutput(w)
	fs.PrintDefaults()
	return exit, false
}

// configArg parses the arguments of subcommand name, which takes -config
// and, when fileArg, the file as its one argument instead; it returns the
// config path, or false and the exit code, having said why, when the
// arguments are not that.
func (c *cmd) configArg(name string, args []string, fileArg bool) (string, int, bool) {
	fs, path := c.flags(name)
	if exit, ok := c.parse(fs, args); !ok {
		return "", exit, false
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "config" })
	switch {
	case fs.NArg() == 0:
		return *path, 0, true
	case fileArg && fs.NArg() == 1 && !set && !strings.HasPrefix(fs.Arg(0), "-"):
		return fs.Arg(0), 0, true
	case fileArg && fs.NArg() > 1 && strings.HasPrefix(fs.Arg(1), "-"):
		fmt.Fprintf(c.stderr, "ringside %s: unexpected argument %q: flags go before the file\n", name, fs.Arg(1))
	case fileArg && set:
		fmt.Fprintf(c.stderr, "ringside %s: unexpected argument %q: the file is given by -config already\n", name, fs.Arg(0))
	default:
		fmt.Fprintf(c.stderr, "ringside %s: unexpected argument %q\n", name, fs.Arg(0))
	}
	return "", ExitUsage, false
}

func (c *cmd) serve(args []string) int {
	path, exit, ok := c.configArg("serve", args, false)
	if !ok {
		return exit
	}
	if err := app.Serve(context.Background(), path, c.options(), c.stdout, c.stderr); err != nil {
		if !app.IsConfigError(err) {
			fmt.Fprintf(c.stderr, "ringside: %v\n", err)
		}
		return ExitError
	}
	return ExitOK
}

func (c *cmd) validate(args []string) int {
	path, exit, ok := c.configArg("validate", args, true)
	if !ok {
		return exit
	}
	defer pluginhost.Cleanup()
	opt := c.options()
	opt.CheckOnly = true
	cfg, diags := app.LoadConfig(path, opt)
	if !diags.HasErrors() {
		rt, more := app.Start(context.Background(), cfg, opt)
		diags = append(diags, more...)
		if rt != nil {
			rt.Close()
		}
	}
	app.WriteDiagnostics(c.stdout, cfg, diags)
	if diags.HasErrors() {
		return ExitError
	}
	enabled := 0
	for _, n := range cfg.Notifiers {
		if n.Enabled {
			enabled++
		}
	}
	fmt.Fprintf(c.stdout, "%s: ok (%d notifiers (%d enabled), %d routes)\n", path, len(cfg.Notifiers), enabled, len(cfg.Routes))
	return ExitOK
}

func (c *cmd) plugin(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(c.stderr, "usage: ringside plugin NAME")
		return ExitUsage
	}
	serve, ok := c.builtins[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "ringside plugin: no built-in plugin %q\n", args[0])
		return ExitUsage
	}
	serve()
	return ExitOK
}

func (c *cmd) version(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(c.stderr, "usage: ringside version")
		return ExitUsage
	}
	commit := Commit
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	fmt.Fprintf(c.stdout, "ringside %s\ncommit %s\n%s %s/%s\n", Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}

func (c *cmd) explain(args []string) int {
	fs, path := c.flags("explain")
	asJSON := fs.Bool("json", false, "print JSON")
	on := fs.String("on", "", "QUERY's callback kind: notify, call_event or group_call_event (default: by QUERY's path, else notify)")
	if exit, ok := c.parse(fs, args); !ok {
		return exit
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(c.stderr, "usage: ringside explain [-config FILE] [-json] [-on KIND] QUERY")
		return ExitUsage
	}
	if _, ok := callback.ParseKind(*on); *on != "" && !ok {
		fmt.Fprintf(c.stderr, "ringside explain: -on %q: want notify, call_event or group_call_event\n", *on)
		return ExitUsage
	}
	return c.withPlanning(*path, func(ctx context.Context, p *planning) int {
		call, _, err := callback.ParseEvent(queryKind(fs.Arg(0), *on, p.cfg), rawQuery(fs.Arg(0)), p.cfg.Server.MaxIDBytes, time.Now())
		if err != nil {
			fmt.Fprintf(c.stderr, "ringside explain: invalid callback: %v\n", err)
			return ExitUsage
		}
		store, closeStore, err := explainStore(ctx, p.cfg)
		if err != nil {
			fmt.Fprintf(c.stderr, "ringside explain: %v\n", err)
			return ExitError
		}
		defer closeStore()
		out, err := p.explain(ctx, call, store)
		if err != nil {
			fmt.Fprintf(c.stderr, "ringside explain: %v\n", err)
			return ExitError
		}
		if *asJSON {
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(out); err != nil {
				return ExitError
			}
			return ExitOK
		}
		writeExplanation(c.stdout, out)
		return ExitOK
	})
}

// queryKind is the callback kind of an explain QUERY: on when set, else
// the kind whose path the QUERY's URL or path names, else notify.
func queryKind(q, on string, cfg *config.Config) callback.Kind {
	if k, ok := callback.ParseKind(on); ok {
		return k
	}
	i := strings.IndexByte(q, '?')
	if i < 0 {
		return callback.KindNotify
	}
	switch path := q[:i]; {
	case strings.HasSuffix(path, cfg.Server.CallEventPath):
		return callback.KindCallEvent
	case strings.HasSuffix(path, cfg.Server.GroupCallEventPath):
		return callback.KindGroupCallEvent
	}
	return callback.KindNotify
}

// rawQuery accepts a query string, with or without "?", or a whole URL.
func rawQuery(q string) string {
	if i := strings.IndexByte(q, '?'); i >= 0 {
		return q[i+1:]
	}
	return q
}

type explained struct {
	SID       string              `json:"sid"`
	Status    string              `json:"status"`
	Route     *string             `json:"route"`
	Routes    []string            `json:"routes"`
	Notifiers []explainedNotifier `json:"notifiers"`
	// Unserved are the callee's devices that no active notifier serves.
	Unserved   []explainedDevice `json:"unserved_devices"`
	WhenErrors []string          `json:"when_errors,omitempty"`
}

type explainedNotifier struct {
	Name      string            `json:"name"`
	Plugin    string            `json:"plugin"`
	Role      string            `json:"role"`
	Route     string            `json:"route"`
	Active    bool              `json:"active"`
	Kind      string            `json:"device_kind"`
	Devices   []explainedDevice `json:"devices"`
	Payload   json.RawMessage   `json:"payload"`
	Templates map[string]string `json:"templates,omitempty"`
	// RenderError is why the payload or a template did not render for
	// this call: the notifier is skipped, the others ring.
	RenderError string `json:"render_error,omitempty"`
	// Disabled is why a notifier the route names is disabled in the
	// config: it delivers nothing.
	Disabled string `json:"disabled,omitempty"`
}

type explainedDevice struct {
	Kind  string `json:"kind"`
	Token string `json:"token"`
}

func explanation(p *plan.Plan) explained {
	e := explained{SID: p.Call.SID, Status: p.Status, Routes: p.Routes, Notifiers: []explainedNotifier{}, Unserved: []explainedDevice{}}
	if len(p.Routes) > 0 {
		e.Route = &p.Routes[0]
	}
	for _, we := range p.WhenErrors {
		e.WhenErrors = append(e.WhenErrors, we.Error())
	}
	for _, d := range p.Deliveries {
		n := explainedNotifier{
			Name: d.Notifier.Name, Plugin: d.Notifier.Plugin, Role: d.Role, Route: d.Route,
			Active: d.Active, Kind: d.Notifier.Kind, Devices: []explainedDevice{},
			Payload: d.Payload, Templates: d.Templates,
		}
		if n.Payload == nil {
			// Not rendered: the callback reaches no one.
			payload, err := plan.Payload(p.Call, d.Notifier.Payload, callexpr.Context(p.Call))
			if err != nil {
				payload, _ = json.Marshal(map[string]string{"error": err.Error()})
			}
			n.Payload = payload
		}
		for _, dev := range d.Devices {
			n.Devices = append(n.Devices, explainedDevice{Kind: dev.Kind, Token: sdk.ShortToken(dev.Token)})
		}
		e.Notifiers = append(e.Notifiers, n)
	}
	for _, d := range p.RenderErrors {
		msg := d.Err.Error()
		if d.Err.Detail != "" {
			msg += ": " + d.Err.Detail
		}
		n := explainedNotifier{
			Name: d.Notifier.Name, Plugin: d.Notifier.Plugin, Role: d.Role, Route: d.Route,
			Kind: d.Notifier.Kind, Devices: []explainedDevice{}, RenderError: msg,
		}
		n.Payload, _ = json.Marshal(map[string]string{"error": msg})
		for _, dev := range d.Devices {
			n.Devices = append(n.Devices, explainedDevice{Kind: dev.Kind, Token: sdk.ShortToken(dev.Token)})
		}
		e.Notifiers = append(e.Notifiers, n)
	}
	for _, d := range p.Disabled {
		reason := d.Reason
		if reason == "" {
			reason = "enabled is false"
		}
		e.Notifiers = append(e.Notifiers, explainedNotifier{
			Name: d.Name, Plugin: d.Plugin, Role: d.Role, Route: d.Route, Kind: d.Kind,
			Devices: []explainedDevice{}, Payload: json.RawMessage("null"), Disabled: reason,
		})
	}
	for _, dev := range p.Unserved {
		e.Unserved = append(e.Unserved, explainedDevice{Kind: dev.Kind, Token: sdk.ShortToken(dev.Token)})
	}
	return e
}

func writeExplanation(w io.Writer, e explained) {
	fmt.Fprintf(w, "callback %s: %s\n", e.SID, e.Status)
	if len(e.Routes) == 0 {
		fmt.Fprintln(w, "no route matched")
	} else {
		fmt.Fprintf(w, "routes: %s\n", strings.Join(e.Routes, ", "))
	}
	for _, we := range e.WhenErrors {
		fmt.Fprintf(w, "when error (no match): %s\n", we)
	}
	for _, n := range e.Notifiers {
		state := "will deliver"
		switch {
		case n.Disabled != "":
			fmt.Fprintf(w, "\nnotifier %s (plugin %s, %s of route %s): disabled\n  reason: %s\n", n.Name, n.Plugin, n.Role, n.Route, n.Disabled)
			continue
		case n.RenderError != "":
			state = "skipped: its payload did not render for this call"
		case !n.Active && n.Role == plan.RoleFallback:
			state = "not needed: notify reaches a device"
		case !n.Active:
			state = "reaches no device"
		}
		fmt.Fprintf(w, "\nnotifier %s (plugin %s, %s of route %s): %s\n", n.Name, n.Plugin, n.Role, n.Route, state)
		if n.Kind == "" {
			fmt.Fprintln(w, "  devices: none needed")
		} else if len(n.Devices) == 0 {
			fmt.Fprintf(w, "  devices: no %s device\n", n.Kind)
		} else {
			fmt.Fprintln(w, "  devices:")
			for _, d := range n.Devices {
				fmt.Fprintf(w, "    %s %s\n", d.Kind, d.Token)
			}
		}
		if n.RenderError != "" {
			fmt.Fprintf(w, "  render error: %s\n", n.RenderError)
			continue
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, n.Payload, "  ", "  ") == nil {
			fmt.Fprintf(w, "  payload: %s\n", pretty.Bytes())
		}
		for _, k := range sortedKeys(n.Templates) {
			fmt.Fprintf(w, "  %s: %q\n", k, n.Templates[k])
		}
	}
	if len(e.Unserved) > 0 {
		fmt.Fprintln(w, "\ndevices no active notifier serves (they will not ring):")
		for _, d := range e.Unserved {
			fmt.Fprintf(w, "    %s %s\n", d.Kind, d.Token)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
