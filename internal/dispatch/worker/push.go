package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/retry"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// toDevices is the attempt of a push message: one send to each device of its recipient profile,
// at once, through the tenant's provider configs of the device's platform (a config's type is
// its platform: fcm, apns, webpush); the attempt's deliveries are then recorded together. An
// attempt sends only to the devices without a final delivery, so a retry never sends to a device
// twice (short of a crash between the sends and their record, as for every channel). The message
// is sent when a device got it and none waits for a retry; failed when none got it.
func (w *Worker) toDevices(ctx context.Context, log *slog.Logger, c *store.Claimed, env []byte, release func(), out outcome) (outcome, bool) {
	var plan Plan
	var devices []domain.Device
	if err := retry.UntilDone(ctx, func() error {
		var err error
		if plan, err = w.router.Plan(ctx, c.TenantID, c.Channel, c.Category); err != nil {
			return err
		}
		devices, err = w.targets.Do(ctx, store.PushAttempt{TenantID: c.TenantID, MessageID: c.ID, RecipientID: c.RecipientID})
		return err
	}); err != nil {
		return out, false
	}
	byPlatform := map[domain.Platform][]Route{}
	for _, r := range plan.Routes {
		byPlatform[domain.Platform(r.Config.Type)] = append(byPlatform[domain.Platform(r.Config.Type)], r)
	}
	dels := make([]domain.PushDelivery, len(devices))
	fails := make([]*provider.Error, len(devices))
	abandoned := make([]bool, len(devices))
	var wg sync.WaitGroup
	for i, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dels[i], fails[i], abandoned[i] = w.deliver(ctx, log, byPlatform[d.Platform], c, d, release)
		}()
	}
	wg.Wait()
	if slices.Contains(abandoned, true) {
		return out, false // crashed or out of drain time: the outcome is unknown, leave it leased
	}
	var last *provider.Error
	for i, f := range fails {
		if f != nil {
			last = f
		}
		if dels[i].Status == domain.DeliveryRemoved {
			log.InfoContext(ctx, "device removed: its push service no longer knows it", "device_id", dels[i].DeviceID, "platform", dels[i].Platform)
		}
	}
	var all []domain.PushDelivery
	if err := retry.UntilDone(ctx, func() error {
		var err error
		all, err = w.deliveries.Do(ctx, store.PushRecord{
			PushAttempt: store.PushAttempt{TenantID: c.TenantID, MessageID: c.ID, RecipientID: c.RecipientID}, Deliveries: dels})
		return err
	}); err != nil {
		return out, false
	}
	return w.pushOutcome(ctx, log, c, plan, last, all, env, out)
}

// deliver is the delivery of c to device d through routes (none: no config of its platform);
// abandoned when ctx ended mid-send.
func (w *Worker) deliver(ctx context.Context, log *slog.Logger, routes []Route, c *store.Claimed, d domain.Device, release func()) (del domain.PushDelivery, failed *provider.Error, abandoned bool) {
	del = domain.PushDelivery{DeviceID: d.ID, Platform: d.Platform, Attempt: c.Attempt, Status: domain.DeliverySent}
	if len(routes) == 0 {
		failed = provider.Failure(string(d.Platform), provider.NoProvider, "",
			fmt.Sprintf("no enabled %s provider config; add one with POST /v1/providers", d.Platform))
	} else {
		route, res, f, ok := w.sendToDevice(ctx, log, routes, c, d, release)
		if !ok {
			return del, nil, true
		}
		del.ProviderConfigID, del.ProviderType, del.ProviderMessageID, failed = route.Config.ID, route.Config.Type, res.ProviderMessageID, f
	}
	if failed != nil {
		del.Status, del.ErrorCode, del.ErrorMessage = domain.DeliveryRetrying, string(failed.Code), failed.Describe()
		switch {
		case failed.DeviceGone:
			del.Status = domain.DeliveryRemoved
		case failed.Permanent:
			del.Status = domain.DeliveryFailed
		}
	}
	return del, failed, false
}

// sendToDevice sends c to device d through the first of routes that takes it, failing over as a
// message of any channel does. ok is false when the attempt must be abandoned (ctx ended).
func (w *Worker) sendToDevice(ctx context.Context, log *slog.Logger, routes []Route, c *store.Claimed, d domain.Device, release func()) (Route, provider.Result, *provider.Error, bool) {
	m := provider.Message{ID: c.ID, TenantID: c.TenantID, Channel: c.Channel, To: d.Token, Text: c.Text, Metadata: c.Metadata,
		Push: c.Push, Device: &provider.Device{P256DH: d.P256DH, Auth: d.Auth}}
	var last *provider.Error
	for i, route := range routes {
		t, refused, ok := w.admission.admit(ctx, route, release)
		switch {
		case !ok:
			return route, provider.Result{}, nil, false
		case refused != nil:
			last = refused
		default:
			res, err := w.call(ctx, route.Sender, m)
			if ctx.Err() != nil {
				t.abandon()
				return route, provider.Result{}, nil, false
			}
			if err == nil {
				t.done(ctx, nil)
				return route, res, nil, true
			}
			last = provider.Classify(route.Config.Type, err)
			t.done(ctx, last)
			if last.Code == provider.AuthFailed {
				w.credentialsRefused(ctx, log.With("provider_id", route.Config.ID), route, last)
			}
		}
		if last.DeviceGone || !failsOver(last.Code) || i == len(routes)-1 {
			return route, provider.Result{}, last, true
		}
	}
	return Route{}, provider.Result{}, last, true
}

// pushOutcome is the message's outcome from all its deliveries so far: retried while a device waits
// for a retry and the budget lasts; sent when a device got it; failed otherwise, with last (the
// last failure of this attempt) as the reason.
func (w *Worker) pushOutcome(ctx context.Context, log *slog.Logger, c *store.Claimed, plan Plan, last *provider.Error, all []domain.PushDelivery, env []byte, out outcome) (outcome, bool) {
	var sent *domain.PushDelivery
	retrying := false
	for i, d := range all {
		switch d.Status {
		case domain.DeliverySent:
			if sent == nil {
				sent = &all[i]
			}
		case domain.DeliveryRetrying:
			retrying = true
		}
	}
	markSent := func(out outcome) (outcome, bool) {
		out.Status, out.ErrorCode, out.ErrorMessage, out.envelope = message.Sent, "", "", nil
		out.ProviderConfigID, out.ProviderType, out.ProviderMessageID = sent.ProviderConfigID, sent.ProviderType, sent.ProviderMessageID
		return out, true
	}
	switch {
	case retrying && last != nil:
		out.ErrorCode, out.ErrorMessage = string(last.Code), last.Describe()
		out, ok := w.retryLater(ctx, log, c, plan, last, env, out)
		if ok && out.Status == message.Failed && sent != nil {
			return markSent(out) // out of retries: the devices that got it count
		}
		return out, ok
	case sent != nil:
		return markSent(out)
	case len(all) == 0:
		out.Status, out.ErrorCode = message.Failed, string(provider.InvalidRecipient)
		out.ErrorMessage = fmt.Sprintf("recipient %s has no devices to push to: register them with POST /v1/recipients/%s/devices", c.RecipientID, c.RecipientID)
		return out, true
	}
	out.Status = message.Failed
	if last != nil {
		out.ErrorCode, out.ErrorMessage = string(last.Code), last.Describe()
	}
	return out, true
}
