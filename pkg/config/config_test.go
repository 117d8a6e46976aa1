package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != "127.0.0.1:8080" || c.WebhookAddr != "127.0.0.1:8081" || c.WorkerInFlight != 1024 ||
		c.AttemptTimeout != 30*time.Second || len(c.KafkaBrokers) != 1 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	_, err := Load(env(map[string]string{
		"COMMS_API_ADDR":         "8080",
		"COMMS_WORKER_IN_FLIGHT": "0",
		"COMMS_ATTEMPT_TIMEOUT":  "soon",
		"COMMS_KAFKA_BROKERS":    "a:9092,nohost",
		"COMMS_LOG_LEVEL":        "loud",
		"COMMS_DATABASE_URL":     "mysql://x",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"COMMS_API_ADDR", "COMMS_WORKER_IN_FLIGHT", "COMMS_ATTEMPT_TIMEOUT", "COMMS_KAFKA_BROKERS", "COMMS_LOG_LEVEL", "COMMS_DATABASE_URL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}
