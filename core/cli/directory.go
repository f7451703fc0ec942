package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ringside/ringside/core/internal/app"
	"github.com/ringside/ringside/core/internal/cluster"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/directory"
)

// explainStore is the directory explain reads: the cluster's, shared in
// Redis, when cfg has a cluster block, else the embedded file. close
// releases it.
func explainStore(ctx context.Context, cfg *config.Config) (_ directory.Store, release func(), _ error) {
	if cfg.Cluster != nil {
		rc, err := app.ConnectCluster(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		return rc.Directory(), func() { _ = rc.Close() }, nil
	}
	store, err := directory.OpenSQLite(cfg.Directory.Path)
	if err != nil {
		return nil, nil, err
	}
	return store, func() { _ = store.Close() }, nil
}

func (c *cmd) directory(args []string) int {
	if len(args) == 0 || args[0] != "migrate" {
		if len(args) > 0 && isHelp(args[0]) {
			c.usage(c.stdout)
			return ExitOK
		}
		fmt.Fprintln(c.stderr, "usage: ringside directory migrate [-config FILE] [-from PATH]")
		return ExitUsage
	}
	return c.migrate(args[1:])
}

// migrate copies an embedded directory file into the cluster's Redis.
func (c *cmd) migrate(args []string) int {
	fs, path := c.flags("directory migrate")
	from := fs.String("from", "", "the embedded directory `file` to copy (default: the config's directory path)")
	if exit, ok := c.parse(fs, args); !ok {
		return exit
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(c.stderr, "ringside directory migrate: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	cfg, diags := app.LoadConfig(*path, c.options())
	if diags.HasErrors() {
		app.WriteDiagnostics(c.stderr, cfg, diags)
		return ExitError
	}
	fail := func(err error) int {
		fmt.Fprintf(c.stderr, "ringside directory migrate: %v\n", err)
		return ExitError
	}
	if cfg.Cluster == nil {
		return fail(fmt.Errorf("%s has no cluster block: there is no Redis to migrate into (add cluster \"redis\" { addresses = [\"HOST:PORT\"] })", *path))
	}
	src := cfg.Directory.Path
	if *from != "" {
		src = *from
	}
	// The file must exist: opening a missing one would create an empty
	// directory and migrate nothing.
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fail(fmt.Errorf("no directory file at %s", src))
		}
		return fail(err)
	}
	ctx := context.Background()
	file, err := directory.OpenSQLite(src)
	if err != nil {
		return fail(err)
	}
	defer file.Close()
	rc, err := app.ConnectCluster(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	users, devices, err := cluster.Migrate(ctx, file, rc.Directory())
	if err != nil {
		return fail(fmt.Errorf("after %d users, %d devices: %w", users, devices, err))
	}
	fmt.Fprintf(c.stdout, "migrated %d users, %d devices\n", users, devices)
	return ExitOK
}
