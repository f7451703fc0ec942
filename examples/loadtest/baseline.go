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

// serveBaseline is the ideal path for this job, in one process: parse the
// callback, look the callee up in a map, answer 200, and push with
// sideshow/apns2 from a goroutine (retrying 429/5xx/transport errors a few
// times, as a careful hand-written server would). It prints "listening
// ADDR" on stdout once it accepts connections.
func serveBaseline(args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
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
	key, err := token.AuthKeyFromFile(*keyFile)
	if err != nil {
		return err
	}
	client := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: *keyID, TeamID: *teamID})
	client.Host = *endpoint // trusted through SSL_CERT_FILE, like ringside's plugin

	dir := make(map[string]string, *callees) // user id → apns token
	for i := range *callees {
		dir["u"+strconv.Itoa(i)] = deviceToken(i)
	}

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
		n := &apns2.Notification{
			DeviceToken: tok, Topic: *topic, PushType: apns2.PushTypeVOIP, Priority: 10,
			Expiration: time.Now().Add(60 * time.Second), Payload: body,
		}
		go push(n)
		_, _ = io.WriteString(w, `{"sid":"`+sid+`","status":"accepted"}`)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.Serve(ln)
}

// deviceToken is callee i's APNs device token: 32 bytes in hex.
func deviceToken(i int) string { return fmt.Sprintf("%064x", i) }
