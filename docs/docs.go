// Package docs embeds the API's OpenAPI document, so the API serves the spec it was built with,
// and the browsable reference that renders it (Redoc, bundled: nothing is fetched from a CDN).
package docs

import (
	"embed"
	_ "embed"
)

// OpenAPI is openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Reference is the page served at /docs and its scripts (see reference/update.sh).
//
//go:embed reference/index.html reference/init.js reference/redoc.standalone.js
var Reference embed.FS
