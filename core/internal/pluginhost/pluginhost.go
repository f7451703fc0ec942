// Package pluginhost is the host side of the plugin protocol: it launches a
// plugin process over hashicorp/go-plugin gRPC (AutoMTLS, an optional sha256
// pin, a clean environment), forwards the plugin's logs to the host's slog
// logger under the notifier's name, and calls the plugin's RPCs with the
// caller's ctx, so deadlines and trace context cross the process boundary.
package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/core/internal/pluginhost/deliverstream"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Spec says how to start one plugin process for one notifier.
type Spec struct {
	// Notifier is the notifier block's name; the plugin's logs are named
	// "plugin.<notifier>".
	Notifier string
	// Plugin is the plugin's name.
	Plugin string
	// Command is the argv; a built-in plugin is
	// []string{os.Executable(), "plugin", name}.
	Command []string
	// SHA256 is the optional lowercase hex SHA-256 of Command[0]; a
	// mismatch refuses to start.
	SHA256 string
	// Env is the plugin block's env, added to the clean environment; it
	// wins over everything else.
	Env map[string]string
	// Telemetry holds the OTEL_* and RINGSIDE_PLUGIN_LOG_LEVEL settings the
	// host resolved; added to the clean environment before Env.
	Telemetry map[string]string
	// Logger is the host's logger; nil discards.
	Logger *slog.Logger
	// TracerProvider traces the plugin RPCs; nil is the global one.
	TracerProvider trace.TracerProvider
}

// Client is one running plugin process. Its methods may be called
// concurrently.
type Client struct {
	spec   Spec
	pc     *plugin.Client
	rpc    pluginpb.PluginClient
	info   *pluginpb.InfoResponse
	logger *slog.Logger
	tp     trace.TracerProvider
	// stream carries Deliver calls when the plugin serves DeliverStream.
	stream *deliverstream.Client
	cmd    *exec.Cmd
	// maxCall bounds the encoded size of one Deliver call: a call to more
	// devices is split (see split).
	maxCall int
}

// passEnv are the host variables a plugin process inherits, besides OTEL_*.
var passEnv = []string{"PATH", "HOME", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}

// Env returns the plugin process environment, as KEY=value lines sorted by
// key: GOMAXPROCS=PluginProcs(); from host (os.Environ's form) only PATH,
// HOME, TZ, SSL_CERT_FILE, SSL_CERT_DIR, HTTP_PROXY, HTTPS_PROXY, NO_PROXY,
// their lower-case forms and OTEL_*; then telemetry; then env, which wins.
func Env(host []string, telemetry, env map[string]string) []string {
	m := map[string]string{"GOMAXPROCS": strconv.Itoa(PluginProcs())}
	for _, kv := range host {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if strings.HasPrefix(k, "OTEL_") || slices.Contains(passEnv, k) || slices.Contains(passEnv, strings.ToUpper(k)) && k == strings.ToLower(k) {
			m[k] = v
		}
	}
	for k, v := range telemetry {
		m[k] = v
	}
	for k, v := range env {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// PluginProcs is the GOMAXPROCS a plugin process gets unless its block's
// env says otherwise: a quarter of the CPUs, at least one. A delivery plugin
// spends its time waiting on its provider, and one P carries thousands of
// pushes a second (about 0.1 ms of CPU each); with more Ps than it can keep
// busy the Go scheduler hands each wakeup to another thread (futex wakes,
// spinning Ms), which on the ring path cost more CPU than the push itself:
// on 2 cores, ringside + APNs plugin went from 0.51 to 0.46 ms of CPU per
// callback at 2,000/s with one P for the plugin.
func PluginProcs() int { return max(1, runtime.NumCPU()/4) }

// Start launches the plugin process of spec, checks its checksum and
// protocol version, and asks for its Info. ctx bounds the start (its
// deadline is the handshake's timeout) and the Info call; the process
// outlives it: end it with Kill (or Cleanup).
func Start(ctx context.Context, spec Spec) (*Client, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, fmt.Errorf("plugin %q (notifier %q): no command", spec.Plugin, spec.Notifier)
	}
	base := spec.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	log := base.With("logger", "plugin."+spec.Notifier, "notifier", spec.Notifier)

	cmd := exec.Command(spec.Command[0], spec.Command[1:]...)
	dieWithParent(cmd)
	tel := spec.Telemetry
	if _, ok := tel[sdk.LogLevelEnv]; !ok {
		tel = maps(tel, map[string]string{sdk.LogLevelEnv: levelName(log)})
	}
	cmd.Env = Env(os.Environ(), tel, spec.Env)

	var secure *plugin.SecureConfig
	if spec.SHA256 != "" {
		sum, err := hex.DecodeString(spec.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("plugin %q (notifier %q): sha256 %q is not %d hex digits", spec.Plugin, spec.Notifier, spec.SHA256, 2*sha256.Size)
		}
		secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}

	tp := spec.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	startTimeout := time.Minute
	if dl, ok := ctx.Deadline(); ok {
		startTimeout = max(time.Until(dl), time.Millisecond)
	}
	hl := newHCLogger(log)
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginName: grpcPlugin{}},
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Managed:          true,
		SkipHostEnv:      true,
		StartTimeout:     startTimeout,
		Logger:           hl,
		SyncStdout:       newLineWriter(log, slog.LevelInfo, "stdout"),
		SyncStderr:       newLineWriter(log, slog.LevelInfo, "stderr"),
		GRPCDialOptions: []grpc.DialOption{
			// A plugin's result batches are bounded by the SDK, but a plugin
			// built otherwise may send larger ones: take them rather than
			// end the stream and every call on it.
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler(
				otelgrpc.WithTracerProvider(tp),
				otelgrpc.WithPropagators(propagation.TraceContext{}),
				otelgrpc.WithFilter(sdk.TraceFilter),
			)),
		},
	})
	c := &Client{spec: spec, pc: pc, logger: log, tp: tp, cmd: cmd}
	if err := c.start(ctx); err != nil {
		pc.Kill()
		return nil, fmt.Errorf("start plugin %q (notifier %q): %w", spec.Plugin, spec.Notifier, err)
	}
	return c, nil
}

