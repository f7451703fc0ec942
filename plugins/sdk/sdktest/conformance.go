package sdktest

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Suite describes a plugin to Conformance.
type Suite struct {
	// Serve serves the plugin with sdk.Serve, as Main's serve does. When it
	// is set and Start is nil, each plugin process is this test binary
	// running only the test that called Conformance, whose Conformance call
	// serves instead of testing: the package needs no TestMain.
	Serve func()
	// Start launches a fresh plugin process; nil means Start(t), or, with
	// Serve, the calling test as the plugin.
	Start func(t testing.TB) *Client
	// Config returns a valid configuration under which the plugin's
	// requests go to peer, the base URL of a fake provider the suite runs
	// (a plugin that makes no requests ignores it). It must not set
	// template attributes: ringside never configures those.
	Config func(peer string) map[string]any
	// Peer answers the plugin's requests as its provider does on success;
	// nil answers 200 "ok" to everything.
	Peer http.Handler
	// Invalid configurations Configure must reject, each pointing at
	// Attribute.
	Invalid []Invalid
	// Tokens are well-formed device tokens of the plugin's device kind
	// (at least 3 for a plugin with a device kind; nil: made-up ones).
	Tokens []string
	// Templates are rendered template attributes for the well-formed
	// deliveries (nil: every template attribute set to "sdktest"); the
	// plugin configured for them is told its block sets these (see
	// sdk.TemplateSet).
	Templates map[string]string
	// TLS runs the fake providers over HTTPS with HTTP/2 (httptest's
	// certificate, trusted by the plugin process through SSL_CERT_FILE when
	// Start is nil), for plugins that insist on https endpoints.
	TLS bool
	// DeliverBudget is how long past a delivery's deadline the plugin may
	// take to answer (default 1s).
	DeliverBudget time.Duration
}

// Invalid is a configuration Configure must reject at Attribute.
type Invalid struct {
	Name      string
	Config    map[string]any
	Attribute string
}

// Reserved are notifier attributes ringside itself owns; a plugin may not
// declare them.
var Reserved = []string{"plugin", "enabled", "devices", "ttl", "payload"}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	kindRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	attrRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

