package api

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckJSONFindsRepeatedKeysInObjectsOfAnySize(t *testing.T) {
	for _, n := range []int{2, fewKeys, fewKeys + 1, 500} {
		var keys []string
		for i := range n {
			keys = append(keys, fmt.Sprintf(`"k%d":1`, i))
		}
		clean := `{"a":[{"b":{` + strings.Join(keys, ",") + `}}]}`
		if p := checkJSON([]byte(clean)); p != nil {
			t.Fatalf("%d distinct keys: %+v", n, p)
		}
		dup := `{"a":[{"b":{` + strings.Join(keys, ",") + `,"k1":2}}]}`
		p := checkJSON([]byte(dup))
		if p == nil || p.Status != 400 || p.Errors[0].Field != "a[0].b.k1" {
			t.Fatalf("%d keys and a repeat: %+v", n, p)
		}
	}
}
