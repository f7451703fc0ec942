package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/directory"
)

var osGetenv = os.Getenv

// Options are the inputs of Load beyond the file.
type Options struct {
	// Builtins are the names of the built-in plugins (apns, fcm, webhook,
	// sms, …); a notifier's plugin must be one of these or a plugin block.
	Builtins []string
	// Getenv backs env(); nil means os.Getenv.
	Getenv func(string) string
}

// Config is a loaded, checked configuration.
type Config struct {
	Path  string               // as passed to Load
	Dir   string               // folder of the file; relative paths resolve from here
	Files map[string]*hcl.File // the parsed files, for WriteDiagnostics

	Server    Server
	Delivery  DeliverySettings
	CallLog   CallLog
	Feedback  *Feedback // nil: no feedback to the app server
	Log       Log
	Telemetry Telemetry
	Directory Directory
	// Cluster is nil in the embedded single-node mode, the default.
	Cluster   *Cluster
	Plugins   map[string]*Plugin // external plugin blocks by name
	Notifiers []*Notifier        // in file order
	Routes    []*Route           // in file order

	// RingNobody is the top-level ring_nobody = true: the file routes no
	// call to an enabled notifier on purpose. Without it such a file (no
	// route at all, as in an empty or truncated file) is an error.
	RingNobody bool

	env func(string) string // env() source, for ApplySchema

	// What WriteDiagnostics hides besides the name rules: the ranges of
	// the attributes plugins mark sensitive, and the secret values (the
	// tokens, plugin environments, sensitive attributes, headers, URL
	// credentials) wherever they appear. Filled by Load and ApplySchema.
	masks   []hcl.Range
	secrets []string
}

// Server is the server block.
type Server struct {
	Listen     string
	NotifyPath string
	// CallEventPath and GroupCallEventPath are where LINE Planet's Call
	// Event and Group Call Event callbacks are served.
	CallEventPath      string
	GroupCallEventPath string
	NotifyToken        string // "" = no token required
	AllowCIDRs         []netip.Prefix
	TrustedProxies     []netip.Prefix
	MaxIDBytes         int
	MaxInFlight        int
	ShutdownGrace      time.Duration
	RejectUnreachable  bool
	AdminListen        string
	AdminToken         string // "" = no Bearer auth (only allowed on loopback)
	TLS                *TLS   // nil = plain HTTP
	AdminTLS           *TLS   // nil = plain HTTP on the admin listener
}

// TLS is the server's nested tls block; both paths are resolved from Dir.
type TLS struct{ CertFile, KeyFile string }

// DeliverySettings is the delivery block.
type DeliverySettings struct {
	DedupWindow   time.Duration
	Journal       bool
	FallbackAfter time.Duration
}

// Log is the log block: Format is text or json; Level is debug, info, warn or error.
type Log struct{ Format, Level string }

// Telemetry is the telemetry block: Traces is none, stdout or otlp.
// Explicit names the attributes the file sets (traces, endpoint,
// service_name): those win over OTEL_* variables.
type Telemetry struct {
	Traces, Endpoint, ServiceName string
	Explicit                      map[string]bool
}

// Directory is the directory block: Kind is "embedded"; Path is resolved from Dir.
type Directory struct {
	Kind, Path string
	// CacheUsers bounds the users whose devices serve keeps in memory; a
	// directory of at most that many users is preloaded whole.
	CacheUsers int
}

// Plugin is an external plugin block.
type Plugin struct {
	Name string
	// Command is the command line; Command[0] is resolved from Dir when it is
	// relative and contains a slash (a bare name is looked up in PATH).
	Command   []string
	SHA256    string // "" = not checked
	Env       map[string]string
	DeclRange hcl.Range
	// CommandRange is where command[0] is written (the whole command when
	// it is not a list constructor); SHA256Range is sha256's value. A
	// plugin that does not start is reported there.
	CommandRange, SHA256Range hcl.Range
}

// Notifier is a notifier block: one configured delivery channel.
type Notifier struct {
	Name, Plugin string
	Enabled      bool
	// Spare: keep a spare plugin process, started and configured, to take
	// over at once when the serving one dies (off by default: one plugin
	// process per notifier block).
	Spare       bool
	Devices     string // "" = the plugin's default kind (filled by ApplySchema)
	TTL         time.Duration
	Payload     hcl.Expression // nil when absent; an object constructor over call
	PayloadKeys []string       // the payload's keys, in file order
	// Remain holds the plugin's own attributes, decoded by ApplySchema.
	Remain hcl.Body
	// Attrs are the static plugin attributes after ApplySchema (durations as
	// Go duration strings, path attributes resolved from Dir).
	Attrs map[string]cty.Value
	// Templates are the template attributes after ApplySchema.
	Templates map[string]hcl.Expression
	DeclRange hcl.Range
	// Kinds are the kinds of the routes that name the notifier, in file
	// order: its payload and templates are checked against each.
	Kinds []callback.Kind

	payload *hcl.Attribute

	ranges    map[string]hcl.Range // attribute name -> value range
	sensitive map[string]bool
	secrets   []string // values Scrub hides
}

