package templates

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	msgprinter "golang.org/x/text/message"

	"github.com/logicspike/comms/pkg/message"
)

// Schema is a template's variable schema: a JSON Schema (2020-12 unless it says otherwise) for
// the data object a send supplies.
type Schema struct {
	doc      map[string]any // the schema as JSON, for the variable check
	compiled *jsonschema.Schema
}

// MaxSchemaBytes bounds a variable schema.
const MaxSchemaBytes = 64 << 10

// noLoader refuses every $ref outside the schema itself: a schema never reads a file or the network.
var noLoader = jsonschema.SchemeURLLoader{}

var printer = msgprinter.NewPrinter(language.English)

// ParseSchema compiles raw. An empty raw is the schema of templates without variables.
func ParseSchema(raw []byte) (*Schema, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte(`{"type":"object","properties":{}}`)
	}
	if len(raw) > MaxSchemaBytes {
		return nil, fmt.Errorf("is %d bytes; at most %d are allowed", len(raw), MaxSchemaBytes)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("is not JSON: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok || obj["type"] != "object" {
		return nil, errors.New(`must be a JSON Schema object with "type": "object" (it describes the data object)`)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader)
	c.AssertFormat()
	if err := c.AddResource("urn:comms:template-variables", doc); err != nil {
		return nil, fmt.Errorf("is not a valid JSON Schema: %w", err)
	}
	compiled, err := c.Compile("urn:comms:template-variables")
	if err != nil {
		return nil, fmt.Errorf("is not a valid JSON Schema: %s", oneLine(err.Error()))
	}
	return &Schema{doc: obj, compiled: compiled}, nil
}

// Validate checks data against the schema and names each fault under prefix ("template.data").
func (s *Schema) Validate(prefix string, data map[string]any) []message.FieldError {
	if data == nil {
		data = map[string]any{}
	}
	err := s.compiled.Validate(data)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []message.FieldError{{Field: prefix, Message: oneLine(err.Error())}}
	}
	var out []message.FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		field := strings.Join(append([]string{prefix}, e.InstanceLocation...), ".")
		if req, ok := e.ErrorKind.(*kind.Required); ok {
			for _, m := range req.Missing {
				out = append(out, message.FieldError{Field: field + "." + m, Message: "required"})
			}
			return
		}
		out = append(out, message.FieldError{Field: field, Message: e.ErrorKind.LocalizedString(printer)})
	}
	walk(verr)
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
