package api

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

var storableSeeds = []string{
	`{"channel":"sms","to":"+14155550123","text":"hi"}`,
	`{"channel":"sms","to":"+14155550123","text":"a\u0000b"}`,
	`{"channel":"email","to":"a@example.com","subject":"\u0000","text":"x"}`,
	`{"channel":"sms","to":"+14155550123","text":"x","metadata":{"k\u0000":"v"}}`,
	"{\"channel\":\"sms\",\"to\":\"+14155550123\",\"text\":\"\xff\xfe\"}",
	`{"channel":"sms","to":"+14155550123","text":"\ud800"}`,
	`{"channel":"sms","to":"+14155550123","text":"\udc00\ud800"}`,
	`{"channel":"sms","to":"+14155550123","text":"😀 \ud83d\ude00"}`,
	`{"channel":"email","to":"a@example.com","subject":"s","html":"\u00e9\u2028","metadata":{"\u00ff":"\u0001"}}`,
}

// FuzzAcceptedMessageIsStorable inserts every POST /v1/messages body that decoding and
// validation accept into a real PostgreSQL database: "accepted but unstorable" is the bug that let
// one tenant's NUL fail a shared batch for everyone, and this keeps it from coming back.
func FuzzAcceptedMessageIsStorable(f *testing.F) {
	for _, s := range storableSeeds {
		f.Add([]byte(s))
	}
	st := store.New(testenv.DB(f))
	tenant, err := st.CreateTenant(context.Background(), domain.NewTenant{Name: "fuzz", Plan: "free"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req message.Request
		if p := decodeBytes(body, &req); p != nil || req.Validate() != nil {
			return
		}
		_, err := testenv.Record(context.Background(), st, store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: tenant.ID, Request: req})
		if err != nil {
			t.Fatalf("accepted body could not be stored: %q: %v", body, err)
		}
	})
}

// FuzzAcceptedTextIsStorable holds the decoder's one rule for every endpoint: any string it
// accepts, at any depth, stores as PostgreSQL text, and any object it accepts stores as jsonb
// (provider credentials and settings are kept that way).
func FuzzAcceptedTextIsStorable(f *testing.F) {
	for _, s := range []string{
		`{"name":"acme","data":{"a":["b",{"c":"d"}]}}`,
		`{"name":"a\u0000","data":{}}`,
		`{"name":"x","data":{"k":"\u0000"}}`,
		`{"name":"x","data":["\ud800"]}`,
		`{"name":"x","data":{"k":1,"k":2}}`,
		"{\"name\":\"\xc3\x28\",\"data\":null}",
	} {
		f.Add([]byte(s))
	}
	pool := testenv.DB(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var in struct {
			Name string          `json:"name"`
			Data json.RawMessage `json:"data"`
		}
		if p := decodeBytes(body, &in); p != nil {
			return
		}
		if len(in.Data) == 0 {
			in.Data = json.RawMessage("null")
		}
		if _, err := pool.Exec(context.Background(), `SELECT $1::text, $2::text::jsonb`, in.Name, string(in.Data)); err != nil {
			t.Fatalf("accepted body could not be stored: %q: %v", body, err)
		}
	})
}
