package message

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestMeasureSMS(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       SMSSize
	}{
		{"empty", "", SMSSize{GSM7, 0, 1}},
		{"plain", "Your code is 123456", SMSSize{GSM7, 19, 1}},
		{"GSM accents and Greek", "Çà Δ £5 ¿ñ?", SMSSize{GSM7, 11, 1}},
		{"160 fit one segment", strings.Repeat("a", 160), SMSSize{GSM7, 160, 1}},
		{"161 take two of 153", strings.Repeat("a", 161), SMSSize{GSM7, 161, 2}},
		{"306 fill two", strings.Repeat("a", 306), SMSSize{GSM7, 306, 2}},
		{"307 take three", strings.Repeat("a", 307), SMSSize{GSM7, 307, 3}},
		{"extension characters count twice", "{€}", SMSSize{GSM7, 6, 1}},
		{"80 euros are 160 septets", strings.Repeat("€", 80), SMSSize{GSM7, 160, 1}},
		{"81 euros: 162 septets, 76 per segment", strings.Repeat("€", 81), SMSSize{GSM7, 162, 2}},
		// 152 plain septets and a euro would straddle the 153 boundary: the euro moves whole.
		{"an escape is never split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 10), SMSSize{GSM7, 164, 2}},
		{"an escape pushed into a third segment", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), SMSSize{GSM7, 306, 3}},
		{"backtick is not GSM", "`", SMSSize{UCS2, 1, 1}},
		{"one emoji makes it UCS-2, two units", "Hi 👋", SMSSize{UCS2, 5, 1}},
		{"70 fit one UCS-2 segment", strings.Repeat("ж", 70), SMSSize{UCS2, 70, 1}},
		{"71 take two of 67", strings.Repeat("ж", 71), SMSSize{UCS2, 71, 2}},
		{"a surrogate pair is never split", strings.Repeat("ж", 66) + "👋" + strings.Repeat("ж", 5), SMSSize{UCS2, 73, 2}},
		{"a surrogate pair at the boundary moves whole", strings.Repeat("ж", 66) + "👋" + strings.Repeat("ж", 66), SMSSize{UCS2, 134, 3}},
		{"Chinese", "您的验证码是", SMSSize{UCS2, 6, 1}},
	} {
		if got := MeasureSMS(tc.body); got != tc.want {
			t.Errorf("%s: MeasureSMS = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// FuzzMeasureSMS holds MeasureSMS to what every body must satisfy: GSM-7 only when every
// character is in the alphabet, units as UTF-16 counts them for UCS-2, and segments that hold the
// units without exceeding the capacities.
func FuzzMeasureSMS(f *testing.F) {
	for _, s := range []string{"", "hello", "€{}", "👋", strings.Repeat("a€", 120), strings.Repeat("ж👋", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !utf8.ValidString(body) {
			return // the API refuses invalid UTF-8 before anything is measured
		}
		got := MeasureSMS(body)
		gsm := true
		septets := 0
		for _, r := range body {
			w := gsmWidth(r)
			gsm = gsm && w > 0
			septets += w
		}
		single, multi := gsmSingle, gsmMulti
		switch {
		case gsm && got.Encoding == GSM7:
			if got.Units != septets {
				t.Fatalf("%q: %d units, want %d septets", body, got.Units, septets)
			}
		case !gsm && got.Encoding == UCS2:
			if n := len(utf16.Encode([]rune(body))); got.Units != n {
				t.Fatalf("%q: %d units, want %d UTF-16 units", body, got.Units, n)
			}
			single, multi = ucsSingle, ucsMulti
		default:
			t.Fatalf("%q: encoding %s, GSM-7 alphabet only: %v", body, got.Encoding, gsm)
		}
		switch {
		case got.Units <= single && got.Segments != 1:
			t.Fatalf("%q: %d units in %d segments, want 1", body, got.Units, got.Segments)
		case got.Units > single && (got.Segments*multi < got.Units || (got.Segments-1)*(multi-1) >= got.Units):
			// Each segment but the last holds at least multi-1 units: a character moved whole to
			// the next segment leaves at most one unit unused.
			t.Fatalf("%q: %d units in %d segments of %d", body, got.Units, got.Segments, multi)
		}
	})
}
