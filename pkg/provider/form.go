package provider

import (
	"reflect"
	"strings"
)

// FormField is one field of a config's credentials or sender, as a form shows it. Adapters
// describe their fields with struct tags, beside the JSON names they decode:
//
//	AuthToken string `json:"auth_token" form:"Auth token;secret;hint=32 letters or digits"`
//
// The tag holds the label, then any of: secret (typed into a password field and never shown
// again), optional, hint=text. A field without a form tag is labelled by its JSON name.
type FormField struct {
	Name     string // the JSON name: "auth_token"
	Label    string
	Secret   bool
	Optional bool
	Number   bool // a JSON number rather than a string
	List     bool // a JSON array of strings, typed comma-separated
	// Multiline is a value pasted whole, line breaks included: a key file (form tag "multiline").
	Multiline bool
	Hint      string
}

// FormFields lists the fields of v, a struct (or pointer to one) such as an adapter's
// Credentials, in declaration order. It returns nil for nil.
func FormFields(v any) []FormField {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []FormField
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		k := sf.Type.Kind()
		f := FormField{Name: name, Label: name, Number: k >= reflect.Int && k <= reflect.Float64, List: k == reflect.Slice}
		for j, part := range strings.Split(sf.Tag.Get("form"), ";") {
			switch hint, isHint := strings.CutPrefix(part, "hint="); {
			case j == 0 && part != "":
				f.Label = part
			case part == "secret":
				f.Secret = true
			case part == "optional":
				f.Optional = true
			case part == "multiline":
				f.Multiline = true
			case isHint:
				f.Hint = hint
			}
		}
		out = append(out, f)
	}
	return out
}
