// Command ringside is a sidecar that makes phones ring: it answers LINE
// Planet's notify_cb callback, routes it by HCL rules, and delivers cc_param
// to the callee's devices through out-of-process plugins.
package main

import (
	"os"

	"github.com/ringside/ringside/core/cli"
	"github.com/ringside/ringside/plugins/apns"
	"github.com/ringside/ringside/plugins/fcm"
	"github.com/ringside/ringside/plugins/sms"
	"github.com/ringside/ringside/plugins/webhook"
	"github.com/ringside/ringside/plugins/webpush"
)

// builtins are the plugins this binary serves itself (`ringside plugin NAME`).
var builtins = map[string]cli.Builtin{
	"fcm":     fcm.Serve,
	"apns":    apns.Serve,
	"webhook": webhook.Serve,
	"sms":     sms.Serve,
	"webpush": webpush.Serve,
}

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, builtins))
}
