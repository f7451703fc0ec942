package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
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
// apns plugin process (`ringside plugin apns`, started by go-plugin with
// one P, as ringside starts it), one DeliverStream message per callback,
// sent from the handler itself. It has none of ringside's journal,
// routing, directory, dedup, call log, metrics or retries, so what it costs
// over the baseline is the price of the out-of-process plugin alone: a
// second Go process, and a gRPC hop each way. It prints "listening ADDR"
// on stdout once it accepts connections.
func serveFloor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	bin := fs.String("plugin", "", "the ringside binary, run as `BIN plugin apns`")
	mtls := fs.Bool("mtls", true, "go-plugin AutoMTLS on the plugin channel, as ringside has")
	endpoint := fs.String("endpoint", "", "APNs base URL")
	keyFile := fs.String("key-file", "", ".p8 key")
	teamID := fs.String("team-id", "", "team id")
	keyID := fs.String("key-id", "", "key id")
	topic := fs.String("topic", "", "apns-topic")
	callees := fs.Int("callees", 0, "callees u0…u(N-1), each with one device")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if addr := os.Getenv("LOADTEST_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }() // DefaultServeMux: net/http/pprof
	}
	cmd := exec.Command(*bin, "plugin", "apns")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{ProtocolVersion: pluginpb.ProtocolVersion,
			MagicCookieKey: pluginpb.MagicCookieKey, MagicCookieValue: pluginpb.MagicCookieValue},
		Plugins:          plugin.PluginSet{pluginpb.PluginName: &pluginpb.GRPCPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         *mtls,
		Managed:          true,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn}),
		SyncStderr:       os.Stderr,
	})
	defer plugin.CleanupClients()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() { <-sig; pc.Kill(); os.Exit(0) }()
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
	cfg, _ := json.Marshal(map[string]any{"team_id": *teamID, "key_id": *keyID, "key_file": *keyFile,
		"topic": *topic, "production": false, "endpoint": *endpoint})
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
	var failed atomic.Int64
	go func() {
		for {
			b, err := stream.Recv()
			if err != nil {
				fmt.Fprintln(os.Stderr, "floor: stream:", err)
				os.Exit(1)
			}
			for _, r := range b.GetResults() {
				if r.GetCode() != 0 {
					failed.Add(1)
				}
			}
		}
	}()

	dir := make(map[string]string, *callees) // user id → apns token
	for i := range *callees {
		dir["u"+strconv.Itoa(i)] = deviceToken(i)
	}
	var mu sync.Mutex // one Send at a time on the stream
	var id uint64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := url.ParseQuery(r.URL.RawQuery)
		sid := q.Get("sid")
		if err != nil || len(sid) != 36 || q.Get("param") == "" || q.Get("to_user_id") == "" ||
			q.Get("to_service_id") == "" || q.Get("from_user_id") == "" || q.Get("from_service_id") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_callback"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		tok, ok := dir[q.Get("to_user_id")]
		if !ok {
			_, _ = io.WriteString(w, `{"sid":"`+sid+`","status":"no_devices"}`)
			return
		}
		p := baselinePayload{
			CCParam: q.Get("param"), SID: sid,
			CallerSID: q.Get("from_service_id"), CallerUID: q.Get("from_user_id"),
			CalleeSID: q.Get("to_service_id"), CalleeUID: q.Get("to_user_id"),
			CallType: q.Get("type"), AppSvrData: q.Get("stid"),
		}
		body, _ := json.Marshal(&p)
		deadline := time.Now().Add(60 * time.Second).UnixNano()
		req := &pluginpb.DeliverRequest{DeliveryId: sid, Attempt: 1, Route: "all", PayloadJson: body,
			Devices: []*pluginpb.Device{{Kind: "apns", Token: tok}}, DeadlineUnixNano: deadline}
		mu.Lock()
		id++
		err = stream.Send(&pluginpb.DeliverBatch{Calls: []*pluginpb.DeliverCall{{Id: id, Request: req, CallDeadlineUnixNano: deadline}}})
		mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"sid":"`+sid+`","status":"accepted"}`)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	err = srv.Serve(ln)
	if n := failed.Load(); n > 0 {
		err = errors.Join(err, fmt.Errorf("%d calls failed", n))
	}
	return err
}