// Route is a route block.
type Route struct {
	Name string
	// On is the kind of callback the route handles; notify by default.
	On   callback.Kind
	When hcl.Expression // nil = always
	// Users, in an event route, says whose devices to look up: an object
	// {service_id, user_id} or a list of them; nil = the callee.
	Users hcl.Expression
	// Rung, in a call_event route, delivers to the devices rung for the sid.
	Rung      bool
	Notify    []string
	Fallback  []string
	Continue  bool
	DeclRange hcl.Range
}

// Defaults.
const (
	DefaultListen     = "0.0.0.0:20200"
	DefaultNotifyPath = "/notify_cb"
	// DefaultCallEventPath and DefaultGroupCallEventPath are the paths of
	// the Call Event and Group Call Event callbacks.
	DefaultCallEventPath      = "/call_evt_cb"
	DefaultGroupCallEventPath = "/gcall_evt_cb"
	DefaultMaxIDBytes         = callback.DefaultMaxIDBytes
	DefaultMaxInFlight        = callback.DefaultMaxInFlight
	DefaultShutdownGrace      = 10 * time.Second
	DefaultAdminListen        = "127.0.0.1:20201"
	DefaultDedupWindow        = callback.DefaultDedupWindow
	DefaultFallbackAfter      = 15 * time.Second
	DefaultEndpoint           = "http://localhost:4318"
	DefaultServiceName        = "ringside"
	DefaultDirectoryPath      = "ringside.db"
	// DefaultCacheUsers is the directory cache's bound; MaxCacheUsers its
	// largest setting.
	DefaultCacheUsers = directory.DefaultCacheUsers
	MaxCacheUsers     = 100_000_000
	DefaultTTL        = 60 * time.Second
	MaxTTL            = 10 * time.Minute
)

// The raw skeleton, decoded by gohcl. Attributes are kept as *hcl.Attribute
// (nil when absent) and evaluated by a decoder, so every message can name the
// attribute and point at its value.
type rawFile struct {
	RingNobody *hcl.Attribute `hcl:"ring_nobody,optional"`

	Server    *rawServer     `hcl:"server,block"`
	Delivery  *rawDelivery   `hcl:"delivery,block"`
	CallLog   *rawCallLog    `hcl:"call_log,block"`
	Feedback  *rawFeedback   `hcl:"feedback,block"`
	Log       *rawLog        `hcl:"log,block"`
	Telemetry *rawTelemetry  `hcl:"telemetry,block"`
	Directory *rawDirectory  `hcl:"directory,block"`
	Cluster   *rawCluster    `hcl:"cluster,block"`
	Plugins   []*rawPlugin   `hcl:"plugin,block"`
	Notifiers []*rawNotifier `hcl:"notifier,block"`
	Routes    []*rawRoute    `hcl:"route,block"`
}

type rawServer struct {
	Listen            *hcl.Attribute `hcl:"listen,optional"`
	NotifyPath        *hcl.Attribute `hcl:"notify_path,optional"`
	CallEventPath     *hcl.Attribute `hcl:"call_event_path,optional"`
	GroupEventPath    *hcl.Attribute `hcl:"group_call_event_path,optional"`
	NotifyToken       *hcl.Attribute `hcl:"notify_token,optional"`
	AllowCIDRs        *hcl.Attribute `hcl:"allow_cidrs,optional"`
	TrustedProxies    *hcl.Attribute `hcl:"trusted_proxies,optional"`
	MaxIDBytes        *hcl.Attribute `hcl:"max_id_bytes,optional"`
	MaxInFlight       *hcl.Attribute `hcl:"max_in_flight,optional"`
	ShutdownGrace     *hcl.Attribute `hcl:"shutdown_grace,optional"`
	RejectUnreachable *hcl.Attribute `hcl:"reject_unreachable,optional"`
	AdminListen       *hcl.Attribute `hcl:"admin_listen,optional"`
	AdminToken        *hcl.Attribute `hcl:"admin_token,optional"`
	TLS               *rawTLS        `hcl:"tls,block"`
	AdminTLS          *rawTLS        `hcl:"admin_tls,block"`
}

