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
	"time"

	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

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
	// Block is what Configure tells the plugin of the notifier block
	// besides its attributes; nil tells nothing, as an older host.
	Block *Block
}

// Block names the template attributes a notifier block sets and the keys
// its payload sets, so that a plugin can refuse a block without a
// template it needs, or warn about one it ignores, at load.
type Block struct {
	Templates   []string // sorted
	PayloadKeys []string // in file order
	// CheckOnly: the process is started only to check the block (validate,
	// explain, test, diff); the plugin opens no connection.
	CheckOnly bool
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
	if _, ok := tel[pluginpb.LogLevelEnv]; !ok {
		tel = maps(tel, map[string]string{pluginpb.LogLevelEnv: levelName(log)})
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
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{pluginpb.PluginName: &pluginpb.GRPCPlugin{}},
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
				otelgrpc.WithFilter(pluginpb.TraceFilter),
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
	raw, err := proto.Dispense(pluginpb.PluginName)
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
		actual, herr := FileSHA256(file)
		if herr != nil {
			actual = "unreadable: " + herr.Error()
		}
		return fmt.Errorf("checksum mismatch for %s: expected sha256 %s, actual %s: %w", file, c.spec.SHA256, actual, err)
	}
	if m := pluginVersion.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("plugin speaks protocol version %s, this host speaks version %d: %w", m[1], pluginpb.ProtocolVersion, err)
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

// FileSHA256 is the hex SHA-256 of the file at path, as a plugin block's
// sha256 pins it.
func FileSHA256(path string) (string, error) {
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

// dead reports whether the process has ended: Exited, or, sooner, the
// kernel's word. It reads /proc, so it is for the supervisor's watch and
// after a failed delivery, not for every delivery.
func (c *Client) dead() bool {
	return c.pc.Exited() || c.cmd != nil && c.cmd.Process != nil && gone(c.cmd.Process.Pid)
}

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