// Conformance checks the plugin s describes through the real plugin
// boundary:
//
//   - info: a lowercase name, a version, a valid device kind (or none);
//   - schema: attribute names valid, unique and not ringside's own (Reserved),
//     typed, described; template and path attributes are strings;
//   - configure: the valid configuration is accepted and the plugin is then
//     ready; a missing required attribute, an unknown one, a value of the
//     wrong type and each Invalid configuration are rejected with errors
//     that point at an attribute of the schema; odd JSON does not crash it;
//     no message quotes a sensitive value;
//   - unary deliver: a unary Deliver call (what hosts older than
//     DeliverStream make) delivers;
//   - deliver: one outcome per device (one when the plugin has no device
//     kind), delivered with a provider id — on DeliverStream, as ringside
//     calls, when the plugin serves it (every plugin built with this SDK);
//   - deadline: a delivery against a provider that never answers returns
//     within DeliverBudget of its deadline, as retry (or delivered); an
//     expired deadline sends nothing; when the host gives up first the
//     plugin abandons its request;
//   - odd input: empty calls, payloads that are not objects, odd or huge
//     tokens and templates get one outcome per device and no
//     panic, and no reason quotes a whole token;
//   - concurrency: parallel Delivers all succeed and the process survives
//     (run the tests with -race: the plugin process is the race-enabled
//     test binary);
//   - stream batch: calls sent together in one message of DeliverStream
//     are each answered, by their id;
//   - secrets: the plugin's logs hold no device token, no sensitive value
//     and no whole cc_param.
func Conformance(t *testing.T, s Suite) {
	t.Helper()
	if s.Serve != nil && IsPlugin() {
		// This process is a plugin Conformance launched: serve, then end
		// the test by skipping it, so that its cleanups still run.
		s.Serve()
		t.SkipNow()
	}
	if s.Config == nil {
		t.Fatal("sdktest.Conformance: Suite.Config is required")
	}
	if s.DeliverBudget <= 0 {
		s.DeliverBudget = time.Second
	}

	peer := s.Peer
	if peer == nil {
		peer = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "ok")
		})
	}
	happy := newServer(peer, s.TLS)
	t.Cleanup(happy.Close)
	if s.Start == nil {
		var opts []Option
		if s.Serve != nil {
			opts = append(opts, func(o *options) { o.test = t.Name() })
		}
		if s.TLS {
			ca := filepath.Join(t.TempDir(), "ca.pem")
			pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: happy.Certificate().Raw})
			if err := os.WriteFile(ca, pemCert, 0o600); err != nil {
				t.Fatal(err)
			}
			opts = append(opts, Env("SSL_CERT_FILE="+ca))
		}
		s.Start = func(t testing.TB) *Client { return Start(t, opts...) }
	}
	c := s.Start(t)
	schema := c.Schema(t)
	kind := c.Info.GetDeviceKind()
	valid := s.Config(happy.URL)
	secrets := sensitiveValues(schema, append([]map[string]any{valid}, invalidConfigs(s.Invalid)...))
	tokens := s.Tokens
	if len(tokens) == 0 {
		tokens = []string{"sdktest-token-000000000001", "sdktest-token-000000000002", "sdktest-token-000000000003"}
	}
	if kind != "" && len(tokens) < 3 {
		t.Fatalf("sdktest.Conformance: Suite.Tokens needs at least 3 tokens, got %d", len(tokens))
	}
	templates := s.Templates
	if templates == nil {
		templates = map[string]string{}
		for _, a := range schema {
			if a.GetTemplate() {
				templates[a.GetName()] = "sdktest"
			}
		}
	}
	// The well-formed deliveries' block sets their templates, and
	// Configure is told so.
	setTemplates := Templates(slices.Sorted(maps.Keys(templates))...)
	devices := func(toks ...string) []sdk.Device {
		if kind == "" {
			return nil
		}
		var ds []sdk.Device
		for _, tok := range toks {
			ds = append(ds, sdk.Device{Kind: kind, Token: tok, UpdatedAt: time.Unix(1700000000, 0)})
		}
		return ds
	}
	request := func(toks ...string) Request {
		r := NewRequest(devices(toks...)...)
		r.Templates = templates
		return r
	}
	var usedTokens []string
	checkAlive := func(t *testing.T, c *Client) {
		t.Helper()
		if c.Exited() {
			t.Fatalf("the plugin process exited; its output:\n%s", c.Logs())
		}
	}

	t.Run("info", func(t *testing.T) {
		i := c.Info
		if !nameRE.MatchString(i.GetName()) {
			t.Errorf("name %q: want lowercase letters, digits, - and _", i.GetName())
		}
		if strings.TrimSpace(i.GetVersion()) == "" {
			t.Error("no version")
		}
		if kind != "" && !kindRE.MatchString(kind) {
			t.Errorf("device kind %q: want [a-z0-9_-]{1,32}", kind)
		}
	})

	t.Run("schema", func(t *testing.T) {
		seen := map[string]bool{}
		for _, a := range schema {
			n := a.GetName()
			switch {
			case !attrRE.MatchString(n):
				t.Errorf("attribute %q: want [a-z_][a-z0-9_]*", n)
			case seen[n]:
				t.Errorf("attribute %q declared twice", n)
			case slices.Contains(Reserved, n):
				t.Errorf("attribute %q is ringside's own notifier attribute", n)
			}
			seen[n] = true
			if a.GetType() == pluginpb.Type_TYPE_UNSPECIFIED {
				t.Errorf("attribute %q has no type", n)
			}
			if (a.GetTemplate() || a.GetPath()) && a.GetType() != pluginpb.Type_TYPE_STRING {
				t.Errorf("attribute %q: template and path attributes must be strings", n)
			}
			if a.GetTemplate() && a.GetPath() {
				t.Errorf("attribute %q is both a template and a path", n)
			}
			if strings.TrimSpace(a.GetDescription()) == "" {
				t.Errorf("attribute %q has no description (a help tag)", n)
			}
		}
		for k := range valid {
			if !seen[k] {
				t.Errorf("Suite.Config sets %q, which the schema lacks", k)
			}
			if a := attr(schema, k); a != nil && a.GetTemplate() {
				t.Errorf("Suite.Config sets template attribute %q", k)
			}
		}
		for k := range templates {
			if a := attr(schema, k); a == nil || !a.GetTemplate() {
				t.Errorf("Suite.Templates sets %q, which is not a template attribute", k)
			}
		}
	})

	t.Run("configure", func(t *testing.T) {
		pointsAt := func(t *testing.T, what string, diags sdk.Diagnostics, want string) {
			t.Helper()
			var found bool
			hard := diags.HasError()
			for _, e := range diags {
				if attr(schema, e.Attribute) == nil && e.Attribute != want {
					t.Errorf("%s: %s %q points at %q, not an attribute of the schema", what, e.Severity, e.Summary, e.Attribute)
				}
				if e.Attribute == want && e.Severity == sdk.SeverityError {
					found = true
				}
				noSecret(t, what+": "+e.Severity.String(), e.Summary, secrets)
			}
			if !hard {
				t.Errorf("%s: accepted; want an error at %q", what, want)
			} else if !found {
				t.Errorf("%s: diagnostics %v; want an error at %q", what, diags, want)
			}
		}
		fresh := func(t *testing.T) *Client {
			p := s.Start(t)
			return p
		}
		// Odd JSON first, on a process that is then configured properly.
		p := fresh(t)
		for _, js := range []string{"", "null", "[]", "42", `"x"`, "{", `{"":1}`, `{"\u0000":null}`} {
			for _, e := range p.Configure(t, js) {
				noSecret(t, "odd config "+e.Severity.String(), e.Summary, secrets)
			}
			checkAlive(t, p)
		}
		diags := p.Configure(t, valid, setTemplates)
		if diags.HasError() {
			t.Fatalf("the valid configuration:\n%s", diags)
		}
		for _, e := range diags {
			if attr(schema, e.Attribute) == nil {
				t.Errorf("warning %q points at %q, not an attribute", e.Summary, e.Attribute)
			}
			noSecret(t, "warning", e.Summary, secrets)
		}
		if ready, msg := p.Health(t); !ready {
			t.Errorf("configured but not ready: %s", msg)
		}

		for _, a := range schema {
			if a.GetRequired() && !a.GetTemplate() {
				cfg := without(valid, a.GetName())
				pointsAt(t, "without required "+a.GetName(), fresh(t).Configure(t, cfg), a.GetName())
			}
			if a.GetTemplate() {
				continue
			}
			cfg := with(valid, a.GetName(), wrongType(a.GetType()))
			pointsAt(t, "wrong type for "+a.GetName(), fresh(t).Configure(t, cfg), a.GetName())
		}
		pointsAt(t, "unknown attribute", fresh(t).Configure(t, with(valid, "sdktest_unknown", "x")), "sdktest_unknown")
		for _, inv := range s.Invalid {
			errs := fresh(t).Configure(t, inv.Config)
			pointsAt(t, "invalid "+inv.Name, errs, inv.Attribute)
		}
	})

	c.MustConfigure(t, valid, setTemplates)

	t.Run("unary deliver", func(t *testing.T) {
		// Hosts older than DeliverStream make unary calls.
		r := request(tokens[0])
		usedTokens = append(usedTokens, tokens[0])
		resp, err := c.RPC.Deliver(rpcCtx(t), r.Proto())
		if err != nil {
			t.Fatalf("unary Deliver: %v", err)
		}
		if outs := Outcomes(resp.GetOutcomes()); len(outs) != 1 || outs[0].Kind != Delivered {
			t.Errorf("unary Deliver: got %v; want one delivered outcome", outs)
		}
	})

	t.Run("deliver", func(t *testing.T) {
		for _, toks := range [][]string{tokens[:1], tokens[:3]} {
			r := request(toks...)
			usedTokens = append(usedTokens, toks...)
			outs := c.Deliver(t, r)
			for i, o := range outs {
				if o.Kind != Delivered || o.ProviderID == "" {
					t.Errorf("device %d of %d: got %v; want delivered with a provider id", i, len(outs), o)
				}
			}
			if kind == "" {
				break
			}
		}
		checkAlive(t, c)
	})

	t.Run("deadline", func(t *testing.T) {
		st := newStall(s.TLS)
		defer st.close()
		p := s.Start(t)
		p.MustConfigure(t, s.Config(st.URL), setTemplates)
		toks := tokens[:2]
		usedTokens = append(usedTokens, toks...)

		r := request(toks...)
		r.Deadline = time.Now().Add(300 * time.Millisecond)
		start := time.Now()
		outs := p.Deliver(t, r)
		if el := time.Since(r.Deadline); el > s.DeliverBudget {
			t.Errorf("answered %v after the deadline (%v since the call); want within %v", el.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), s.DeliverBudget)
		}
		for i, o := range outs {
			if o.Kind != Retry && o.Kind != Delivered {
				t.Errorf("device %d, provider never answered: got %v; want retry", i, o)
			}
		}

		seen := st.count()
		r = request(toks...)
		r.Deadline = time.Now().Add(-time.Second)
		for i, o := range p.Deliver(t, r) {
			if o.Kind != Retry {
				t.Errorf("device %d, expired deadline: got %v; want retry", i, o)
			}
		}
		if st.count() != seen {
			t.Error("a request was sent past the deadline")
		}

		// The host gives up first: the plugin must abandon its request.
		r = request(toks...)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, _ = p.DeliverProto(ctx, r.Proto())
		cancel()
		deadline := time.Now().Add(s.DeliverBudget + time.Second)
		for st.inFlight() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := st.inFlight(); n > 0 {
			t.Errorf("%d requests still open %v after the host gave up: Deliver does not honour its ctx", n, s.DeliverBudget+time.Second)
		}
		checkAlive(t, p)
	})

	t.Run("odd input", func(t *testing.T) {
		oddTokens := []string{"", " ", "\x00", "../../../etc/passwd", "tok\r\nen-000000", "\u202e\u200b-bidi-zero-width", "☎️📞-emoji-token", "a/b?c=d&e#f-0000", strings.Repeat("9", 4096), "%2F%2e%2E-encoded"}
		var reqs []Request
		r := Request{}
		reqs = append(reqs, r)
		r = request(tokens[0])
		r.Templates = nil
		reqs = append(reqs, r)
		for _, pj := range []string{"", "null", "[]", "not json", `{"cc_param":1,"sid":null}`} {
			r := request(tokens[0])
			r.PayloadJSON = []byte(pj)
			reqs = append(reqs, r)
		}
		r = request(tokens[0])
		r.Call = sdk.Call{Type: "X", Param: strings.Repeat("A", 4096), Extra: map[string]string{"": "\x00"}}
		reqs = append(reqs, r)
		r = request(tokens[0])
		r.Templates = map[string]string{}
		for k := range templates {
			r.Templates[k] = strings.Repeat("\ufffd\n<&>\"'%", 20000)
		}
		reqs = append(reqs, r)
		r = request(tokens[0])
		r.Templates = map[string]string{}
		for k := range templates {
			r.Templates[k] = ""
		}
		reqs = append(reqs, r)
		if kind != "" {
			r = request(oddTokens...)
			reqs = append(reqs, r)
			r = request(tokens[0])
			r.Devices = []sdk.Device{{}, {Kind: "other-kind", Token: tokens[0]}}
			reqs = append(reqs, r)
		}
		for i, r := range reqs {
			r.Deadline = time.Now().Add(10 * time.Second)
			if i == 0 {
				r.Deadline = time.Time{}
			}
			outs := c.Deliver(t, r)
			for j, o := range outs {
				if o.Kind == Unspecified {
					t.Errorf("request %d, device %d: outcome of no kind", i, j)
				}
				if strings.HasPrefix(o.Reason, "plugin panic") {
					t.Errorf("request %d, device %d: %s", i, j, o.Reason)
				}
				if j < len(r.Devices) {
					if tok := r.Devices[j].Token; len(tok) >= 8 && strings.Contains(o.Reason, tok) {
						t.Errorf("request %d, device %d: the reason quotes the whole token: %s", i, j, o.Reason)
					}
				}
				noSecret(t, "reason", o.Reason, secrets)
			}
			checkAlive(t, c)
		}
		usedTokens = append(usedTokens, oddTokens...)
	})

	t.Run("concurrency", func(t *testing.T) {
		var wg sync.WaitGroup
		var bad atomic.Int32
		for range 8 {
			wg.Go(func() {
				resp, err := c.DeliverProto(context.Background(), request(tokens[:3]...).Proto())
				if err != nil {
					bad.Add(1)
					return
				}
				for _, o := range Outcomes(resp.GetOutcomes()) {
					if o.Kind != Delivered {
						bad.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := bad.Load(); n > 0 {
			t.Errorf("%d of the concurrent deliveries failed", n)
		}
		checkAlive(t, c)
	})

	t.Run("stream batch", func(t *testing.T) {
		if c.stream == nil {
			t.Skip("the plugin does not serve DeliverStream")
		}
		// Several calls in one message of the stream, each answered by its id.
		reqs := make([]*pluginpb.DeliverRequest, 8)
		for i := range reqs {
			r := request(tokens[:1+i%3]...)
			r.ID = fmt.Sprintf("sdktest-batch-%d", i)
			reqs[i] = r.Proto()
		}
		resps, errs := c.stream.DeliverBatch(rpcCtx(t), reqs)
		for i := range reqs {
			if errs[i] != nil {
				t.Errorf("call %d of the batch: %v", i, errs[i])
				continue
			}
			outs := Outcomes(resps[i].GetOutcomes())
			if want := max(len(reqs[i].GetDevices()), 1); len(outs) != want {
				t.Errorf("call %d of the batch: %d outcomes; want %d", i, len(outs), want)
			}
			for j, o := range outs {
				if o.Kind != Delivered {
					t.Errorf("call %d of the batch, device %d: got %v; want delivered", i, j, o)
				}
			}
		}
		checkAlive(t, c)
	})

	t.Run("secrets", func(t *testing.T) {
		logs := c.Logs()
		for _, tok := range append(usedTokens, tokens...) {
			if len(tok) >= 8 && strings.Contains(logs, tok) {
				t.Errorf("the plugin logged the whole device token %q", abbreviate(tok))
			}
		}
		noSecret(t, "logs", logs, secrets)
		if strings.Contains(logs, LineParam) {
			t.Error("the plugin logged the whole cc_param")
		}
	})
}

func attr(schema []*pluginpb.Attribute, name string) *pluginpb.Attribute {
	for _, a := range schema {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func with(cfg map[string]any, k string, v any) map[string]any {
	m := make(map[string]any, len(cfg)+1)
	for kk, vv := range cfg {
		m[kk] = vv
	}
	m[k] = v
	return m
}

func without(cfg map[string]any, k string) map[string]any {
	m := with(cfg, k, nil)
	delete(m, k)
	return m
}

// wrongType is a JSON value no attribute of type t accepts.
func wrongType(t pluginpb.Type) any {
	switch t {
	case pluginpb.Type_TYPE_STRING, pluginpb.Type_TYPE_DURATION:
		return []int{1}
	default:
		return map[string]any{"sdktest": []int{1}}
	}
}

func invalidConfigs(inv []Invalid) []map[string]any {
	var out []map[string]any
	for _, i := range inv {
		out = append(out, i.Config)
	}
	return out
}

// sensitiveValues are the string values of sensitive attributes in cfgs
// long enough to be recognised.
func sensitiveValues(schema []*pluginpb.Attribute, cfgs []map[string]any) []string {
	var out []string
	for _, a := range schema {
		if !a.GetSensitive() {
			continue
		}
		for _, cfg := range cfgs {
			var vals []string
			switch v := cfg[a.GetName()].(type) {
			case string:
				vals = []string{v}
			case []string:
				vals = v
			case map[string]string:
				for _, e := range v {
					vals = append(vals, e)
				}
			default:
				if v != nil {
					b, _ := json.Marshal(v)
					vals = []string{string(b)}
				}
			}
			for _, s := range vals {
				if len(s) >= 6 {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func noSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s quotes a sensitive value (%s): %s", what, abbreviate(s), abbreviate(text))
		}
	}
}

func abbreviate(s string) string {
	if len(s) > 3 {
		return fmt.Sprintf("%q… (%d bytes)", s[:3], len(s))
	}
	return "…"
}

// stall is a fake provider that accepts requests and never answers, until
// the request's context ends or the stall is closed.
type stall struct {
	*httptest.Server
	n, open atomic.Int32
	done    chan struct{}
}

// newServer serves h over http, or https with HTTP/2.
func newServer(h http.Handler, tls bool) *httptest.Server {
	if !tls {
		return httptest.NewServer(h)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	return srv
}

func newStall(tls bool) *stall {
	s := &stall{done: make(chan struct{})}
	s.Server = newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		s.open.Add(1)
		// Read the body so that the server notices the client going away.
		_, _ = io.Copy(io.Discard, r.Body)
		defer s.open.Add(-1)
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	}), tls)
	return s
}

func (s *stall) count() int32    { return s.n.Load() }
func (s *stall) inFlight() int32 { return s.open.Load() }

func (s *stall) close() {
	close(s.done)
	s.CloseClientConnections()
	s.Close()
}