func (c *Client) start(ctx context.Context) error {
	proto, err := c.pc.Client()
	if err != nil {
		return c.startError(err)
	}
	raw, err := proto.Dispense(sdk.PluginName)
	if err != nil {
		return err
	}
	rpc, ok := raw.(pluginpb.PluginClient)
	if !ok {
		return fmt.Errorf("dispensed %T, not a plugin client", raw)
	}
	c.rpc = rpc
	info, err := rpc.Info(ctx, &pluginpb.InfoRequest{})
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	c.info = info
	c.maxCall = callBudget(info)
	if info.GetDeliverStream() {
		c.stream = deliverstream.New(rpc, deliverstream.Options{
			TracerProvider: c.tp,
			Limits:         deliverstream.Limits{MaxMessageBytes: c.maxCall},
			Progress:       info.GetDeliverProgress(),
		})
	}
	return nil
}

// maxRecvBytes is the largest message the host takes from a plugin.
const maxRecvBytes = 64 << 20

// grpcDefaultRecv is gRPC's default receive limit, which a plugin that does
// not say its own keeps.
const grpcDefaultRecv = 4 << 20

// callBudget is the largest message the host sends the plugin: a quarter
// of what the plugin says it receives (gRPC's default when it says
// nothing), at most deliverstream's default. Every message stays far from
// the plugin's limit, so no message ever ends a stream for its size.
func callBudget(info *pluginpb.InfoResponse) int {
	limit := int(info.GetMaxMessageBytes())
	if limit <= 0 {
		limit = grpcDefaultRecv
	}
	return min(limit/4, deliverstream.DefaultLimits.MaxMessageBytes)
}

// pluginVersion finds the plugin's protocol version in go-plugin's
// handshake error.
var pluginVersion = regexp.MustCompile(`Plugin version: (\d+)`)

// startError explains a go-plugin start failure.
func (c *Client) startError(err error) error {
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		file := c.commandPath()
		actual, herr := fileSHA256(file)
		if herr != nil {
			actual = "unreadable: " + herr.Error()
		}
		return fmt.Errorf("checksum mismatch for %s: expected sha256 %s, actual %s: %w", file, c.spec.SHA256, actual, err)
	}
	if m := pluginVersion.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("plugin speaks protocol version %s, this host speaks version %d: %w", m[1], sdk.ProtocolVersion, err)
	}
	return err
}

