package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/standardwebhooks"
)

// WebhookTolerance is how far a delivery's webhook-timestamp may be from now: an older one is
// refused as a replay.
const WebhookTolerance = 5 * time.Minute

// VerifyWebhook checks a delivery comms made to the tenant's endpoint (Standard Webhooks: the
// webhook-id, webhook-timestamp and webhook-signature headers, signed with the endpoint's
// secret, whsec_…) and decodes its body, a CloudEvent with its type's data (docs/webhooks.md).
// body must be the request's body exactly as received. Deduplicate on the event's ID: a
// delivery is retried and may be replayed.
//
//	body, _ := io.ReadAll(r.Body)
//	ev, err := client.VerifyWebhook(os.Getenv("COMMS_WEBHOOK_SECRET"), r.Header, body)
//	if err != nil { http.Error(w, "bad signature", 400); return }
//	if ev.Type == event.Delivered { … ev.Data.MessageID … }
func VerifyWebhook(secret string, h http.Header, body []byte) (event.Event, error) {
	key, err := standardwebhooks.DecodeSecret(secret)
	if err != nil {
		return event.Event{}, fmt.Errorf("the endpoint's secret %w", err)
	}
	if err := standardwebhooks.Verify(key, h, body, time.Now(), WebhookTolerance); err != nil {
		return event.Event{}, fmt.Errorf("webhook delivery: %w", err)
	}
	var ev event.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return event.Event{}, fmt.Errorf("webhook delivery: decode its CloudEvent: %w", err)
	}
	return ev, nil
}
