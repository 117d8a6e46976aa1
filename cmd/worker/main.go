// Command worker dispatches send intents from Kafka through each tenant's provider.
package main

import (
	"context"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/platform/config"
)

func main() {
	app.Main("worker", func(ctx context.Context, cfg config.Config, d app.Deps) error {
		return app.Worker(ctx, cfg, d, app.Registry(cfg, nil))
	})
}