type rawTLS struct {
	CertFile *hcl.Attribute `hcl:"cert_file,optional"`
	KeyFile  *hcl.Attribute `hcl:"key_file,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type rawDelivery struct {
	DedupWindow   *hcl.Attribute `hcl:"dedup_window,optional"`
	Journal       *hcl.Attribute `hcl:"journal,optional"`
	FallbackAfter *hcl.Attribute `hcl:"fallback_after,optional"`
}

type rawLog struct {
	Format *hcl.Attribute `hcl:"format,optional"`
	Level  *hcl.Attribute `hcl:"level,optional"`
}

type rawTelemetry struct {
	Traces      *hcl.Attribute `hcl:"traces,optional"`
	Endpoint    *hcl.Attribute `hcl:"endpoint,optional"`
	ServiceName *hcl.Attribute `hcl:"service_name,optional"`
}

type rawDirectory struct {
	Kind      string         `hcl:"kind,label"`
	KindRange hcl.Range      `hcl:"kind,label_range"`
	Path      *hcl.Attribute `hcl:"path,optional"`
	// CacheUsers is cache_users.
	CacheUsers *hcl.Attribute `hcl:"cache_users,optional"`
}

type rawPlugin struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Command   *hcl.Attribute `hcl:"command,optional"`
	SHA256    *hcl.Attribute `hcl:"sha256,optional"`
	Env       *hcl.Attribute `hcl:"env,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type rawNotifier struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Plugin    *hcl.Attribute `hcl:"plugin,optional"`
	Enabled   *hcl.Attribute `hcl:"enabled,optional"`
	Spare     *hcl.Attribute `hcl:"spare,optional"`
	Devices   *hcl.Attribute `hcl:"devices,optional"`
	TTL       *hcl.Attribute `hcl:"ttl,optional"`
	Payload   *hcl.Attribute `hcl:"payload,optional"`
	Remain    hcl.Body       `hcl:",remain"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type rawRoute struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	On        *hcl.Attribute `hcl:"on,optional"`
	When      *hcl.Attribute `hcl:"when,optional"`
	Users     *hcl.Attribute `hcl:"users,optional"`
	Rung      *hcl.Attribute `hcl:"rung,optional"`
	Notify    *hcl.Attribute `hcl:"notify,optional"`
	Fallback  *hcl.Attribute `hcl:"fallback,optional"`
	Continue  *hcl.Attribute `hcl:"continue,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

var anotherAt = regexp.MustCompile(`Another was defined at (.+):(\d+),(\d+)-[\d,]+\.$`)

// blockDiags rewords gohcl's duplicate-block message to print the first
// block's position as FILE:LINE:COL.
func blockDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, dg := range diags {
		if m := anotherAt.FindStringSubmatch(dg.Detail); m != nil && strings.HasPrefix(dg.Summary, "Duplicate ") {
			typ := strings.TrimSuffix(strings.TrimPrefix(dg.Summary, "Duplicate "), " block")
			dg.Detail = fmt.Sprintf("Only one %s block is allowed; the first is at %s:%s:%s. Merge the two into one.", typ, m[1], m[2], m[3])
			reworded(dg)
		}
	}
	return diags
}

// posString formats a range's start as FILE:LINE:COL.
func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// Load parses and checks the configuration file at path: syntax, blocks,
// attributes, types, defaults, ranges, durations, duplicate names, unknown
// notifiers in routes, unknown plugins, and the when and payload expressions
// against an unknown call. A notifier's plugin attributes are left in
// Notifier.Remain for ApplySchema. Diagnostics name the file as path was
// passed. Load returns a Config only when there are no error diagnostics
// (warnings may accompany it); otherwise it returns nil and the diagnostics,
// sorted by position. WriteDiagnostics(w, nil, diags) renders them from disk.
func Load(path string, opt Options) (*Config, hcl.Diagnostics) {
	src, err := readStable(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration file",
			Detail:   fmt.Sprintf("%s: %v", path, unwrapPathError(err)),
		}}
	}
	return load(path, src, opt)
}

