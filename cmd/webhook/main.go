// Command webhook receives provider delivery callbacks.
package main

import (
	"context"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/platform/config"
)

func main() {
	app.Main("webhook", func(ctx context.Context, cfg config.Config, d app.Deps) error {
		ln, err := app.Listen(ctx, "COMMS_WEBHOOK_ADDR", cfg.WebhookAddr)
		if err != nil {
			return err
		}
		return app.Webhook(ctx, cfg, d, ln)
	})
}
