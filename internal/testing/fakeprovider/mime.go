package fakeprovider

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

type mimeDecoder = mime.WordDecoder

// ParseMIMEBody returns the text and html parts of a message, decoding quoted-printable, and fails
// on anything a mail client could not read: it is how tests know the MIME is well formed.
func ParseMIMEBody(msg *mail.Message) (text, html string, err error) {
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return "", "", err
	}
	read := func(r io.Reader, enc string) (string, error) {
		if strings.EqualFold(enc, "quoted-printable") {
			r = quotedprintable.NewReader(r)
		}
		b, err := io.ReadAll(r)
		return string(b), err
	}
	switch mediaType {
	case "text/plain":
		text, err = read(msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
		return text, "", err
	case "text/html":
		html, err = read(msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
		return "", html, err
	case "multipart/alternative":
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return text, html, nil
			}
			if err != nil {
				return "", "", err
			}
			pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if err != nil {
				return "", "", err
			}
			s, err := read(p, p.Header.Get("Content-Transfer-Encoding"))
			if err != nil {
				return "", "", err
			}
			switch pt {
			case "text/plain":
				text = s
			case "text/html":
				html = s
			}
		}
	}
	return "", "", errors.New("unexpected content type " + mediaType)
}