// load is Load of src, the bytes of the file at path.
func load(path string, src []byte, opt Options) (*Config, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	file, diags := parser.ParseHCL(src, path)
	fromHCL(diags)
	if diags.HasErrors() {
		return nil, sortDiags(addHints(parser.Files(), diags))
	}

	var raw rawFile
	diags = append(diags, blockDiags(fromHCL(gohcl.DecodeBody(file.Body, nil, &raw)))...)

	getenv := opt.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := &Config{
		Path:    path,
		Dir:     filepath.Dir(path),
		Files:   parser.Files(),
		Plugins: map[string]*Plugin{},
		env:     getenv,
	}
	d := &decoder{ctx: loadContext(cfg.Dir, getenv), dir: cfg.Dir}
	d.server(&cfg.Server, raw.Server)
	d.delivery(&cfg.Delivery, raw.Delivery)
	d.callLog(&cfg.CallLog, raw.CallLog)
	d.log(&cfg.Log, raw.Log)
	d.telemetry(&cfg.Telemetry, raw.Telemetry)
	d.directory(&cfg.Directory, raw.Directory)
	cfg.Cluster = d.cluster(raw.Cluster)

	builtins := map[string]bool{}
	for _, b := range opt.Builtins {
		builtins[b] = true
	}
	for _, rp := range raw.Plugins {
		if p := d.plugin(rp, cfg.Plugins, builtins); p != nil {
			cfg.Plugins[p.Name] = p
		}
	}
	pluginNames := slices.Concat(opt.Builtins, slices.Collect(mapKeys(cfg.Plugins)))
	slices.Sort(pluginNames)
	pluginNames = slices.Compact(pluginNames)

	notifiers := map[string]*Notifier{}
	for _, rn := range raw.Notifiers {
		n := d.notifier(rn, notifiers, pluginNames)
		if notifiers[n.Name] == nil {
			notifiers[n.Name] = n
		}
		cfg.Notifiers = append(cfg.Notifiers, n)
	}
	routes := map[string]hcl.Range{}
	for _, rr := range raw.Routes {
		if r := d.route(rr, routes, notifiers); r != nil {
			cfg.Routes = append(cfg.Routes, r)
		}
	}
	d.kinds(cfg.Routes, notifiers)
	cfg.Feedback = d.feedback(raw.Feedback, notifiers)
	cfg.RingNobody = d.boolean(raw.RingNobody, false)
	if !diags.HasErrors() && !d.diags.HasErrors() {
		// Only a file otherwise right is checked for reaching someone: a
		// file with errors is refused anyway.
		d.reach(cfg, raw.RingNobody, notifiers, file.Body)
	}

	diags = sortDiags(addHints(cfg.Files, append(diags, d.diags...)))
	if diags.HasErrors() {
		return nil, diags
	}
	cfg.secrets = append(cfg.secrets, cfg.Server.NotifyToken, cfg.Server.AdminToken)
	cfg.secrets = append(cfg.secrets, urlSecrets(cfg.Telemetry.Endpoint)...)
	if cfg.Cluster != nil {
		cfg.secrets = append(cfg.secrets, cfg.Cluster.Password)
	}
	return cfg, diags
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sortDiags orders diagnostics by file and position (those without a
// subject first), keeping the relative order of equal positions.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return -1
		case b.Subject == nil:
			return 1
		}
		if c := strings.Compare(a.Subject.Filename, b.Subject.Filename); c != 0 {
			return c
		}
		return a.Subject.Start.Byte - b.Subject.Start.Byte
	})
	return diags
}

func (d *decoder) server(s *Server, raw *rawServer) {
	if raw == nil {
		raw = &rawServer{}
	}
	s.Listen = d.hostPort(raw.Listen, DefaultListen)
	s.NotifyPath = d.urlPath(raw.NotifyPath, DefaultNotifyPath, nil)
	s.CallEventPath = d.urlPath(raw.CallEventPath, DefaultCallEventPath, []string{s.NotifyPath})
	s.GroupCallEventPath = d.urlPath(raw.GroupEventPath, DefaultGroupCallEventPath, []string{s.NotifyPath, s.CallEventPath})
	s.NotifyToken = d.secret(raw.NotifyToken)
	s.AllowCIDRs = d.prefixes(raw.AllowCIDRs)
	s.TrustedProxies = d.prefixes(raw.TrustedProxies)
	s.MaxIDBytes = d.positiveInt(raw.MaxIDBytes, DefaultMaxIDBytes)
	s.MaxInFlight = d.positiveInt(raw.MaxInFlight, DefaultMaxInFlight)
	s.ShutdownGrace = d.duration(raw.ShutdownGrace, DefaultShutdownGrace, 0)
	s.RejectUnreachable = d.boolean(raw.RejectUnreachable, false)
	s.AdminListen = d.hostPort(raw.AdminListen, DefaultAdminListen)
	s.AdminToken = d.secret(raw.AdminToken)
	if s.AdminToken == "" && s.AdminListen != "" && !isLoopback(s.AdminListen) {
		rng := hcl.Range{}
		if raw.AdminListen != nil {
			rng = raw.AdminListen.Expr.Range()
		}
		detail := fmt.Sprintf("admin_listen %q is reachable from other hosts, so the devices API needs an admin_token (such as env(\"RINGSIDE_ADMIN_TOKEN\")); or listen on a loopback address such as \"127.0.0.1:20201\".", s.AdminListen)
		if raw.AdminToken != nil {
			detail = fmt.Sprintf("admin_listen %q is reachable from other hosts, but admin_token is empty here (is its environment variable set?).", s.AdminListen)
		}
		d.errorf(rng, "admin_token is required off loopback", "%s", detail)
	}
	s.TLS = d.tls(raw.TLS, "tls")
	s.AdminTLS = d.tls(raw.AdminTLS, "admin_tls")
}

