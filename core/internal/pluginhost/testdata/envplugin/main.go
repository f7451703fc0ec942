// Command envplugin is a test plugin for ringside's end-to-end tests: at
// Configure it logs the names of every variable in its environment and the
// value of the one its `show` attribute names, so a test can check the clean
// environment an external plugin gets. It rings nothing.
package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"

	"github.com/ringside/ringside/plugins/sdk"
)

func main() {
	sdk.Serve(sdk.Info{Name: "envplugin", Version: "0.0.1", DeviceKind: "envdev"}, &envPlugin{})
}

type config struct {
	Show string `ringside:"show" help:"a variable whose value is logged"`
}

type envPlugin struct{}

func (envPlugin) Configure(_ context.Context, c config) sdk.Diagnostics {
	var names []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	slices.Sort(names)
	v, ok := os.LookupEnv(c.Show)
	sdk.Logger().Info("envplugin environment", "names", strings.Join(names, ","), "show", c.Show, "show_set", ok, "show_value", v)
	return nil
}

func (envPlugin) Deliver(context.Context, *sdk.Delivery, sdk.Device) (string, error) {
	return "", sdk.Permanent(errors.New("envplugin rings nothing"))
}
