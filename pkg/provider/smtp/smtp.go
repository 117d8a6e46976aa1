// Package smtp sends email through a tenant's own SMTP server: implicit TLS or STARTTLS, AUTH
// PLAIN or LOGIN, and a multipart/alternative MIME message with a Message-ID we control.
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Type is the provider type name.
const Type = "smtp"

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "SMTP", Channels: []message.Channel{message.Email},
		New: provider.Build(New), Credentials: Credentials{}, Sender: Sender{},
	})
}

// TLS modes.
const (
	StartTLS = "starttls"
	Implicit = "implicit"
	NoTLS    = "none"
)

// Credentials locate and authenticate against the server.
type Credentials struct {
	Host     string `json:"host" form:"Host;hint=smtp.example.com"`
	Port     int    `json:"port" form:"Port;hint=587"`
	Username string `json:"username" form:"Username;optional"`
	Password string `json:"password" form:"Password;secret;optional"`
	TLS      string `json:"tls" form:"TLS;hint=starttls or implicit"`
}

// Sender is the From address, optionally with a display name: "Acme <noreply@acme.example>".
type Sender struct {
	From    string   `json:"from" form:"From;hint=Acme <noreply@acme.example>"`
	Domains []string `json:"domains,omitempty" form:"Verified domains;optional;hint=other domains a message's own from may use, comma-separated"`
}

// AllowsFrom reports whether a message may name from as its sender: an address on the domain of
// the config's from or on one of its verified domains.
func (s Sender) AllowsFrom(from string) bool {
	return provider.EmailFromAllowed(from, s.From, s.Domains)
}

// Adapter is one SMTP config.
type Adapter struct {
	creds   Credentials
	from    *mail.Address
	domains []string
	env     provider.Env
}

// New validates cfg and returns its adapter; validation errors are a *message.ValidationError.
func New(cfg provider.Config, env provider.Env) (*Adapter, error) {
	var f provider.Fields
	a := Adapter{env: env}
	var sender Sender
	f.Decode("credentials", cfg.Credentials, &a.creds)
	f.Decode("sender", cfg.Sender, &sender)
	if cfg.Channel != message.Email {
		f.Add("channel", "smtp sends email only")
	}
	c := &a.creds
	if f.Required("credentials.host", c.Host) && (strings.ContainsAny(c.Host, "/:@ ") && net.ParseIP(c.Host) == nil) {
		f.Add("credentials.host", "must be a host name or IP address, without scheme or port")
	}
	if c.Port == 0 {
		c.Port = map[string]int{Implicit: 465, StartTLS: 587}[c.TLS]
	}
	if c.Port < 1 || c.Port > 65535 {
		f.Add("credentials.port", "must be between 1 and 65535")
	}
	switch c.TLS {
	case StartTLS, Implicit:
	case NoTLS:
		if !env.AllowInsecure {
			f.Add("credentials.tls", `"none" would send the password and the mail unencrypted; use "starttls" or "implicit"`)
		}
	case "":
		f.Add("credentials.tls", `is required: "starttls", "implicit" or "none"`)
	default:
		f.Add("credentials.tls", `must be "starttls", "implicit" or "none"`)
	}
	f.Clean("credentials.username", c.Username)
	f.Clean("credentials.password", c.Password)
	if c.Username != "" && c.Password == "" {
		f.Add("credentials.password", "is required with a username")
	}
	f.Domains("sender.domains", sender.Domains)
	a.domains = sender.Domains
	if f.Required("sender.from", sender.From) {
		addr, err := mail.ParseAddress(sender.From)
		if err != nil {
			f.Add("sender.from", "must be an email address such as \"Acme <noreply@acme.example>\"")
		} else {
			a.from = addr
		}
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return &a, nil
}

// Mask identifies the account: the username's ends and the server.
func (a *Adapter) Mask() string {
	host := a.creds.Host + ":" + strconv.Itoa(a.creds.Port)
	if a.creds.Username == "" {
		return host
	}
	return provider.Mask(a.creds.Username) + " @ " + host
}

// Public is the non-secret part of the config, shown to the tenant.
func (a *Adapter) Public() any { return Sender{From: a.from.String(), Domains: a.domains} }

// Send delivers one message in one SMTP session.
func (a *Adapter) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	from := a.from
	if m.From != "" { // a message's own from wins, in the header and the envelope
		addr, err := mail.ParseAddress(m.From)
		if err != nil {
			return provider.Result{}, provider.Failure(Type, provider.InvalidSender, "", "from: "+err.Error())
		}
		from = addr
	}
	msgID, body, err := Build(from, m, time.Now())
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.ContentRejected, "", err.Error())
	}
	if err := a.deliver(ctx, from.Address, m.To, body); err != nil {
		return provider.Result{}, classify(ctx, err)
	}
	return provider.Result{ProviderMessageID: msgID}, nil
}