// tls decodes a tls or admin_tls block; nil when absent.
func (d *decoder) tls(raw *rawTLS, block string) *TLS {
	if raw == nil {
		return nil
	}
	t := &TLS{
		CertFile: d.path(raw.CertFile, ""),
		KeyFile:  d.path(raw.KeyFile, ""),
	}
	for _, m := range []struct {
		attr *hcl.Attribute
		name string
	}{{raw.CertFile, "cert_file"}, {raw.KeyFile, "key_file"}} {
		if m.attr == nil {
			d.errorf(raw.DefRange, fmt.Sprintf("%s has no %s", block, m.name),
				"The %s block needs both cert_file and key_file (PEM files; relative paths resolve from the configuration file's folder).", block)
		}
	}
	return t
}

func (d *decoder) delivery(dl *DeliverySettings, raw *rawDelivery) {
	if raw == nil {
		raw = &rawDelivery{}
	}
	dl.DedupWindow = d.duration(raw.DedupWindow, DefaultDedupWindow, 0)
	dl.Journal = d.boolean(raw.Journal, true)
	dl.FallbackAfter = d.duration(raw.FallbackAfter, DefaultFallbackAfter, 0)
}

func (d *decoder) log(l *Log, raw *rawLog) {
	if raw == nil {
		raw = &rawLog{}
	}
	l.Format = d.enum(raw.Format, "text", "text", "json")
	l.Level = d.enum(raw.Level, "info", "debug", "info", "warn", "error")
}

func (d *decoder) telemetry(t *Telemetry, raw *rawTelemetry) {
	if raw == nil {
		raw = &rawTelemetry{}
	}
	t.Explicit = map[string]bool{
		"traces":       raw.Traces != nil,
		"endpoint":     raw.Endpoint != nil,
		"service_name": raw.ServiceName != nil,
	}
	t.Traces = d.enum(raw.Traces, "none", "none", "stdout", "otlp")
	t.Endpoint = d.baseURL(raw.Endpoint, DefaultEndpoint)
	t.ServiceName = d.nonEmpty(raw.ServiceName, DefaultServiceName)
}

func (d *decoder) directory(dir *Directory, raw *rawDirectory) {
	dir.Kind = "embedded"
	dir.Path = resolvePath(d.dir, DefaultDirectoryPath)
	dir.CacheUsers = DefaultCacheUsers
	if raw == nil {
		return
	}
	dir.CacheUsers = d.positiveInt(raw.CacheUsers, DefaultCacheUsers)
	if dir.CacheUsers > MaxCacheUsers {
		d.errorf(raw.CacheUsers.Expr.Range(), "cache_users is too large",
			"The directory cache keeps its users in memory (about 190 bytes each with one device); at most %d. Got %d.", MaxCacheUsers, dir.CacheUsers)
		dir.CacheUsers = DefaultCacheUsers
	}
	if raw.Kind != "embedded" {
		d.errorf(raw.KindRange, fmt.Sprintf("Unknown directory kind %q", raw.Kind),
			"The only directory kind is \"embedded\" (an embedded store file): directory \"embedded\" { path = \"ringside.db\" }.")
		return
	}
	if raw.Path != nil {
		p := d.nonEmpty(raw.Path, DefaultDirectoryPath)
		dir.Path = resolvePath(d.dir, p)
	}
}

