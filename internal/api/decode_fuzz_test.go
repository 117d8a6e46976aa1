package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/logicspike/comms/pkg/message"
)

// FuzzDecodeMessageRequest feeds arbitrary bodies to the POST /v1/messages decoder and validator.
// It must never panic; a problem must always carry a status and a detail; and whatever is
// accepted must survive a round trip through JSON unchanged, so what is stored is what was meant.
func FuzzDecodeMessageRequest(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"sms","to":"+14155550123","text":"hi"}`,
		`{"channel":"email","to":"Ada <ada@example.com>","subject":"s","html":"<b>x</b>","metadata":{"k":"v"}}`,
		`{"channel":"sms","to":"+14155550123","text":"x","bogus":1}`,
		`{"channel":"email","to":"a@example.com","subject":"a\r\nBcc: b@example.com","text":"x"}`,
		`[]`, `null`, `{"to":1}`, `{"channel":"sms"} {}`, "{\"text\":\"\xff\"}", `{"metadata":{"":""}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req message.Request
		if p := decodeBytes(body, &req); p != nil {
			if p.Status < 400 || p.Status > 499 || p.Detail == "" {
				t.Fatalf("problem without a 4xx status or detail: %+v", p)
			}
			return
		}
		err := req.Validate()
		var verr *message.ValidationError
		if err != nil {
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("validation error without fields: %v", err)
			}
			return
		}
		again, _ := json.Marshal(req)
		var back message.Request
		if p := decodeBytes(again, &back); p != nil {
			t.Fatalf("accepted request does not decode again: %s: %+v", again, p)
		}
		if !reflect.DeepEqual(normalize(req), normalize(back)) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, back)
		}
	})
}

func normalize(r message.Request) message.Request {
	if len(r.Metadata) == 0 {
		r.Metadata = nil
	}
	return r
}

func BenchmarkDecodeAndValidate(b *testing.B) {
	body := []byte(`{"channel":"email","to":"Ada <ada@example.com>","subject":"Your receipt","text":"Thanks for your order","metadata":{"order":"1234"}}`)
	b.ReportAllocs()
	for b.Loop() {
		var req message.Request
		if p := decodeBytes(body, &req); p != nil {
			b.Fatal(p)
		}
		if err := req.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeFastPathAgreesWithStrict holds the one-pass decode to the two-pass reference: whatever
// the fast path accepts, the strict path accepts with the same value, and every problem is the
// strict path's own.
func FuzzDecodeFastPathAgreesWithStrict(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"sms","to":"+14155550123","text":"hi"}`,
		`{"channel":"email","to":"a@example.com","subject":"s","text":"line\n\"two\"","metadata":{"to":"x","TO":"y"}}`,
		`{"channel":"sms","TO":"+14155550123","text":"hi"}`, `{"t\u006f":"+1","channel":"sms"}`,
		`{"channel":"sms","to":"+1","to":"+2"}`, `{"channel":"sms"} {}`, `{"channel":"sms"} `, `null`, `[]`,
		`{"metadata":{"a":[1,{"b":"}"}]},"text":"{"}`, `{"text" : "x" , "bogus" : 1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, strict message.Request
		pf := decodeBytes(body, &fast)
		ps := decodeStrict(body, &strict, knownFields(&strict))
		if (pf == nil) != (ps == nil) {
			t.Fatalf("%q: fast path problem %+v, strict path problem %+v", body, pf, ps)
		}
		if pf == nil && !reflect.DeepEqual(fast, strict) {
			t.Fatalf("%q: fast path decoded %+v, strict path %+v", body, fast, strict)
		}
		if pf != nil && (pf.Status != ps.Status || pf.Detail != ps.Detail) {
			t.Fatalf("%q: problems differ: %+v vs %+v", body, pf, ps)
		}
	})
}
