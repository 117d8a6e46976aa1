// Command api serves the HTTP API (/v1 for tenants and internal services, /admin for operators)
// and runs the sweeper that re-publishes recorded but unqueued intents.
package main

import (
	"context"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/platform/config"
)

func main() {
	app.Main("api", func(ctx context.Context, cfg config.Config, d app.Deps) error {
		ln, err := app.Listen(ctx, "COMMS_API_ADDR", cfg.APIAddr)
		if err != nil {
			return err
		}
		return app.API(ctx, cfg, d, ln)
	})
}