// commandPath is the file go-plugin checksums: Command[0] as exec resolved it.
func (c *Client) commandPath() string {
	if p, err := exec.LookPath(c.spec.Command[0]); err == nil {
		return p
	}
	return c.spec.Command[0]
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Info returns what the plugin said of itself at start.
func (c *Client) Info() *pluginpb.InfoResponse { return c.info }

// Schema asks the plugin for the notifier attributes it accepts.
func (c *Client) Schema(ctx context.Context) (*pluginpb.SchemaResponse, error) {
	resp, err := c.rpc.Schema(ctx, &pluginpb.SchemaRequest{})
	if err != nil {
		return nil, c.rpcError("schema", err)
	}
	return resp, nil
}

// Configure sends the notifier block's decoded attributes (a JSON object)
// and returns the plugin's complaints about them; the error is for a failed
// call.
func (c *Client) Configure(ctx context.Context, notifier string, configJSON []byte) ([]*pluginpb.AttributeError, error) {
	resp, err := c.rpc.Configure(ctx, &pluginpb.ConfigureRequest{Notifier: notifier, ConfigJson: configJSON})
	if err != nil {
		return nil, c.rpcError("configure", err)
	}
	return resp.GetErrors(), nil
}

// Deliver makes one delivery attempt, on DeliverStream when the plugin
// serves it. The response holds exactly one outcome per device, or one when
// req has no devices; anything else is an error.
func (c *Client) Deliver(ctx context.Context, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	return deliverstream.Await(func(done func(*pluginpb.DeliverResponse, error)) { c.DeliverAsync(ctx, req, done) })
}

// DeliverAsync is Deliver without a goroutine waiting for the answer: done
// gets what Deliver would return, once, never on the caller's goroutine; it
// must not block (see deliverstream.Client.DeliverAsync). A plugin without
// DeliverStream is called from a goroutine of its own.
//
// A call too large for one message (a callee with thousands of devices) is
// split into calls to fewer devices, each within the plugin's message
// limit; their outcomes are joined in the order of req's devices, and a
// part that fails as a whole answers retry for its devices only, so one
// part's failure never fails the others.
func (c *Client) DeliverAsync(ctx context.Context, req *pluginpb.DeliverRequest, done func(*pluginpb.DeliverResponse, error)) {
	// A call that cannot be encoded, or is too large even for one device,
	// would fail the same way on every attempt: its targets fail
	// permanently, with the reason.
	err := deliverstream.CheckUTF8(req)
	var parts []part
	if err == nil {
		parts, err = split(req, c.maxCall-deliverstream.CallOverhead)
	}
	if err != nil {
		go done(c.checked(req, refused(req, err.Error()), nil))
		return
	}
	if parts == nil {
		c.deliverOne(ctx, req, func(resp *pluginpb.DeliverResponse, err error) { done(c.checked(req, resp, err)) })
		return
	}
	j := &join{req: req, left: len(parts), outs: make([]*pluginpb.Outcome, len(req.GetDevices())), done: func(resp *pluginpb.DeliverResponse) {
		done(c.checked(req, resp, nil))
	}}
	for _, p := range parts {
		c.deliverOne(ctx, p.req, func(resp *pluginpb.DeliverResponse, err error) {
			resp, err = c.checked(p.req, resp, err)
			j.part(p.from, len(p.req.GetDevices()), resp, err)
		})
	}
}

// deliverOne makes one call, on the stream or as a unary RPC.
func (c *Client) deliverOne(ctx context.Context, req *pluginpb.DeliverRequest, done func(*pluginpb.DeliverResponse, error)) {
	if c.stream != nil {
		c.stream.DeliverAsync(ctx, req, done)
		return
	}
	go func() { done(c.rpc.Deliver(ctx, req)) }()
}

// part is one call of a split Deliver: its request and the index of its
// first device in the whole request.
type part struct {
	req  *pluginpb.DeliverRequest
	from int
}

// split divides req's devices into parts whose encoded size stays within
// budget bytes; nil when req fits whole. An error means a part of one
// device (or the request without devices) is already over budget.
func split(req *pluginpb.DeliverRequest, budget int) ([]part, error) {
	size := proto.Size(req)
	if size <= budget {
		return nil, nil
	}
	devs := req.GetDevices()
	base := size
	for _, d := range devs {
		base -= deviceSize(d)
	}
	if base >= budget || len(devs) == 0 {
		return nil, fmt.Errorf("the call is %d bytes, more than the %d bytes a message to the plugin may hold", size, budget)
	}
	var parts []part
	from, n := 0, base
	for i, d := range devs {
		ds := deviceSize(d)
		if base+ds > budget {
			return nil, fmt.Errorf("one device makes a call of %d bytes, more than the %d bytes a message to the plugin may hold", base+ds, budget)
		}
		if n+ds > budget {
			parts = append(parts, part{req: withDevices(req, devs[from:i]), from: from})
			from, n = i, base
		}
		n += ds
	}
	return append(parts, part{req: withDevices(req, devs[from:]), from: from}), nil
}

// deviceSize is what a device adds to the encoded request (its field tag
// and length prefix included).
func deviceSize(d *pluginpb.Device) int {
	n := proto.Size(d)
	return 1 + protowire.SizeVarint(uint64(n)) + n
}

func withDevices(req *pluginpb.DeliverRequest, devs []*pluginpb.Device) *pluginpb.DeliverRequest {
	return &pluginpb.DeliverRequest{
		DeliveryId:       req.GetDeliveryId(),
		Attempt:          req.GetAttempt(),
		Route:            req.GetRoute(),
		Call:             req.GetCall(),
		PayloadJson:      req.GetPayloadJson(),
		Templates:        req.GetTemplates(),
		Devices:          devs,
		DeadlineUnixNano: req.GetDeadlineUnixNano(),
	}
}

// refused is the response to a call the host cannot send: every target
// failed permanently, with reason.
func refused(req *pluginpb.DeliverRequest, reason string) *pluginpb.DeliverResponse {
	resp := &pluginpb.DeliverResponse{Outcomes: make([]*pluginpb.Outcome, max(1, len(req.GetDevices())))}
	for i := range resp.Outcomes {
		resp.Outcomes[i] = &pluginpb.Outcome{Kind: pluginpb.Outcome_KIND_PERMANENT, Reason: reason}
	}
	return resp
}

// join gathers the answers of a split call's parts.
type join struct {
	req  *pluginpb.DeliverRequest
	done func(*pluginpb.DeliverResponse)

	mu   sync.Mutex
	left int
	outs []*pluginpb.Outcome
}

// part records the answer of the part whose n devices start at from; a
// part that failed as a whole answers retry for its devices.
func (j *join) part(from, n int, resp *pluginpb.DeliverResponse, err error) {
	j.mu.Lock()
	for i := range n {
		if err != nil {
			j.outs[from+i] = &pluginpb.Outcome{Kind: pluginpb.Outcome_KIND_RETRY, Reason: err.Error()}
		} else {
			j.outs[from+i] = resp.GetOutcomes()[i]
		}
	}
	j.left--
	last := j.left == 0
	j.mu.Unlock()
	if last {
		j.done(&pluginpb.DeliverResponse{Outcomes: j.outs})
	}
}

// checked wraps a failed call, and fails a response without one outcome
// per target.
func (c *Client) checked(req *pluginpb.DeliverRequest, resp *pluginpb.DeliverResponse, err error) (*pluginpb.DeliverResponse, error) {
	if err != nil {
		return nil, c.rpcError("deliver", err)
	}
	if want := max(1, len(req.GetDevices())); len(resp.GetOutcomes()) != want {
		return nil, fmt.Errorf("plugin %q (notifier %q): deliver: %d outcomes for %d devices", c.spec.Plugin, c.spec.Notifier, len(resp.GetOutcomes()), len(req.GetDevices()))
	}
	return resp, nil
}

// Health returns nil when the plugin says it is ready.
func (c *Client) Health(ctx context.Context) error {
	resp, err := c.rpc.Health(ctx, &pluginpb.HealthRequest{})
	if err != nil {
		return c.rpcError("health", err)
	}
	if !resp.GetReady() {
		msg := resp.GetMessage()
		if msg == "" {
			msg = "not ready"
		}
		return fmt.Errorf("plugin %q (notifier %q): not ready: %s", c.spec.Plugin, c.spec.Notifier, msg)
	}
	return nil
}

// rpcError wraps a failed call, keeping its gRPC status reachable with
// status.FromError / status.Code.
func (c *Client) rpcError(op string, err error) error {
	if c.pc.Exited() {
		return fmt.Errorf("plugin %q (notifier %q): %s: plugin process exited: %w", c.spec.Plugin, c.spec.Notifier, op, err)
	}
	return fmt.Errorf("plugin %q (notifier %q): %s: %w", c.spec.Plugin, c.spec.Notifier, op, err)
}

// Exited reports whether the plugin process has ended; the owner then
// starts a new one.
func (c *Client) Exited() bool { return c.pc.Exited() }

// Kill stops the plugin process: gracefully first (the plugin flushes its
// spans), then by force after go-plugin's grace period. It is safe to call
// more than once.
func (c *Client) Kill() {
	if c.stream != nil {
		c.stream.Close()
	}
	c.pc.Kill()
}

// killNow ends the process at once (SIGKILL), without the graceful
// request Kill makes first: for a process that does not answer.
func (c *Client) killNow() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
	}
	if c.stream != nil {
		c.stream.Close()
	}
}

// Cleanup kills every plugin process still running; call it once, before
// the host exits.
func Cleanup() { plugin.CleanupClients() }

// grpcPlugin is the host's side of the go-plugin glue: it turns the
// connection into the generated protocol client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (grpcPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the host does not serve plugins")
}

func (grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return pluginpb.NewPluginClient(cc), nil
}

// maps merges ms into a new map, later ones winning.
func maps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
