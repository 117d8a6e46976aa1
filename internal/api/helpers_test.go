package api_test

import (
	"encoding/json"
	"net/http"
)

func jsonDecode(resp *http.Response, out any) error { return json.NewDecoder(resp.Body).Decode(out) }
