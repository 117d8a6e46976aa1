package message_test

import (
	"testing"

	"github.com/logicspike/comms/pkg/message"
)

func TestSMSKeywords(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]string{
		"STOP": "stop", "stop": "stop", " Stop. ": "stop", "STOPALL": "stop", "unsubscribe": "stop", "Cancel": "stop", "END": "stop", "quit!": "stop",
		"START": "start", "yes": "start", "Unstop": "start",
		"HELP": "help", "info": "help",
		"stop it": "", "please stop": "", "": "", "Hello": "", "STOPP": "",
	} {
		if got := message.SMSKeyword(text); got != want {
			t.Errorf("SMSKeyword(%q) = %q, want %q", text, got, want)
		}
	}
}
