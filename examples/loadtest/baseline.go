package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // served only when LOADTEST_PPROF names an address
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
)

// baselineArg, as the first argument, makes the loadtest binary serve the
// baseline instead of driving a load (the loadtest starts it this way).
const baselineArg = "-baseline-server"

// baselinePayload is the push body: the keys ringside sends by default.
type baselinePayload struct {
	CCParam    string `json:"cc_param"`
	SID        string `json:"sid"`
	CallerSID  string `json:"app_caller_sid"`
	CallerUID  string `json:"app_caller_uid"`
	CalleeSID  string `json:"app_callee_sid"`
	CalleeUID  string `json:"app_callee_uid"`
	CallType   string `json:"app_call_type"`
	AppSvrData string `json:"app_svr_data,omitempty"`
}

// serverFlags are the arguments the load generator starts the baseline
// and the floor with.
type serverFlags struct {
	listen, endpoint, keyFile, teamID, keyID, topic string
	callees                                         int
}

// parseServerFlags parses args; more, when set, adds flags of the server's
// own to the set first.
func parseServerFlags(name string, args []string, more func(*flag.FlagSet)) (*serverFlags, error) {
	var f serverFlags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "address")
	fs.StringVar(&f.endpoint, "endpoint", "", "APNs base URL")
	fs.StringVar(&f.keyFile, "key-file", "", ".p8 key")
	fs.StringVar(&f.teamID, "team-id", "", "team id")
	fs.StringVar(&f.keyID, "key-id", "", "key id")
	fs.StringVar(&f.topic, "topic", "", "apns-topic")
	fs.IntVar(&f.callees, "callees", 0, "callees u0…u(N-1), each with one device")
	if more != nil {
		more(fs)
	}
	return &f, fs.Parse(args)
}

// serveBaseline is the ideal path for this job, in one process: parse the
// callback, look the callee up in a map, answer 200, and push with
// sideshow/apns2 from a goroutine (retrying 429/5xx/transport errors a few
// times, as a careful hand-written server would). It prints "listening
// ADDR" on stdout once it accepts connections.
func serveBaseline(args []string) error {
	f, err := parseServerFlags("baseline", args, nil)
	if err != nil {
		return err
	}
	key, err := token.AuthKeyFromFile(f.keyFile)
	if err != nil {
		return err
	}
	client := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: f.keyID, TeamID: f.teamID})
	client.Host = f.endpoint // trusted through SSL_CERT_FILE, like ringside's plugin

	push := func(n *apns2.Notification) {
		ctx, cancel := context.WithDeadline(context.Background(), n.Expiration)
		defer cancel()
		for attempt := range 5 {
			resp, err := client.PushWithContext(ctx, n)
			if err == nil && (resp.StatusCode < 500 && resp.StatusCode != 429) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond << attempt):
			}
		}
	}
	return serveCallbacks(f.listen, f.callees, func(_, tok string, body []byte) bool {
		go push(&apns2.Notification{
			DeviceToken: tok, Topic: f.topic, PushType: apns2.PushTypeVOIP, Priority: 10,
			Expiration: time.Now().Add(60 * time.Second), Payload: body,
		})
		return true
	})
}

// serveCallbacks serves notify_cb on listen for callees u0…u(callees-1),
// each with one device: it parses the query, checks the required keys,
// looks the callee up in a map, and hands the sid, the device token and
// the push body (the keys ringside sends by default) to push, answering
// accepted, or 503 when push says false. LOADTEST_PPROF=addr serves
// net/http/pprof. It prints "listening ADDR" on stdout once it accepts
// connections.
func serveCallbacks(listen string, callees int, push func(sid, token string, body []byte) bool) error {
	if addr := os.Getenv("LOADTEST_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }() // DefaultServeMux: net/http/pprof
	}
	dir := make(map[string]string, callees) // user id → apns token
	for i := range callees {
		dir["u"+strconv.Itoa(i)] = deviceToken(i)
	}
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
		if !push(sid, tok, body) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"sid":"`+sid+`","status":"accepted"}`)
	})

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.Serve(ln)
}

// deviceToken is callee i's APNs device token: 32 bytes in hex.
func deviceToken(i int) string { return fmt.Sprintf("%064x", i) }
