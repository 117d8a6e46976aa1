package client

// The types are generated from the API document by oapi-codegen (models only): the ecosystem's
// maintained generator, so each schema of docs/openapi.json is one Go type here, and
// TestTheTypesAreTheDocuments fails when they differ. oapi-overlay.yaml makes pointers of the
// optional fields whose zero means something (enabled: false, ttl_seconds: 0) and of a patch's
// fields; every other optional field is its type, left out when zero.
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml ../../docs/openapi.json
