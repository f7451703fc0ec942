package cli

import (
	"context"
	"fmt"

	"github.com/ringside/ringside/core/internal/app"
	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/pluginhost"
)

// planning is a configuration started for planning only, as explain, test
// and diff use it: its plugins run for their schemas and nothing is
// delivered.
type planning struct {
	cfg *config.Config
	rt  *app.Runtime
}

// startPlanning loads and starts the configuration at path. On a config
// error it writes the diagnostics to the command's stderr and returns
// false with ExitError.
func (c *cmd) startPlanning(ctx context.Context, path string) (*planning, int, bool) {
	opt := c.options()
	opt.CheckOnly = true
	cfg, diags := app.LoadConfig(path, opt)
	if diags.HasErrors() {
		app.WriteDiagnostics(c.stderr, cfg, diags)
		return nil, ExitError, false
	}
	rt, diags := app.Start(ctx, cfg, opt)
	if diags.HasErrors() {
		if rt != nil {
			rt.Close()
		}
		app.WriteDiagnostics(c.stderr, cfg, diags)
		return nil, ExitError, false
	}
	return &planning{cfg: cfg, rt: rt}, ExitOK, true
}

// withPlanning starts the configuration at path for planning, runs f
// with it and stops its plugins when f returns; it returns f's exit code,
// or ExitError, having written the diagnostics, when the configuration
// does not start.
func (c *cmd) withPlanning(path string, f func(ctx context.Context, p *planning) int) int {
	defer pluginhost.Cleanup()
	ctx := context.Background()
	p, exit, ok := c.startPlanning(ctx, path)
	if !ok {
		return exit
	}
	defer p.Close()
	return f(ctx, p)
}

// explain plans call with the callee's devices in store and says what it
// would do.
func (p *planning) explain(ctx context.Context, call *callback.Call, store directory.Store) (explained, error) {
	planner := p.rt.Planner(store)
	pl, err := planner.Plan(ctx, call, callexpr.Context(call))
	if err != nil {
		return explained{}, fmt.Errorf("plan %s: %w", call.SID, err)
	}
	return explanation(pl), nil
}

// Close stops the plugins.
func (p *planning) Close() { p.rt.Close() }
