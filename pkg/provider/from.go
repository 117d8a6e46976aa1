package provider

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// FromRule is implemented by a provider type's Sender when it limits what a message's own from
// may be: the config's own sender, and the other domains or numbers it lists as verified with
// the provider. A type whose Sender does not implement it (a custom webhook: the tenant's
// endpoint decides) takes any from.
type FromRule interface {
	AllowsFrom(from string) bool
}

// AllowsFrom reports whether a config of type typ with sender may send a message whose own from
// is from. An empty from is always allowed: the config's sender is used.
func AllowsFrom(typ string, sender json.RawMessage, from string) bool {
	return FromRuleOf(typ, sender)(from)
}

// FromRuleOf decodes a config's sender once and returns its rule, for callers that check many
// messages against one config.
func FromRuleOf(typ string, sender json.RawMessage) func(from string) bool {
	reg, ok := Lookup(typ)
	if !ok || reg.Sender == nil {
		return anyFrom
	}
	t := reflect.TypeOf(reg.Sender)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	v := reflect.New(t)
	rule, ok := v.Interface().(FromRule)
	if !ok {
		return anyFrom
	}
	if len(sender) > 0 {
		if err := json.Unmarshal(sender, v.Interface()); err != nil {
			return noOwnFrom // a stored sender always decodes; if one does not, send only from it
		}
	}
	return func(from string) bool { return from == "" || rule.AllowsFrom(from) }
}

func anyFrom(string) bool { return true }

func noOwnFrom(from string) bool { return from == "" }

// EmailFromAllowed is the rule of the email adapters: from's domain is the domain of the
// config's own from address, or one of domains (matched exactly, without case: a subdomain is
// verified on its own).
func EmailFromAllowed(from, configFrom string, domains []string) bool {
	d := EmailDomain(from)
	if d == "" {
		return false
	}
	if d == EmailDomain(configFrom) {
		return true
	}
	return slices.ContainsFunc(domains, func(v string) bool { return strings.EqualFold(strings.TrimSpace(v), d) })
}

// EmailDomain is the lower-cased domain of an address ("Acme <a@Acme.example>" → "acme.example"),
// or "" for something that is not an address.
func EmailDomain(address string) string {
	a, err := mail.ParseAddress(address)
	if err != nil {
		return ""
	}
	_, d, ok := strings.Cut(a.Address, "@")
	if !ok {
		return ""
	}
	return strings.ToLower(d)
}

// MaxSenders bounds a config's list of other domains or numbers a message's from may name.
const MaxSenders = 100

// Domains records field as invalid unless every entry of ds is a domain name such as
// "mail.acme.example" (an email adapter's verified domains).
func (f *Fields) Domains(field string, ds []string) {
	if len(ds) > MaxSenders {
		f.Add(field, "may list at most %d domains", MaxSenders)
		return
	}
	for i, d := range ds {
		if !domainRE.MatchString(d) || len(d) > 253 {
			f.Add(fmt.Sprintf("%s[%d]", field, i), "must be a domain name such as mail.acme.example")
		}
	}
}

var domainRE = regexp.MustCompile(`^(?i)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
