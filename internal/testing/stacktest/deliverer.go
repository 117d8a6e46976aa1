package stacktest

import (
	"context"
	"time"

	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/webhooks"
)

// Deliverer is a running webhook Deliverer.
type Deliverer struct {
	*webhooks.Deliverer
	stop    context.CancelFunc
	abandon chan struct{}
	done    chan struct{}
}

// Kill stops the Deliverer as a killed process would: nothing more is recorded or committed.
func (d *Deliverer) Kill() {
	close(d.abandon)
	d.stop()
	<-d.done
}

// StartDeliverer runs a webhook Deliverer reading comms.events in the stack's webhooks group,
// dialling loopback (which production refuses), with its cache told of endpoint changes.
func (s *Stack) StartDeliverer(cfg webhooks.Config) *Deliverer {
	s.tb.Helper()
	cfg.Brokers, cfg.Group = s.Brokers, s.groupID+"-webhooks"
	if cfg.Dial == nil {
		cfg.Dial = netguard.DialFunc(5*time.Second, true)
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 20 * time.Millisecond
	}
	abandon := make(chan struct{})
	cfg.Abandon = abandon
	d := webhooks.New(cfg, s.Store, s.Ring, s.Log)
	ctx, cancel := context.WithCancel(context.Background())
	go invalidate.ListenEndpoints(ctx, s.rdb, s.prefix, s.Log, d.Changed)
	rd := &Deliverer{Deliverer: d, stop: cancel, abandon: abandon, done: make(chan struct{})}
	go func() {
		defer close(rd.done)
		_ = d.Run(ctx)
	}()
	s.tb.Cleanup(func() {
		cancel()
		select {
		case <-rd.done:
		case <-time.After(30 * time.Second):
		}
	})
	return rd
}
