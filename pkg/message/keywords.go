package message

import "strings"

// SMS keywords, as carriers and Twilio's Advanced Opt-Out know them: what an inbound text asks of
// its sender's subscription.
var smsKeywords = map[string]string{
	"STOP": "stop", "STOPALL": "stop", "UNSUBSCRIBE": "stop", "CANCEL": "stop", "END": "stop", "QUIT": "stop",
	"START": "start", "YES": "start", "UNSTOP": "start",
	"HELP": "help", "INFO": "help",
}

// SMSKeyword is the keyword an inbound SMS is ("stop", "start" or "help"), or "": the whole text,
// in any case, with surrounding spaces and trailing punctuation ignored ("Stop.", " stop ").
func SMSKeyword(text string) string {
	w := strings.ToUpper(strings.TrimRight(strings.TrimSpace(text), ".!"))
	return smsKeywords[w]
}
