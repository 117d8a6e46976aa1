package api

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
)

// inboxEmbed is the <comms-inbox> element (docs/inbox.md#embedding-the-inbox).
//
//go:embed embed/comms-inbox.js
var inboxEmbed []byte

var inboxEmbedETag = func() string { h := sha256.Sum256(inboxEmbed); return `"` + hex.EncodeToString(h[:8]) + `"` }()

// serveInboxEmbed serves the <comms-inbox> script to any page: it holds no secret, and a page
// loads it with a script tag, which needs no CORS.
func serveInboxEmbed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("ETag", inboxEmbedETag)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Header.Get("If-None-Match") == inboxEmbedETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(inboxEmbed)
}
