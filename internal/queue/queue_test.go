package queue

import (
	"testing"
	"time"
)

func TestRetryTopics(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second:      "comms.send.retry.5s",
		7 * time.Second:  "comms.send.retry.5s",
		30 * time.Second: "comms.send.retry.30s",
		3 * time.Minute:  "comms.send.retry.2m",
		45 * time.Minute: "comms.send.retry.10m",
		5 * time.Hour:    "comms.send.retry.1h",
	} {
		if got := RetryTopic(d); got != want {
			t.Errorf("RetryTopic(%s) = %s, want %s", d, got, want)
		}
	}
}
