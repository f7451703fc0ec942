// Command app-server is a demo app server for ringside's webhook plugin: it
// receives the POST ringside makes for each incoming call at
// /ringside/incoming-call, checks its Standard Webhooks signature when
// RINGSIDE_WEBHOOK_SECRET is set, prints the call to stdout and answers 204.
//
// Usage:
//
//	RINGSIDE_WEBHOOK_SECRET=whsec_… go run ./examples/app-server -listen 127.0.0.1:8080
//
// A real app server would, at this point, wake the callee's app with the
// call's cc_param; this one shows what it would work with.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run serves until SIGINT or SIGTERM and returns the exit code: 0 after a
// clean shutdown, 1 on a runtime error, 2 on a usage error.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("app-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "app-server: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	secret := getenv("RINGSIDE_WEBHOOK_SECRET")
	h, err := newHandler(stdout, secret)
	if err != nil {
		fmt.Fprintf(stderr, "app-server: RINGSIDE_WEBHOOK_SECRET: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{
		Addr:              *listen,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	mode := "signatures are checked"
	if secret == "" {
		mode = "RINGSIDE_WEBHOOK_SECRET is not set: signatures are NOT checked"
	}
	fmt.Fprintf(stderr, "app-server: listening on http://%s%s (%s)\n", *listen, incomingPath, mode)

	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "app-server: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		fmt.Fprintf(stderr, "app-server: shutdown: %v\n", err)
		return 1
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "app-server: %v\n", err)
		return 1
	}
	return 0
}
