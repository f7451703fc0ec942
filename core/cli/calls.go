package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ringside/ringside/core/internal/app"
	"github.com/ringside/ringside/core/internal/calllog"
)

// calls prints recent calls, or one call's timeline, from a running
// ringside's admin API; -follow prints events as they happen.
func (c *cmd) calls(args []string) int {
	fs, path := c.flags("calls")
	addr := fs.String("admin", "", "admin listener `address` (host:port or URL); default: the config's admin_listen")
	token := fs.String("token", "", "admin `token`; default: $RINGSIDE_ADMIN_TOKEN, else the config's admin_token")
	follow := fs.Bool("follow", false, "print events as they happen (with SID: until the call finishes)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	var filters [][2]string
	for _, name := range calllog.FilterParams {
		fs.Func(name, "filter the list by "+strings.ReplaceAll(name, "_", " "), func(v string) error {
			filters = append(filters, [2]string{name, v})
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(c.stderr, "usage: ringside calls [-config FILE] [-admin ADDR] [-token TOKEN] [-follow] [-json] [filters] [SID]")
		return ExitUsage
	}
	sid := fs.Arg(0)
	cl, err := c.adminClient(*path, *addr, *token, flagSet(fs, "config"))
	if err != nil {
		fmt.Fprintf(c.stderr, "ringside calls: %v\n", err)
		return ExitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *follow {
		return c.followCalls(ctx, cl, sid, *asJSON)
	}
	if sid != "" {
		var rec calllog.Record
		return c.show(ctx, cl, "/v1/calls/"+url.PathEscape(sid), &rec, *asJSON, func() { writeTimeline(c.stdout, &rec) })
	}
	q := url.Values{}
	for _, f := range filters {
		q.Set(f[0], f[1])
	}
	p := "/v1/calls"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var list struct{ Calls []calllog.Summary }
	return c.show(ctx, cl, p, &list, *asJSON, func() { writeCalls(c.stdout, list.Calls) })
}

// show gets the JSON at path into v and prints it raw with asJSON, else
// in words with write.
func (c *cmd) show(ctx context.Context, cl *adminAPI, path string, v any, asJSON bool, write func()) int {
	raw, err := cl.get(ctx, path, v)
	if err != nil {
		fmt.Fprintf(c.stderr, "ringside calls: %v\n", err)
		return ExitError
	}
	if asJSON {
		c.stdout.Write(raw)
	} else {
		write()
	}
	return ExitOK
}

// flagSet reports whether the named flag was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// adminTimeout bounds the wait for the admin API's answer (its headers;
// and, for a whole document, its body): a ringside that is stopped or hung
// accepts the connection and never answers, and the command must say so
// rather than wait forever. A live stream (-follow) is bounded only until
// its headers arrive.
var adminTimeout = 10 * time.Second

// adminAPI is a client of a running ringside's admin API.
type adminAPI struct {
	base  string
	token string
	http  *http.Client
}

// adminClient finds the admin API: the flags, else the config file (its
// admin_listen, admin_token and admin_tls, whose certificate is then
// trusted); $RINGSIDE_ADMIN_TOKEN stands in for a token flag.
func (c *cmd) adminClient(path, addr, token string, configSet bool) (*adminAPI, error) {
	if token == "" {
		token = os.Getenv("RINGSIDE_ADMIN_TOKEN")
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: adminTimeout}).DialContext,
		TLSHandshakeTimeout:   adminTimeout,
		ResponseHeaderTimeout: adminTimeout,
	}
	cl := &adminAPI{token: token, http: &http.Client{Transport: tr}}
	scheme := "http"
	// The config is read even with both flags given: its admin_tls says
	// whether to speak https, and which certificate to trust.
	cfg, diags := app.LoadConfig(path, c.options())
	switch {
	case diags.HasErrors() && (configSet || addr == ""):
		var b strings.Builder
		app.WriteDiagnostics(&b, cfg, diags)
		return nil, fmt.Errorf("reading %s for the admin address and token (or pass -admin and -token):\n%s", path, b.String())
	case !diags.HasErrors():
		if addr == "" {
			addr = cfg.Server.AdminListen
		}
		if cl.token == "" {
			cl.token = cfg.Server.AdminToken
		}
		if t := cfg.Server.AdminTLS; t != nil {
			scheme = "https"
			pem, err := os.ReadFile(t.CertFile)
			if err != nil {
				return nil, fmt.Errorf("admin_tls: %w", err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
	}
	if strings.Contains(addr, "://") {
		cl.base = strings.TrimSuffix(addr, "/")
		return cl, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // a wildcard listener answers on loopback
	}
	cl.base = scheme + "://" + net.JoinHostPort(host, port)
	return cl, nil
}

func (a *adminAPI) request(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		if isTimeout(err) {
			return nil, a.noAnswer()
		}
		return nil, fmt.Errorf("admin API at %s: %w (is ringside running? -admin sets the address)", a.base, errors.Unwrap(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct{ Error, Field, Message string }
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = json.Unmarshal(body, &e)
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return nil, fmt.Errorf("admin API at %s: 401: the admin token is missing or wrong (-token, $RINGSIDE_ADMIN_TOKEN or the config's admin_token)", a.base)
		case e.Field != "":
			return nil, fmt.Errorf("admin API: %d: %s: %s", resp.StatusCode, e.Field, e.Message)
		case e.Message != "":
			return nil, fmt.Errorf("admin API: %d: %s", resp.StatusCode, e.Message)
		}
		return nil, fmt.Errorf("admin API: %s", resp.Status)
	}
	return resp, nil
}

func (a *adminAPI) noAnswer() error {
	return fmt.Errorf("admin API at %s: no answer within %s (is ringside stopped or hung?)", a.base, adminTimeout)
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// get decodes the JSON at path into v and returns it raw as well.
func (a *adminAPI) get(ctx context.Context, path string, v any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	resp, err := a.request(ctx, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if isTimeout(err) {
		return nil, a.noAnswer()
	} else if err != nil {
		return nil, err
	}
	return raw, json.Unmarshal(raw, v)
}

// followCalls prints the stream's events, one line each, until ctx ends
// (or, with a sid, that call finishes).
func (c *cmd) followCalls(ctx context.Context, cl *adminAPI, sid string, asJSON bool) int {
	resp, err := cl.request(ctx, "/v1/calls/stream")
	if err != nil {
		fmt.Fprintf(c.stderr, "ringside calls: %v\n", err)
		return ExitError
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e calllog.Event
		if json.Unmarshal([]byte(data), &e) != nil || e.Seq == 0 {
			if strings.Contains(data, `"dropped"`) {
				fmt.Fprintf(c.stderr, "ringside calls: the stream dropped events (reading too slowly): %s\n", data)
			}
			continue
		}
		if sid != "" && e.SID != sid {
			continue
		}
		if asJSON {
			fmt.Fprintln(c.stdout, data)
		} else {
			fmt.Fprintln(c.stdout, eventLine(&e, true))
		}
		if sid != "" && e.Type == calllog.EventFinished {
			return ExitOK
		}
	}
	if ctx.Err() != nil {
		return ExitOK
	}
	fmt.Fprintln(c.stderr, "ringside calls: the stream ended (ringside stopped?)")
	return ExitError
}

func writeCalls(w io.Writer, calls []calllog.Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tSID\tCALLER\tCALLEE\tTYPE\tSTATUS\tOUTCOME\tROUTES\tNOTIFIERS")
	for _, s := range calls {
		status := s.Status
		if s.Callbacks > 1 {
			status += fmt.Sprintf(" (+%d)", s.Callbacks-1)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			s.Received.Local().Format("15:04:05.000"), s.SID, party(s.Caller), party(s.Callee), s.Type, status, s.Outcome,
			dash(strings.Join(s.Routes, ",")), dash(strings.Join(s.Notifiers, ",")))
	}
	tw.Flush()
	if len(calls) == 0 {
		fmt.Fprintln(w, "(no calls)")
	}
}

func writeTimeline(w io.Writer, r *calllog.Record) {
	fmt.Fprintf(w, "call %s: %s, %s\n", r.SID, r.Status, r.Outcome)
	fmt.Fprintf(w, "  received %s  caller %s  callee %s  type %s\n", r.Received.Local().Format(time.RFC3339Nano), party(r.Caller), party(r.Callee), r.Type)
	if r.TraceID != "" {
		fmt.Fprintf(w, "  trace %s\n", r.TraceID)
	}
	fmt.Fprintf(w, "  routes: %s\n", dash(strings.Join(r.Routes, ", ")))
	if len(r.Notifiers) > 0 {
		fmt.Fprintln(w, "notifiers:")
		for _, n := range r.Notifiers {
			state := "active"
			if !n.Active {
				state = "not active: " + n.Reason
			}
			fmt.Fprintf(w, "  %s (%s of %s, plugin %s): %s\n", n.Name, n.Role, n.Route, dash(n.Plugin), state)
		}
	}
	if len(r.Devices) > 0 {
		fmt.Fprintln(w, "devices:")
		for _, d := range r.Devices {
			fmt.Fprintf(w, "  %s %s\n", d.Kind, d.Token)
		}
	}
	fmt.Fprintln(w, "timeline:")
	for i := range r.Events {
		fmt.Fprintf(w, "  %s\n", eventLine(&r.Events[i], false))
	}
	if len(r.Results) > 0 {
		fmt.Fprintln(w, "results:")
		for _, res := range r.Results {
			dev := "(the app)"
			if res.Device != nil {
				dev = res.Device.Kind + " " + res.Device.Token
			}
			line := fmt.Sprintf("  %s → %s: %s", res.Notifier, dev, res.Outcome)
			if res.Reason != "" {
				line += " (" + res.Reason + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
}

// eventLine is one event in words; withSID for a stream of many calls.
func eventLine(e *calllog.Event, withSID bool) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("15:04:05.000"))
	if withSID {
		b.WriteString(" " + e.SID)
	}
	b.WriteString(" " + e.Type)
	if e.Status != "" {
		b.WriteString(" " + e.Status)
	}
	if e.Route != "" && e.Type == calllog.EventFallback {
		b.WriteString(" route " + e.Route)
	}
	if e.Notifier != "" {
		b.WriteString(" " + e.Notifier)
	}
	if e.Device != nil {
		b.WriteString(" → " + e.Device.Kind + " " + e.Device.Token)
	}
	if e.Attempt > 0 {
		fmt.Fprintf(&b, " #%d", e.Attempt)
	}
	if e.Outcome != "" {
		b.WriteString(": " + e.Outcome)
	}
	if e.Reason != "" {
		b.WriteString(" (" + e.Reason + ")")
	}
	if e.RetryAfterMS > 0 {
		fmt.Fprintf(&b, " retry-after %s", time.Duration(e.RetryAfterMS)*time.Millisecond)
	}
	if e.LatencyMS > 0 {
		fmt.Fprintf(&b, " in %.1f ms", e.LatencyMS)
	}
	if e.Call != nil && e.Type == calllog.EventCallback {
		fmt.Fprintf(&b, " %s → %s", party(e.Call.Caller), party(e.Call.Callee))
	}
	return b.String()
}

func party(p calllog.Party) string { return p.ServiceID + "/" + p.UserID }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
