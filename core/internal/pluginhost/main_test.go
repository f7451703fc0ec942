package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// TestMain serves the test plugins when the host under test runs this test
// binary as `plugin NAME`.
func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == "plugin" {
		servePlugin(os.Args[2])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func servePlugin(name string) {
	switch name {
	case "test":
		sdk.Serve(sdk.Info{Name: "test", Version: "0.0.1", DeviceKind: "testdev"}, &testPlugin{})
	case "v2":
		// A plugin built for another major version of the protocol.
		serveRaw(2, &rawServer{})
	case "short":
		// A plugin that answers Deliver with no outcome.
		serveRaw(pluginpb.ProtocolVersion, &rawServer{})
	case "legacy":
		// A plugin built before DeliverStream: unary Deliver only.
		serveRaw(pluginpb.ProtocolVersion, &legacyServer{})
	default:
		fmt.Fprintf(os.Stderr, "unknown test plugin %q\n", name)
		os.Exit(2)
	}
}

type testConfig struct {
	Greeting string        `ringside:"greeting,required" help:"Said on delivery."`
	Wait     time.Duration `ringside:"wait"`
	Body     string        `ringside:"body,template"`
}

// testPlugin reports what it sees through the provider id, as chosen by the
// device token.
type testPlugin struct {
	greeting string
	seen     sync.Map
}

func (p *testPlugin) Configure(_ context.Context, c testConfig) sdk.Diagnostics {
	var diags sdk.Diagnostics
	if c.Greeting == "bad" {
		diags.AddAttributeError("greeting", "must not be bad")
		diags.AddError("and the block is wrong too")
		return diags
	}
	p.greeting = c.Greeting
	return nil
}

func (p *testPlugin) Deliver(ctx context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	switch tok := dev.Token; {
	case tok == "" || tok == "ok":
		return p.greeting + ":" + d.ID + ":" + d.Template("body"), nil
	case strings.HasPrefix(tok, "env:"):
		v, ok := os.LookupEnv(strings.TrimPrefix(tok, "env:"))
		return fmt.Sprintf("%t:%s", ok, v), nil
	case tok == "environ":
		var keys []string
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return strings.Join(keys, ","), nil
	case tok == "deadline":
		dl, ok := ctx.Deadline()
		if !ok {
			return "none", nil
		}
		return fmt.Sprint(dl.UnixNano()), nil
	case tok == "trace":
		sc := trace.SpanContextFromContext(ctx)
		return sc.TraceID().String() + "/" + sc.SpanID().String(), nil
	case tok == "log":
		sdk.Logger().Info("hello from plugin", "n", 42)
		sdk.Logger().Debug("debug from plugin")
		fmt.Fprintln(os.Stderr, "raw stderr line")
		return "logged", nil
	case tok == "block":
		<-ctx.Done()
		return "", ctx.Err()
	case tok == "gone":
		return "", sdk.Gone(errors.New("Unregistered"), time.Unix(0, 7))
	case tok == "exit":
		os.Exit(3)
	case strings.HasPrefix(tok, "big:"):
		return tok[len(tok)-6:], nil
	case strings.HasPrefix(tok, "once:"):
		// Counts deliveries of one id to one device: a second is a
		// duplicate the host should not have sent.
		if _, dup := p.seen.LoadOrStore(d.ID+"/"+tok, true); dup {
			return "", sdk.Permanent(errors.New("duplicate delivery"))
		}
		return "once", nil
	case tok == "slow":
		time.Sleep(300 * time.Millisecond)
		return "slow", nil
	case tok == "exitlater":
		time.Sleep(300 * time.Millisecond)
		os.Exit(3)
	}
	return "", sdk.Permanent(fmt.Errorf("unknown token"))
}

// serveRaw serves a bare protocol server with go-plugin, without the SDK.
func serveRaw(version uint, srv pluginpb.PluginServer) {
	hs := handshake
	hs.ProtocolVersion = version
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         plugin.PluginSet{pluginpb.PluginName: &pluginpb.GRPCPlugin{Impl: srv}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

type rawServer struct {
	pluginpb.UnimplementedPluginServer
}

func (rawServer) Info(context.Context, *pluginpb.InfoRequest) (*pluginpb.InfoResponse, error) {
	return &pluginpb.InfoResponse{Name: "raw"}, nil
}

func (rawServer) Deliver(context.Context, *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	return &pluginpb.DeliverResponse{}, nil
}

// legacyServer delivers to every device, unary only, like a plugin built
// with an SDK that predates DeliverStream.
type legacyServer struct{ rawServer }

func (legacyServer) Deliver(_ context.Context, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	resp := &pluginpb.DeliverResponse{}
	for range max(1, len(req.GetDevices())) {
		resp.Outcomes = append(resp.Outcomes, &pluginpb.Outcome{Kind: pluginpb.Outcome_KIND_DELIVERED, ProviderId: "legacy:" + req.GetDeliveryId()})
	}
	return resp, nil
}
