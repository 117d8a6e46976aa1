// Package docs embeds the API's OpenAPI document, so the API serves the spec it was built with.
package docs

import _ "embed"

// OpenAPI is openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte
