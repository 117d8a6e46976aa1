// Package managed tests reaching a secured Kafka cluster, as MSK, Confluent Cloud or Aiven are:
// SASL/SCRAM over TLS with a private CA, and a topic prefix. It is a package of its own because
// the connection and tracing settings are the process's (queue.Configure, tracing.Setup).
package managed

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
)

func TestSecuredKafkaWithSCRAMOverTLSAndATopicPrefix(t *testing.T) {
	certs := testenv.NewCertificates(t)
	// The topics as the cluster has them: created by commsctl topics with the same prefix.
	queue.Configure(queue.Settings{TopicPrefix: "staging."})
	topics := queue.AllTopics()
	queue.Configure(queue.Settings{})
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topics...), kfake.TLS(certs.ServerTLS(t)),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "comms", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()

	settings := func(env map[string]string) queue.Settings {
		env["COMMS_KAFKA_BROKERS"] = strings.Join(brokers, ",")
		env["COMMS_ENCRYPTION_KEYS"] = stacktest.TestKeys
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		s, err := queue.SettingsFrom(cfg.Kafka)
		if err != nil {
			t.Fatalf("settings: %v", err)
		}
		return s
	}
	good := map[string]string{"COMMS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "COMMS_KAFKA_SASL_USERNAME": "comms",
		"COMMS_KAFKA_SASL_PASSWORD": "s3cret", "COMMS_KAFKA_TLS": "true", "COMMS_KAFKA_TLS_CA_FILE": certs.CAFile,
		"COMMS_KAFKA_TOPIC_PREFIX": "staging."}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() { queue.Configure(queue.Settings{}) })

	// A wrong password, an untrusted certificate or plain TCP against TLS fail at once, as a
	// setting to fix (queue.ErrSettings), naming the settings.
	for name, change := range map[string]map[string]string{
		"wrong password": {"COMMS_KAFKA_SASL_PASSWORD": "wrong"},
		"untrusted CA":   {"COMMS_KAFKA_TLS_CA_FILE": ""},
		"no TLS":         {"COMMS_KAFKA_TLS": "", "COMMS_KAFKA_TLS_CA_FILE": ""},
	} {
		env := map[string]string{}
		for k, v := range good {
			env[k] = v
		}
		for k, v := range change {
			env[k] = v
		}
		queue.Configure(settings(env))
		start := time.Now()
		err := queue.Check(ctx, brokers)
		if !errors.Is(err, queue.ErrSettings) || !strings.Contains(err.Error(), "COMMS_KAFKA_") {
			t.Errorf("%s: %v, want a settings error naming them", name, err)
		}
		t.Logf("%s: refused in %s: %v", name, time.Since(start).Round(time.Millisecond), err)
	}

	queue.Configure(settings(good))
	if err := queue.Check(ctx, brokers); err != nil {
		t.Fatalf("check with the right settings: %v", err)
	}
	if queue.TopicSend != "staging.comms.send" {
		t.Fatalf("TopicSend is %q", queue.TopicSend)
	}
	// A producer and a consumer group, as the intake and the worker use them.
	p := queue.NewProducer(brokers, queue.TopicSend)
	defer p.Close()
	if err := p.Publish(ctx, queue.Envelope{MessageID: "msg_1", TenantID: "ten_1", Channel: message.SMS, Attempt: 1, EnqueuedAt: time.Now()}); err != nil {
		t.Fatalf("publish over SCRAM and TLS: %v", err)
	}
	r := queue.NewGroupReader(brokers, "managed-test", queue.TopicSend)
	defer r.Close()
	m, err := r.Fetch(ctx)
	if err != nil {
		t.Fatalf("consume over SCRAM and TLS: %v", err)
	}
	if env, err := queue.Decode(m.Value); err != nil || env.MessageID != "msg_1" || m.Topic != "staging.comms.send" {
		t.Fatalf("consumed %+v from %s: %v", env, m.Topic, err)
	}
	if err := queue.EnsureTopics(ctx, brokers, 2, 1, queue.AllTopics()...); err != nil {
		t.Fatalf("ensure topics (commsctl topics) over SCRAM and TLS: %v", err)
	}
	if _, err := queue.GroupLag(ctx, brokers, "managed-test", queue.TopicSend); err != nil {
		t.Fatalf("consumer lag over SCRAM and TLS: %v", err)
	}
}
