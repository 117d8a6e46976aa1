package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const testKeys = "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func TestDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"COMMS_ENCRYPTION_KEYS": testKeys}))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIAddr != "127.0.0.1:8080" || c.WebhookAddr != "127.0.0.1:8081" || c.WorkerInFlight != 1024 ||
		c.AttemptTimeout != 30*time.Second || len(c.KafkaBrokers) != 1 || c.EraserBatch != 1000 || c.EraserBusy != 0.5 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	_, err := Load(env(map[string]string{
		"COMMS_API_ADDR":               "8080",
		"COMMS_WORKER_IN_FLIGHT":       "0",
		"COMMS_ATTEMPT_TIMEOUT":        "soon",
		"COMMS_KAFKA_BROKERS":          "a:9092,nohost",
		"COMMS_LOG_LEVEL":              "loud",
		"COMMS_DATABASE_URL":           "mysql://x",
		"COMMS_SES_ENDPOINT":           "localhost:8005",
		"COMMS_ALLOW_PRIVATE_NETWORKS": "maybe",
		"COMMS_ERASER_BUSY":            "2",
		"COMMS_ERASER_BATCH":           "0",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"COMMS_API_ADDR", "COMMS_WORKER_IN_FLIGHT", "COMMS_ATTEMPT_TIMEOUT", "COMMS_KAFKA_BROKERS", "COMMS_LOG_LEVEL", "COMMS_DATABASE_URL",
		"COMMS_ENCRYPTION_KEYS", "COMMS_SES_ENDPOINT", "COMMS_ALLOW_PRIVATE_NETWORKS", "COMMS_ERASER_BUSY", "COMMS_ERASER_BATCH"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

// The eraser's pace is the operator's to set: a lower busy share leaves intake more of the
// database beside an erasure, at the cost of the erasure's time.
func TestEraserPaceIsRead(t *testing.T) {
	c, err := Load(env(map[string]string{"COMMS_ENCRYPTION_KEYS": testKeys, "COMMS_ERASER_BUSY": "0.2", "COMMS_ERASER_BATCH": "250"}))
	if err != nil || c.EraserBusy != 0.2 || c.EraserBatch != 250 {
		t.Fatalf("busy %g, batch %d, %v", c.EraserBusy, c.EraserBatch, err)
	}
	for _, bad := range []string{"0", "-0.5", "1.5", "NaN", "half"} {
		if _, err := Load(env(map[string]string{"COMMS_ENCRYPTION_KEYS": testKeys, "COMMS_ERASER_BUSY": bad})); err == nil || !strings.Contains(err.Error(), "COMMS_ERASER_BUSY") {
			t.Errorf("COMMS_ERASER_BUSY=%s: %v", bad, err)
		}
	}
}

// Start-up refuses a missing or malformed key ring, and never echoes key material.
func TestEncryptionKeysAreRequired(t *testing.T) {
	for name, keys := range map[string]string{
		"missing":   "",
		"malformed": "v1:not-base64!",
		"too short": "v1:c2hvcnQ=",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(env(map[string]string{"COMMS_ENCRYPTION_KEYS": keys}))
			if err == nil || !strings.Contains(err.Error(), "COMMS_ENCRYPTION_KEYS") {
				t.Fatalf("err = %v", err)
			}
			if keys != "" && strings.Contains(err.Error(), keys[3:]) {
				t.Fatal("error echoes key material")
			}
		})
	}
	c, err := Load(env(map[string]string{"COMMS_ENCRYPTION_KEYS": "v2:" + strings.Repeat("B", 43) + "=," + testKeys}))
	if err != nil || c.Ring.Current() != "v2" {
		t.Fatalf("%v %v", c.Ring, err)
	}
}