func (d *decoder) plugin(raw *rawPlugin, seen map[string]*Plugin, builtins map[string]bool) *Plugin {
	p := &Plugin{Name: raw.Name, DeclRange: raw.DefRange}
	ok := true
	if prev, dup := seen[raw.Name]; dup {
		d.errorf(raw.NameRange, fmt.Sprintf("Duplicate plugin %q", raw.Name),
			"A plugin named %q is already defined at %s; plugin names must be unique.", raw.Name, posString(prev.DeclRange))
		ok = false
	} else if !hclsyntax.ValidIdentifier(raw.Name) {
		d.errorf(raw.NameRange, fmt.Sprintf("Invalid plugin name %q", raw.Name),
			"A plugin name must be an identifier: letters, digits, underscores and dashes, starting with a letter.")
		ok = false
	} else if builtins[raw.Name] {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  fmt.Sprintf("plugin %q replaces the built-in plugin", raw.Name),
			Detail:   fmt.Sprintf("Notifiers with plugin = %q will run this block's command, not the built-in %s plugin.", raw.Name, raw.Name),
			Subject:  raw.NameRange.Ptr(),
		})
	}
	if raw.Command == nil {
		d.errorf(raw.DefRange, fmt.Sprintf("plugin %q has no command", raw.Name),
			"A plugin block needs command, the plugin binary and its arguments, such as command = [\"./plugins/console\"].")
		ok = false
	} else {
		cmd, ranges := d.strList(raw.Command, false)
		switch {
		case cmd == nil && len(ranges) == 0:
			ok = false // already reported, or null
		case len(cmd) == 0:
			d.errorf(raw.Command.Expr.Range(), "command is empty",
				"command must name the plugin binary, such as command = [\"./plugins/console\"].")
			ok = false
		case cmd[0] == "":
			d.errorf(ranges[0], "command[0] is empty", "The first element of command is the plugin binary and must not be empty.")
			ok = false
		default:
			if !filepath.IsAbs(cmd[0]) && strings.ContainsRune(filepath.ToSlash(cmd[0]), '/') {
				cmd[0] = filepath.Join(d.dir, cmd[0])
				if !strings.ContainsRune(cmd[0], filepath.Separator) {
					// "./x" from a config in "." is still a path, not a name
					// to look up in PATH.
					cmd[0] = "." + string(filepath.Separator) + cmd[0]
				}
			}
			p.Command = cmd
			p.CommandRange = ranges[0]
		}
	}
	if raw.SHA256 != nil {
		sum := d.str(raw.SHA256, "")
		if !isSHA256Hex(sum) {
			d.errorf(raw.SHA256.Expr.Range(), "sha256 is not a SHA-256 checksum",
				"sha256 must be 64 lowercase hexadecimal characters (as printed by sha256sum); got %d characters%s.", len(sum), hexHint(sum))
			ok = false
		}
		p.SHA256 = sum
		p.SHA256Range = raw.SHA256.Expr.Range()
	}
	p.Env = d.strMap(raw.Env)
	for k := range p.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			d.errorf(raw.Env.Expr.Range(), "Invalid environment variable name",
				"%q cannot be an environment variable name.", k)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return p
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func hexHint(s string) string {
	for _, c := range s {
		switch {
		case 'A' <= c && c <= 'F':
			return ", with upper-case letters"
		case !('0' <= c && c <= '9' || 'a' <= c && c <= 'f'):
			return fmt.Sprintf(", including %q", c)
		}
	}
	return ""
}

// notifier decodes a notifier block; it returns the notifier even when it
// has errors, so routes naming it do not report it unknown too.
func (d *decoder) notifier(raw *rawNotifier, seen map[string]*Notifier, plugins []string) *Notifier {
	n := &Notifier{
		Name:      raw.Name,
		Remain:    raw.Remain,
		DeclRange: raw.DefRange,
		ranges:    map[string]hcl.Range{},
	}
	if prev, dup := seen[raw.Name]; dup {
		d.errorf(raw.NameRange, fmt.Sprintf("Duplicate notifier %q", raw.Name),
			"A notifier named %q is already defined at %s; notifier names must be unique.", raw.Name, posString(prev.DeclRange))
	} else if !hclsyntax.ValidIdentifier(raw.Name) {
		d.errorf(raw.NameRange, fmt.Sprintf("Invalid notifier name %q", raw.Name),
			"A notifier name must be an identifier: letters, digits, underscores and dashes, starting with a letter.")
	}
	for _, a := range []*hcl.Attribute{raw.Plugin, raw.Enabled, raw.Spare, raw.Devices, raw.TTL, raw.Payload} {
		if a != nil {
			n.ranges[a.Name] = a.Expr.Range()
		}
	}

	if raw.Plugin == nil {
		d.errorf(raw.DefRange, fmt.Sprintf("notifier %q has no plugin", raw.Name),
			"A notifier needs plugin, the name of a built-in plugin (%s) or of a plugin block.", strings.Join(plugins, ", "))
	} else {
		n.Plugin = d.str(raw.Plugin, "")
		if n.Plugin != "" && !slices.Contains(plugins, n.Plugin) {
			detail := fmt.Sprintf("There is no plugin %q: the available plugins are %s.", n.Plugin, orNone(plugins))
			if s := suggest(n.Plugin, plugins); s != "" {
				detail = fmt.Sprintf("There is no plugin %q; did you mean %q? The available plugins are %s.", n.Plugin, s, orNone(plugins))
			}
			d.errorf(raw.Plugin.Expr.Range(), fmt.Sprintf("Unknown plugin %q", n.Plugin), "%s A plugin that is not built in needs a plugin %q block.", detail, n.Plugin)
		} else if n.Plugin == "" {
			d.errorf(raw.Plugin.Expr.Range(), "plugin is empty", "plugin must name a built-in plugin (%s) or a plugin block.", orNone(plugins))
		}
	}
	n.Enabled = d.boolean(raw.Enabled, true)
	n.Spare = d.boolean(raw.Spare, false)
	n.Devices = d.str(raw.Devices, "")
	n.TTL = d.duration(raw.TTL, DefaultTTL, MaxTTL)
	if raw.Payload != nil {
		keys, pd := checkPayload(raw.Payload)
		d.diags = append(d.diags, pd...)
		n.Payload = raw.Payload.Expr
		n.PayloadKeys = keys
		n.payload = raw.Payload
	}
	return n
}