// step marks which SMTP command failed, since the same reply code means different things at
// MAIL (the sender), RCPT (the recipient) and DATA (the content).
type step struct {
	name string
	err  error
}

func (s *step) Error() string { return s.name + ": " + s.err.Error() }
func (s *step) Unwrap() error { return s.err }

func (a *Adapter) deliver(ctx context.Context, from, to string, body []byte) error {
	addr := net.JoinHostPort(a.creds.Host, strconv.Itoa(a.creds.Port))
	conn, err := a.env.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &step{"connect", err}
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	tlsCfg := &tls.Config{ServerName: a.creds.Host, RootCAs: a.env.RootCAs, MinVersion: tls.VersionTLS12}
	var c *gosmtp.Client
	switch a.creds.TLS {
	case Implicit:
		c = gosmtp.NewClient(tls.Client(conn, tlsCfg))
	case StartTLS:
		if c, err = gosmtp.NewClientStartTLS(conn, tlsCfg); err != nil {
			return &step{"starttls", err}
		}
	default:
		c = gosmtp.NewClient(conn)
	}
	defer c.Close()
	if a.creds.Username != "" {
		var auth sasl.Client
		switch {
		case c.SupportsAuth(sasl.Plain):
			auth = sasl.NewPlainClient("", a.creds.Username, a.creds.Password)
		case c.SupportsAuth(sasl.Login):
			auth = sasl.NewLoginClient(a.creds.Username, a.creds.Password)
		default:
			return &step{"auth", errors.New("the server offers neither AUTH PLAIN nor AUTH LOGIN")}
		}
		if err := c.Auth(auth); err != nil {
			return &step{"auth", err}
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return &step{"mail", err}
	}
	if err := c.Rcpt(to, nil); err != nil {
		return &step{"rcpt", err}
	}
	w, err := c.Data()
	if err != nil {
		return &step{"data", err}
	}
	if _, err := w.Write(body); err != nil {
		return &step{"data", err}
	}
	if err := w.Close(); err != nil {
		return &step{"data", err}
	}
	_ = c.Quit()
	return nil
}

func classify(ctx context.Context, err error) error {
	var st *step
	name := ""
	if errors.As(err, &st) {
		name = st.name
	}
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		raw := strconv.Itoa(se.Code)
		if se.EnhancedCode != gosmtp.NoEnhancedCode && se.EnhancedCode != (gosmtp.EnhancedCode{}) {
			raw += " " + fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		msg := name + ": " + se.Message
		switch {
		case se.Code == 535 || se.Code == 534 || se.Code == 530 || se.Code == 538 || name == "auth":
			return provider.Failure(Type, provider.AuthFailed, raw, msg)
		case se.Code >= 400 && se.Code < 500:
			if se.EnhancedCode[1] == 7 || strings.Contains(strings.ToLower(se.Message), "rate") {
				return provider.Failure(Type, provider.RateLimited, raw, msg)
			}
			return provider.Failure(Type, provider.ProviderUnavailable, raw, msg)
		case name == "mail" || se.EnhancedCode[1] == 1 && (se.EnhancedCode[2] == 7 || se.EnhancedCode[2] == 8):
			// X.1.7 and X.1.8 are a bad sender address, which servers such as Postfix report
			// at RCPT rather than MAIL.
			return provider.Failure(Type, provider.InvalidSender, raw, msg)
		case name == "rcpt":
			return provider.Failure(Type, provider.InvalidRecipient, raw, msg)
		case name == "data":
			return provider.Failure(Type, provider.ContentRejected, raw, msg)
		}
		e := provider.Failure(Type, provider.Unknown, raw, msg)
		e.Permanent = true
		return e
	}
	if name == "auth" {
		// No mechanism we can use: the account cannot log in as configured.
		return provider.Failure(Type, provider.AuthFailed, "", err.Error())
	}
	e := provider.Unreachable(ctx, Type, err)
	var certErr *tls.CertificateVerificationError
	if e.Code != provider.Timeout && (errors.As(err, &certErr) || name == "starttls") {
		// A certificate or TLS setup problem needs the tenant to fix its server or its settings.
		e.Permanent = true
	}
	return e
}
