package all_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	_ "github.com/logicspike/comms/pkg/provider/all"
)

// Every type offered to tenants describes its form, and the form's field names are the ones
// its adapter decodes: a config with every field filled is never refused for an unknown field.
func TestFormFieldsAreTheFieldsAdaptersRead(t *testing.T) {
	for _, r := range provider.Registrations() {
		if r.OperatorOnly {
			continue
		}
		creds, sender := provider.FormFields(r.Credentials), provider.FormFields(r.Sender)
		if len(creds) == 0 {
			t.Errorf("%s: no credential fields", r.Type)
		}
		fill := func(fields []provider.FormField) json.RawMessage {
			m := map[string]any{}
			for _, f := range fields {
				if f.Label == f.Name || f.Label == "" {
					t.Errorf("%s: %s has no label", r.Type, f.Name)
				}
				switch {
				case f.Number:
					m[f.Name] = 1
				case f.List:
					m[f.Name] = []string{"x"}
				default:
					m[f.Name] = "x"
				}
			}
			b, _ := json.Marshal(m)
			return b
		}
		_, err := r.New(provider.Config{ID: "prv_x", Type: r.Type, Channel: r.Channels[0], Credentials: fill(creds), Sender: fill(sender)}, provider.Env{})
		var verr *message.ValidationError
		if !errors.As(err, &verr) {
			continue // every field filled with "x" may even be valid
		}
		for _, f := range verr.Fields {
			if strings.Contains(f.Message, "not a known field") {
				t.Errorf("%s: the form offers %s, which the adapter does not read", r.Type, f.Field)
			}
		}
	}
}
