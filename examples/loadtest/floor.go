package main

import (
	"context"
	"encoding/json"

	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// floorArg, as the first argument, makes the loadtest binary serve the
// floor instead of driving a load (the loadtest starts it this way).
const floorArg = "-floor-server"

// serveFloor is the least a server built like ringside can do: the
// baseline's HTTP handler in one process, and the push in ringside's real
// apns plugin process (`ringside plugin apns`, started by go-plugin with a
// quarter of the CPUs as GOMAXPROCS and a clean environment, as ringside
// starts it), one DeliverStream message per callback,
// sent from the handler itself. It has none of ringside's journal,
// routing, directory, dedup, call log, metrics or retries, so what it costs
// over the baseline is the price of the out-of-process plugin alone: a
// second Go process, and a gRPC hop each way. It prints "listening ADDR"
// on stdout once it accepts connections. At SIGTERM it prints on stderr how
// many calls failed and how many devices were not delivered, and exits.
func serveFloor(args []string) error {
	var bin string
	var mtls bool
	f, err := parseServerFlags("floor", args, func(fs *flag.FlagSet) {
		fs.StringVar(&bin, "plugin", "", "the ringside binary, run as `BIN plugin apns`")
		fs.BoolVar(&mtls, "mtls", true, "go-plugin AutoMTLS on the plugin channel, as ringside has")
	})
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "plugin", "apns")
	cmd.Env = []string{"GOMAXPROCS=" + strconv.Itoa(max(1, runtime.NumCPU()/4))}
	for _, k := range []string{"PATH", "HOME", "SSL_CERT_FILE"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{ProtocolVersion: pluginpb.ProtocolVersion,
			MagicCookieKey: pluginpb.MagicCookieKey, MagicCookieValue: pluginpb.MagicCookieValue},
		Plugins:          plugin.PluginSet{pluginpb.PluginName: &pluginpb.GRPCPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         mtls,
		Managed:          true,
		SkipHostEnv:      true,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn}),
		SyncStderr:       os.Stderr,
	})
	defer plugin.CleanupClients()
	var stopping atomic.Bool
	var failed, undelivered atomic.Int64
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		stopping.Store(true)
		fmt.Fprintf(os.Stderr, "floor: %d calls failed, %d devices not delivered\n", failed.Load(), undelivered.Load())
		pc.Kill()
		os.Exit(0)
	}()
	rc, err := pc.Client()
	if err != nil {
		return err
	}
	raw, err := rc.Dispense(pluginpb.PluginName)
	if err != nil {
		return err
	}
	rpc := raw.(pluginpb.PluginClient)
	ctx := context.Background()
	cfg, _ := json.Marshal(map[string]any{"team_id": f.teamID, "key_id": f.keyID, "key_file": f.keyFile,
		"topic": f.topic, "production": false, "endpoint": f.endpoint})
	cr, err := rpc.Configure(ctx, &pluginpb.ConfigureRequest{Notifier: "ios", ConfigJson: cfg})
	if err != nil {
		return err
	}
	for _, e := range cr.GetErrors() {
		if !e.GetWarning() {
			return fmt.Errorf("configure: %s: %s", e.GetAttribute(), e.GetMessage())
		}
	}
	stream, err := rpc.DeliverStream(ctx)
	if err != nil {
		return err
	}
	go func() {
		for {
			b, err := stream.Recv()
			if err != nil {
				if stopping.Load() {
					return
				}
				fmt.Fprintln(os.Stderr, "floor: stream:", err)
				os.Exit(1)
			}
			for _, r := range b.GetResults() {
				if r.GetCode() != 0 {
					failed.Add(1)
				}
				for _, o := range r.GetResponse().GetOutcomes() {
					if o.GetKind() != pluginpb.Outcome_KIND_DELIVERED {
						undelivered.Add(1)
					}
				}
			}
		}
	}()

	var mu sync.Mutex // one Send at a time on the stream
	var id uint64
	return serveCallbacks(f.listen, f.callees, func(sid, tok string, body []byte) bool {
		deadline := time.Now().Add(60 * time.Second).UnixNano()
		req := &pluginpb.DeliverRequest{DeliveryId: sid, Attempt: 1, Route: "all", PayloadJson: body,
			Devices: []*pluginpb.Device{{Kind: "apns", Token: tok}}, DeadlineUnixNano: deadline}
		mu.Lock()
		defer mu.Unlock()
		id++
		return stream.Send(&pluginpb.DeliverBatch{Calls: []*pluginpb.DeliverCall{{Id: id, Request: req, CallDeadlineUnixNano: deadline}}}) == nil
	})
}
