package sample

import (
	"time"
	"unicode/utf8"
)

// jw appends one JSON object to a byte slice without reflection or maps.
// The loader writes every sample document through it: encoding/json on
// nested map[string]any cost the loader ~60 µs of CPU per document — half a
// core at 10k docs/s, taken from the search engine on the same machine.
// Keys are written in the order given; callers never repeat a key.
type jw struct {
	b     []byte
	first bool // no member written yet in the innermost object
}

func (w *jw) open() { w.b = append(w.b, '{'); w.first = true }

func (w *jw) close() { w.b = append(w.b, '}'); w.first = false }

func (w *jw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = appendJSONString(w.b, k)
	w.b = append(w.b, ':')
}

// obj starts a member holding an object; close it with close.
func (w *jw) obj(k string) { w.key(k); w.open() }

func (w *jw) str(k, v string) { w.key(k); w.b = appendJSONString(w.b, v) }

// time writes t as RFC 3339 with nanoseconds, as encoding/json writes a
// time.Time's String of the same layout.
func (w *jw) time(k string, t time.Time) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted per RFC 8259: quote, backslash and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (as
// encoding/json does), everything else verbatim.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
