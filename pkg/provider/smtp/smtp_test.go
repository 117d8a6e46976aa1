package smtp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/smtp"
)

func cfg(f *fakeprovider.SMTP, tls string) provider.Config {
	creds, _ := json.Marshal(smtp.Credentials{Host: f.Host, Port: f.Port, Username: f.Username, Password: f.Password, TLS: tls})
	return provider.Config{ID: "prv_1", Type: smtp.Type, Channel: message.Email, Credentials: creds, Sender: json.RawMessage(`{"from":"Äcme Støre <noreply@acme.example>"}`)}
}

func email(to string) provider.Message {
	return provider.Message{ID: "msg_abc", Channel: message.Email, To: to, Subject: "Grüße, your code: 123",
		Text: "Your code is 123 — thanks", HTML: "<p>Your code is <b>123</b></p>"}
}

func TestTLSModesAndAuthMechanisms(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts fakeprovider.SMTPOptions
		tls  string
	}{
		{"starttls with PLAIN", fakeprovider.SMTPOptions{}, smtp.StartTLS},
		{"implicit TLS", fakeprovider.SMTPOptions{Implicit: true}, smtp.Implicit},
		{"LOGIN only", fakeprovider.SMTPOptions{OnlyLogin: true}, smtp.StartTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fakeprovider.NewSMTP(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			a, err := smtp.New(cfg(f, tc.tls), provider.Env{RootCAs: f.RootCAs})
			if err != nil {
				t.Fatal(err)
			}
			res, err := a.Send(context.Background(), email("buyer@example.com"))
			if err != nil {
				t.Fatal(err)
			}
			got := f.Received()
			if len(got) != 1 || got[0].Subject != "Grüße, your code: 123" || got[0].Text != "Your code is 123 — thanks" ||
				got[0].HTML != "<p>Your code is <b>123</b></p>" || got[0].From != "noreply@acme.example" {
				t.Fatalf("received %+v", got)
			}
			if res.ProviderMessageID != "<msg_abc@acme.example>" || got[0].Extra["Message-ID"] != res.ProviderMessageID ||
				!strings.HasPrefix(got[0].Extra["Content-Type"], "multipart/alternative;") {
				t.Fatalf("message-id %q, headers %v", res.ProviderMessageID, got[0].Extra)
			}
		})
	}
}

func TestUnencryptedIsRefusedUnlessAllowed(t *testing.T) {
	f, err := fakeprovider.NewSMTP(fakeprovider.SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = smtp.New(cfg(f, smtp.NoTLS), provider.Env{})
	var verr *message.ValidationError
	if !errors.As(err, &verr) || verr.Fields[0].Field != "credentials.tls" {
		t.Fatalf("tls none without AllowInsecure: %v", err)
	}
	// Allowed, the server still will not take a password in the clear: auth_failed, nothing sent.
	a, err := smtp.New(cfg(f, smtp.NoTLS), provider.Env{AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Send(context.Background(), email("buyer@example.com"))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Code != provider.AuthFailed || len(f.Received()) != 0 {
		t.Fatalf("plaintext auth: %v", err)
	}
}

func TestBuildRefusesHeaderInjection(t *testing.T) {
	from, _ := mail.ParseAddress("noreply@acme.example")
	for name, m := range map[string]provider.Message{
		"subject":   {To: "a@example.com", Subject: "hi\r\nBcc: victim@example.com", Text: "x"},
		"recipient": {To: "a@example.com\r\nBcc: victim@example.com", Subject: "hi", Text: "x"},
		"id":        {ID: "msg\nX-Evil: 1", To: "a@example.com", Subject: "hi", Text: "x"},
		"header":    {To: "a@example.com", Subject: "hi", Text: "x", Headers: map[string]string{"List-Unsubscribe": "<https://x>\r\nBcc: victim@example.com"}},
		"name":      {To: "a@example.com", Subject: "hi", Text: "x", Headers: map[string]string{"Bcc: victim@example.com\r\nX": "1"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, out, err := smtp.Build(from, m, time.Now()); err == nil {
				t.Fatalf("built:\n%s", out)
			}
		})
	}
	// Non-ASCII subjects are encoded words, never raw bytes in a header.
	_, out, err := smtp.Build(from, provider.Message{To: "a@example.com", Subject: "Grüße", Text: "x"}, time.Now())
	if err != nil || !strings.Contains(string(out), "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=") {
		t.Fatalf("%v\n%s", err, out)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(out)))
	if err != nil || msg.Header.Get("Bcc") != "" {
		t.Fatalf("%v", err)
	}
}

// FuzzBuild: whatever the subject, recipient and bodies, a built message parses back with exactly
// the headers we wrote and the same text.
func FuzzBuild(f *testing.F) {
	f.Add("hello", "Body", "a@example.com")
	f.Add("Grüße\r\nBcc: x@y", "line\r\n.\r\nQUIT", "a@example.com")
	from, _ := mail.ParseAddress("Acme <noreply@acme.example>")
	f.Fuzz(func(t *testing.T, subject, text, to string) {
		_, out, err := smtp.Build(from, provider.Message{ID: "msg_1", To: to, Subject: subject, Text: text}, time.Unix(0, 0))
		if err != nil {
			return
		}
		msg, err := mail.ReadMessage(strings.NewReader(string(out)))
		if err != nil {
			t.Fatalf("unparsable: %v\n%q", err, out)
		}
		for k := range msg.Header {
			switch k {
			case "From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type", "Content-Transfer-Encoding":
			default:
				t.Fatalf("injected header %q from %q / %q", k, subject, to)
			}
		}
		gotText, _, err := fakeprovider.ParseMIMEBody(msg)
		if err != nil {
			t.Fatal(err)
		}
		// Mail has no bare CR or LF (RFC 5322 2.3): every line break arrives as CRLF.
		lines := strings.NewReplacer("\r\n", "\n", "\r", "\n")
		if lines.Replace(gotText) != lines.Replace(text) {
			t.Fatalf("text changed: %q → %q", text, gotText)
		}
	})
}