// kind decodes a route's on: the callback kind it handles.
func (d *decoder) kind(attr *hcl.Attribute) callback.Kind {
	if attr == nil {
		return callback.KindNotify
	}
	s := d.str(attr, "")
	k, ok := callback.ParseKind(s)
	if !ok {
		kinds := []string{callback.KindNotify.String(), callback.KindCallEvent.String(), callback.KindGroupCallEvent.String()}
		detail := fmt.Sprintf("on is the kind of callback the route handles: %s; got %q.", strings.Join(kinds, ", "), s)
		if sug := suggest(s, kinds); sug != "" {
			detail = fmt.Sprintf("on is the kind of callback the route handles: %s; got %q. Did you mean %q?", strings.Join(kinds, ", "), s, sug)
		}
		d.errorf(attr.Expr.Range(), fmt.Sprintf("Unknown callback kind %q", s), "%s", detail)
	}
	return k
}

// urlPath decodes a URL path of the public listener, which must start with /
// and differ from the paths in taken.
func (d *decoder) urlPath(attr *hcl.Attribute, def string, taken []string) string {
	p := d.str(attr, def)
	if attr == nil {
		return p
	}
	if !strings.HasPrefix(p, "/") {
		d.errorf(attr.Expr.Range(), attr.Name+" must start with /",
			"%s is the URL path LINE Planet calls, such as %q; got %q.", attr.Name, def, p)
	} else if slices.Contains(taken, p) {
		d.errorf(attr.Expr.Range(), attr.Name+" is taken",
			"%q already serves another callback on the public listener; each callback needs a path of its own.", p)
	}
	return p
}

// kinds records, on each notifier, the kinds of the routes that name it,
// and checks its payload for each: a notifier in an event route sees the
// event's fields, not notify's.
func (d *decoder) kinds(routes []*Route, notifiers map[string]*Notifier) {
	for _, r := range routes {
		for _, name := range slices.Concat(r.Notify, r.Fallback) {
			if n := notifiers[name]; n != nil && !slices.Contains(n.Kinds, r.On) {
				n.Kinds = append(n.Kinds, r.On)
			}
		}
	}
	for _, n := range notifiers {
		if n.payload == nil {
			continue
		}
		for _, k := range n.kindsOrNotify() {
			_, vd := checkCallExpr(n.payload.Expr, "payload", k)
			d.diags = append(d.diags, inRoutes(vd, n, k)...)
		}
	}
}

