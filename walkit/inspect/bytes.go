package inspect

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Bytes is a key, value or path from the log, kept raw and printed for
// people: printable UTF-8 as a string, anything else as "base64:...", or
// everything as hex when Hex is set.
type Bytes struct {
	Raw []byte
	Hex bool
}

// IsZero reports an empty value, so that `json:",omitzero"` leaves it out.
func (b Bytes) IsZero() bool { return len(b.Raw) == 0 }

// Printable reports whether b is valid UTF-8 made only of printable runes
// and ordinary whitespace.
func (b Bytes) Printable() bool {
	if !utf8.Valid(b.Raw) {
		return false
	}
	for _, r := range string(b.Raw) {
		if !unicode.IsPrint(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}

// base64Prefix marks a value printed as base64. A printable value that
// starts with it is printed as base64 too, so the two never mix.
const base64Prefix = "base64:"

// MarshalText is the JSON form (a string): printable text as it is, any
// other value as base64:<base64>, and every value as bare hex digits in hex
// mode.
func (b Bytes) MarshalText() ([]byte, error) {
	switch {
	case b.Hex:
		return hex.AppendEncode(nil, b.Raw), nil
	case b.Printable() && !bytes.HasPrefix(b.Raw, []byte(base64Prefix)):
		return b.Raw, nil
	default:
		return base64.StdEncoding.AppendEncode([]byte(base64Prefix), b.Raw), nil
	}
}

// String is the text form: a quoted string when printable, base64:...
// when not, 0x... in hex mode.
func (b Bytes) String() string {
	switch {
	case b.Hex:
		return "0x" + hex.EncodeToString(b.Raw)
	case b.Printable():
		return strconv.Quote(string(b.Raw))
	default:
		return base64Prefix + base64.StdEncoding.EncodeToString(b.Raw)
	}
}

// Short is String cut to about limit characters, with the full size noted
// when anything was cut.
func (b Bytes) Short(limit int) string {
	s := b.String()
	if len(s) <= limit {
		return s
	}
	for limit > 0 && !utf8.RuneStart(s[limit]) {
		limit--
	}
	return s[:limit] + "...(" + strconv.Itoa(len(b.Raw)) + " bytes)"
}
