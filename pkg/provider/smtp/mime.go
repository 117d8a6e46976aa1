package smtp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/provider"
)

// errHeaderInjection is returned when a value bound for a header holds a line break.
var errHeaderInjection = errors.New("a header value contains a line break")

// Build renders m as an RFC 5322 message from from: UTF-8 subject encoded per RFC 2047, text and
// html as quoted-printable parts of multipart/alternative, and a Message-ID made from our message
// id, which it returns. No caller-supplied value can add a header: line breaks are refused.
func Build(from *mail.Address, m provider.Message, now time.Time) (msgID string, out []byte, err error) {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return "", nil, fmt.Errorf("recipient %q: %w", m.To, err)
	}
	for _, v := range []string{m.Subject, m.ID, from.Name, to.Name} {
		if strings.ContainsAny(v, "\r\n") {
			return "", nil, errHeaderInjection
		}
	}
	extra := m.SortedHeaders()
	for _, kv := range extra {
		if strings.ContainsAny(kv[0]+kv[1], "\r\n") || strings.ContainsAny(kv[0], ": ") {
			return "", nil, errHeaderInjection
		}
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	local := m.ID
	if local == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		local = hex.EncodeToString(b)
	}
	msgID = "<" + local + "@" + domain + ">"

	var buf bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	h("From", from.String()) // mail.Address.String encodes a non-ASCII display name
	h("To", to.String())
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", now.UTC().Format(time.RFC1123Z))
	h("Message-ID", msgID)
	for _, kv := range extra {
		h(kv[0], kv[1])
	}
	h("MIME-Version", "1.0")

	part := func(w *multipart.Writer, ctype, body string) error {
		p, err := w.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {ctype + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return err
		}
		qp := quotedprintable.NewWriter(p)
		if _, err := qp.Write([]byte(body)); err != nil {
			return err
		}
		return qp.Close()
	}
	switch {
	case m.Text != "" && m.HTML != "":
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		h("Content-Type", `multipart/alternative; boundary="`+w.Boundary()+`"`)
		buf.WriteString("\r\n")
		if err := part(w, "text/plain", m.Text); err != nil {
			return "", nil, err
		}
		if err := part(w, "text/html", m.HTML); err != nil {
			return "", nil, err
		}
		if err := w.Close(); err != nil {
			return "", nil, err
		}
		buf.Write(body.Bytes())
	default:
		ctype, text := "text/plain", m.Text
		if m.HTML != "" {
			ctype, text = "text/html", m.HTML
		}
		h("Content-Type", ctype+"; charset=utf-8")
		h("Content-Transfer-Encoding", "quoted-printable")
		buf.WriteString("\r\n")
		qp := quotedprintable.NewWriter(&buf)
		if _, err := qp.Write([]byte(text)); err != nil {
			return "", nil, err
		}
		if err := qp.Close(); err != nil {
			return "", nil, err
		}
	}
	return msgID, buf.Bytes(), nil
}
