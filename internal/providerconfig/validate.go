package providerconfig

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

func validateRate(f *provider.Fields, rate *float64) {
	if rate != nil && (*rate < 0 || *rate > 100_000) {
		f.Add("rate_limit_per_second", "must be from 0 (no cap) to 100000")
	}
}

func validateCommon(f *provider.Fields, name string, priority *int) {
	switch {
	case strings.TrimSpace(name) == "":
		f.Add("name", "is required")
	case utf8.RuneCountInString(name) > 100:
		f.Add("name", "must be at most 100 characters")
	default:
		f.Clean("name", name)
	}
	if priority != nil && (*priority < 0 || *priority > maxPriority) {
		f.Add("priority", "must be from 0 (tried first) to %d", maxPriority)
	}
}

func validateRecipient(f *provider.Fields, ch message.Channel, to string) {
	if ch == message.Push {
		if to != "" { // optional: without one the credentials are checked and nothing is sent
			checkPushTarget(f, to)
		}
		return
	}
	if to == "" {
		f.Add("test_recipient", "is required: the %s the test message goes to (your own), proving the credentials work", map[message.Channel]string{message.SMS: "phone number", message.Email: "address"}[ch])
		return
	}
	req := message.Request{Channel: ch, To: to, Text: "x", Subject: "x"}
	var verr *message.ValidationError
	if errors.As(req.Validate(), &verr) {
		for _, fe := range verr.Fields {
			if fe.Field == "to" {
				f.Add("test_recipient", "%s", fe.Message)
			}
		}
	}
}

// merge returns the validation errors of two sources as one.
func merge(f *provider.Fields, err error) error {
	var verr *message.ValidationError
	if errors.As(err, &verr) {
		for _, fe := range verr.Fields {
			f.Add(fe.Field, "%s", fe.Message)
		}
		return f.Err()
	}
	if err != nil {
		return err
	}
	return f.Err()
}
