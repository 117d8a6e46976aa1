package fakeprovider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/logicspike/comms/pkg/provider"
)

// SMTP is an SMTP server (github.com/emersion/go-smtp) with STARTTLS or implicit TLS over a
// certificate for 127.0.0.1, and AUTH PLAIN and LOGIN against one user.
type SMTP struct {
	recorder
	Addr               string
	Host               string
	Port               int
	Username, Password string
	RootCAs            *x509.CertPool // trusts the server's certificate
	Sessions           atomic.Int64
	srv                *gosmtp.Server
	onlyLogin          bool
}

// SMTPOptions choose how the server behaves.
type SMTPOptions struct {
	Implicit  bool // TLS from the first byte (port 465 style); otherwise STARTTLS is offered
	OnlyLogin bool // advertise AUTH LOGIN only
}

// SMTP replies for each class, as real servers send them (Postfix defers sender rejections to
// RCPT, so a bad sender is refused there with 5.1.8).
var smtpErrors = map[provider.Code]*gosmtp.SMTPError{
	provider.InvalidRecipient:    {Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "User unknown in virtual mailbox table"},
	provider.InvalidSender:       {Code: 553, EnhancedCode: gosmtp.EnhancedCode{5, 1, 8}, Message: "Sender address rejected: Domain not found"},
	provider.RateLimited:         {Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "Too many messages, slow down"},
	provider.ProviderUnavailable: {Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem"},
	provider.ContentRejected:     {Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "Message rejected as spam"},
}

// selfSigned borrows httptest's certificate, valid for 127.0.0.1 and localhost.
func selfSigned() (tls.Certificate, *x509.CertPool) {
	s := httptest.NewUnstartedServer(http.NotFoundHandler())
	s.StartTLS()
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return s.TLS.Certificates[0], pool
}

// NewSMTP starts a server on 127.0.0.1.
func NewSMTP(opts SMTPOptions) (*SMTP, error) {
	cert, pool := selfSigned()
	f := &SMTP{Username: "mailer@acme.example", Password: "smtp-pass-0123456789", RootCAs: pool, onlyLogin: opts.OnlyLogin}
	s := gosmtp.NewServer(&smtpBackend{f})
	s.Domain = "127.0.0.1"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.MaxMessageBytes = 10 << 20
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.Implicit {
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	f.srv, f.Addr = s, ln.Addr().String()
	host, port, _ := net.SplitHostPort(f.Addr)
	f.Host = host
	f.Port, _ = strconv.Atoi(port)
	go func() { _ = s.Serve(ln) }()
	return f, nil
}

// Close stops the server.
func (f *SMTP) Close() { _ = f.srv.Close() }

type smtpBackend struct{ f *SMTP }

func (b *smtpBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.f.Sessions.Add(1)
	return &smtpSession{f: b.f, conn: c}, nil
}

type smtpSession struct {
	f             *SMTP
	conn          *gosmtp.Conn
	authed        bool
	from, to      string
	rejectContent bool
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.f.onlyLogin {
		return []string{sasl.Login}
	}
	return []string{sasl.Plain, sasl.Login}
}

var errBadCreds = &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}

func (s *smtpSession) check(user, pass string) error {
	if _, isTLS := s.conn.TLSConnectionState(); !isTLS {
		return &gosmtp.SMTPError{Code: 538, EnhancedCode: gosmtp.EnhancedCode{5, 7, 11}, Message: "Encryption required for requested authentication mechanism"}
	}
	if user != s.f.Username || pass != s.f.Password {
		return errBadCreds
	}
	s.authed = true
	return nil
}

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return s.check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: s.check}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (s *smtpSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if !s.authed {
		return gosmtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if code, ok := s.f.failure(to); ok {
		if code == provider.ContentRejected {
			s.rejectContent = true // refused at DATA, as content filters do
		} else if e := smtpErrors[code]; e != nil {
			return e
		}
	}
	s.to = to
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.rejectContent {
		return smtpErrors[provider.ContentRejected]
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: "malformed message: " + err.Error()}
	}
	text, html, err := ParseMIMEBody(msg)
	if err != nil {
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: err.Error()}
	}
	subject, _ := new(mimeDecoder).DecodeHeader(msg.Header.Get("Subject"))
	s.f.record(Received{To: s.to, From: s.from, Subject: subject, Text: text, HTML: html,
		ProviderMessageID: msg.Header.Get("Message-ID"),
		Extra:             map[string]string{"Message-ID": msg.Header.Get("Message-ID"), "Content-Type": msg.Header.Get("Content-Type")},
		Raw:               string(raw)})
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to, s.rejectContent = "", "", false }
func (s *smtpSession) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (draft-murchison-sasl-login), which go-sasl does
// not provide: it asks for the username, then the password.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	gotUser  bool
	finished bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case l.finished:
		return nil, true, errors.New("unexpected response")
	case response == nil && !l.gotUser:
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	default:
		l.finished = true
		return nil, true, l.check(l.user, string(response))
	}
}