// kindsOrNotify returns the kinds of the routes naming n, notify when none
// does (a notifier no route names is checked as a notify one).
func (n *Notifier) kindsOrNotify() []callback.Kind {
	if len(n.Kinds) == 0 {
		return []callback.Kind{callback.KindNotify}
	}
	return n.Kinds
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (d *decoder) route(raw *rawRoute, seen map[string]hcl.Range, notifiers map[string]*Notifier) *Route {
	r := &Route{Name: raw.Name, DeclRange: raw.DefRange}
	if prev, dup := seen[raw.Name]; dup {
		d.errorf(raw.NameRange, fmt.Sprintf("Duplicate route %q", raw.Name),
			"A route named %q is already defined at %s; route names must be unique.", raw.Name, posString(prev))
	} else if raw.Name == "" {
		d.errorf(raw.NameRange, "Empty route name", "A route needs a name, such as route \"video\".")
	} else {
		seen[raw.Name] = raw.DefRange
	}
	r.On = d.kind(raw.On)
	if raw.When != nil {
		d.diags = append(d.diags, checkWhen(raw.When, r.On)...)
		r.When = raw.When.Expr
	}
	r.Continue = d.boolean(raw.Continue, false)
	r.Rung = d.boolean(raw.Rung, false)
	if raw.Rung != nil && r.On != callback.KindCallEvent {
		d.errorf(raw.Rung.NameRange, "rung is only for call_event routes",
			"rung = true delivers to the devices rung for a call's sid, which only a Call Event (on = \"call_event\") can name; this route is on %s.", r.On)
	}
	if raw.Users != nil {
		switch {
		case r.On == callback.KindNotify:
			d.errorf(raw.Users.NameRange, "users is only for event routes",
				"A notify route always rings the callee (to_service_id, to_user_id); users says whose devices an on = \"call_event\" or \"group_call_event\" route looks up.")
		case r.Rung:
			d.errorf(raw.Users.NameRange, "users and rung together",
				"rung = true delivers to the devices rung for the sid, so there is nobody to look up: remove users or rung.")
		default:
			d.diags = append(d.diags, checkUsers(raw.Users, r.On)...)
			r.Users = raw.Users.Expr
		}
	}

	names := make([]string, 0, len(notifiers))
	for k := range notifiers {
		names = append(names, k)
	}
	slices.Sort(names)
	used := map[string]string{} // notifier -> "notify" or "fallback"
	check := func(attr *hcl.Attribute) []string {
		list, ranges := d.strList(attr, false)
		for i, name := range list {
			switch {
			case notifiers[name] == nil:
				detail := fmt.Sprintf("No notifier %q is defined; the notifiers are %s.", name, orNone(names))
				if s := suggest(name, names); s != "" {
					detail = fmt.Sprintf("No notifier %q is defined; did you mean %q?", name, s)
				}
				d.errorf(ranges[i], fmt.Sprintf("Unknown notifier %q", name), "%s", detail)
			case used[name] != "":
				d.errorf(ranges[i], fmt.Sprintf("Notifier %q is named twice", name),
					"%q is already in this route's %s; each notifier may appear once in a route.", name, used[name])
			default:
				used[name] = attr.Name
			}
		}
		return list
	}
	if raw.Notify == nil {
		d.errorf(raw.DefRange, fmt.Sprintf("route %q has no notify", raw.Name),
			"A route needs notify, the list of notifiers to run, such as notify = [\"ios\", \"android\"].")
	} else {
		r.Notify = check(raw.Notify)
		if r.Notify != nil && len(r.Notify) == 0 {
			d.errorf(raw.Notify.Expr.Range(), "notify is empty",
				"A route must notify at least one notifier, such as notify = [\"ios\"].")
		}
	}
	if raw.Fallback != nil {
		r.Fallback = check(raw.Fallback)
	}
	return r
}

// reach checks that the routes can ring someone: at least one route names
// an enabled notifier (in notify or fallback). A file that reaches nobody
// is an error unless it says ring_nobody = true; that attribute in a file
// that does reach someone is an error too, so it cannot be left on by
// mistake (nor survive in a file cut short).
func (d *decoder) reach(cfg *Config, ringNobody *hcl.Attribute, notifiers map[string]*Notifier, body hcl.Body) {
	var disabled []string
	for _, r := range cfg.Routes {
		for _, name := range slices.Concat(r.Notify, r.Fallback) {
			n := notifiers[name]
			if n == nil {
				continue
			}
			if n.Enabled {
				if cfg.RingNobody {
					d.errorf(ringNobody.Expr.Range(), "ring_nobody = true, but a route rings someone",
						"ring_nobody says this file routes no call on purpose, but route %q notifies %q, which is enabled. Remove ring_nobody.", r.Name, name)
				}
				return
			}
			if !slices.Contains(disabled, name) {
				disabled = append(disabled, name)
			}
		}
	}
	if cfg.RingNobody {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "This configuration rings nobody",
			Detail:   "ring_nobody = true: every call is answered \"unrouted\" or \"no_devices\", and no phone rings.",
			Subject:  ringNobody.Expr.Range().Ptr(),
		})
		return
	}
	const how = "To route nothing on purpose, say so with ring_nobody = true at the top of the file."
	if len(cfg.Routes) == 0 {
		d.errorf(endOfFile(body), "The configuration has no route",
			"The file ends here without a route block, so every call would be answered \"unrouted\" and no phone would ring; a file saved half-way or cut short by a full disk looks like this. Add a route, such as route \"all\" { notify = [\"ios\"] }. %s", how)
		return
	}
	d.errorf(cfg.Routes[0].DeclRange, "No route rings an enabled notifier",
		"Every notifier the routes name is disabled here (%s: is the environment variable of its enabled set?), so every call would be answered \"no_devices\" and no phone would ring. %s", strings.Join(disabled, ", "), how)
}

// endOfFile is where a file's last block or attribute ends (its closing
// brace), or the end of the file when it has none.
func endOfFile(body hcl.Body) hcl.Range {
	b, ok := body.(*hclsyntax.Body)
	if !ok {
		return hcl.Range{}
	}
	last := b.EndRange
	at := -1
	for _, blk := range b.Blocks {
		if blk.CloseBraceRange.End.Byte > at {
			at, last = blk.CloseBraceRange.End.Byte, blk.CloseBraceRange
		}
	}
	for _, a := range b.Attributes {
		if a.SrcRange.End.Byte > at {
			at, last = a.SrcRange.End.Byte, a.SrcRange
		}
	}
	return last
}

// readStable reads a regular file and checks that it did not change while
// being read (size and modification time before and after, and the bytes
// read): a file being written is refused rather than loaded half-way.
func readStable(path string) ([]byte, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return src, nil
	}
	after, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || int64(len(src)) != after.Size() {
		return nil, errChanging
	}
	return src, nil
}

var errChanging = errors.New("the file changed while it was read (is it being written?); try again once it is saved")

// isLoopback reports whether a host:port listens on loopback only.
func isLoopback(hostport string) bool {
	host, _, err := splitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
