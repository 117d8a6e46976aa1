package message

import "unicode/utf16"

// SMS encodings.
const (
	GSM7 = "GSM-7"
	UCS2 = "UCS-2"
)

// SMSSize is how the network carries an SMS body: its encoding, its length in that encoding's
// units, and how many segments (billed separately by every carrier) it takes.
type SMSSize struct {
	Encoding string `json:"encoding"` // GSM-7 or UCS-2
	// Units is the length as the network counts it: GSM-7 septets (the extension characters
	// ^ { } [ ] ~ \ | € and form feed take two) or UCS-2 code units (a character outside the
	// Basic Multilingual Plane, such as most emoji, takes two).
	Units    int `json:"characters"`
	Segments int `json:"segments"`
}

// Segment capacities (3GPP TS 23.038 and 23.040): a message that does not fit in one segment is
// split into concatenated segments, each losing room to the concatenation header.
const (
	gsmSingle, gsmMulti = 160, 153
	ucsSingle, ucsMulti = 70, 67
)

// MeasureSMS returns the size of body as an SMS. A body made only of the GSM 03.38 default
// alphabet and its extension table is sent as GSM-7; anything else makes the whole body UCS-2.
// A character is never split between segments: an extension character's escape stays with it,
// and a surrogate pair stays together, as carriers split them.
func MeasureSMS(body string) SMSSize {
	widths := make([]int, 0, len(body))
	enc := GSM7
	for _, r := range body {
		w := gsmWidth(r)
		if w == 0 {
			enc = UCS2
			break
		}
		widths = append(widths, w)
	}
	if enc == UCS2 {
		widths = widths[:0]
		for _, r := range body {
			widths = append(widths, utf16.RuneLen(r))
		}
	}
	units := 0
	for _, w := range widths {
		units += w
	}
	single, multi := gsmSingle, gsmMulti
	if enc == UCS2 {
		single, multi = ucsSingle, ucsMulti
	}
	size := SMSSize{Encoding: enc, Units: units, Segments: 1}
	if units <= single {
		return size
	}
	used := 0
	for _, w := range widths {
		if used+w > multi {
			size.Segments++
			used = 0
		}
		used += w
	}
	return size
}

// gsmWidth is r's length in GSM-7 septets: 1 in the default alphabet, 2 in the extension table
// (escape + character), 0 when GSM-7 cannot carry it.
func gsmWidth(r rune) int {
	if r < 0x80 && gsmASCII[r] {
		return 1
	}
	switch r {
	case '^', '{', '}', '\\', '[', '~', ']', '|', '€', '\f':
		return 2
	case '£', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', 'Ø', 'ø', 'Å', 'å', 'Δ', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ',
		'Æ', 'æ', 'ß', 'É', '¤', '¡', 'Ä', 'Ö', 'Ñ', 'Ü', '§', '¿', 'ä', 'ö', 'ñ', 'ü', 'à':
		return 1
	}
	return 0
}

// gsmASCII marks the ASCII characters of the GSM 03.38 default alphabet: every printable one but
// ` and the extension characters, plus line feed and carriage return.
var gsmASCII = func() (t [128]bool) {
	for r := ' '; r <= '~'; r++ {
		t[r] = true
	}
	for _, r := range "`^{}\\[~]|" {
		t[r] = false
	}
	t['\n'], t['\r'] = true, true
	return t
}()
