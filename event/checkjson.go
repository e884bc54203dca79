package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// JSONError reports bytes that are not one unambiguous JSON value in the sense of RFC 8259
// and I-JSON (RFC 7493): malformed JSON, empty input, data after the value, an object with
// the same member name twice, or a string that is not valid Unicode (invalid UTF-8, or a
// \u escape of an unpaired UTF-16 surrogate). It is permanent: the same bytes always fail.
type JSONError struct {
	// Offset is the byte offset in the document where the problem is: for a syntax error
	// as encoding/json counts it, for a bad string the offset of the offending byte or
	// escape, for a duplicate key the offset just after the second occurrence.
	Offset int64
	// Msg says what is wrong, e.g. `duplicate key "issueTitle" at /eventData` or
	// "invalid UTF-8 in string".
	Msg string
}

// Error returns e.g. `invalid JSON at byte 41: duplicate key "issueTitle" at /`, the
// format of package schema's SyntaxError.
func (e *JSONError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// CheckJSON reports, as a *JSONError, why data is not a single JSON value with one meaning:
//
//   - a syntax error, empty input or trailing data, as encoding/json words it;
//   - an object member name given twice at any depth, compared after unescaping (so "a"
//     and "\u0061" are the same name): `invalid JSON at byte 95: duplicate key "severity"
//     at /eventData`, where the JSON pointer names the object ("/" for the top level);
//   - invalid UTF-8 inside a string: "invalid JSON at byte 123: invalid UTF-8 in string";
//   - a \u escape of an unpaired UTF-16 surrogate: "invalid JSON at byte 40: unpaired
//     surrogate \ud800 in string".
//
// encoding/json would otherwise accept the first with the last value winning and replace
// the others with U+FFFD, so that one document could be read two ways (a second
// "issueTitle" re-routing an event). Every decoder in this package and in package schema
// calls it, and an ingress should call it at its door so that it refuses what the intake
// would dead-letter as invalid_json. It builds no tree and allocates little: json.Valid,
// utf8.Valid and one scan of the bytes, each linear (a 256 KiB document takes a few
// milliseconds).
func CheckJSON(data []byte) error {
	if !json.Valid(data) {
		return syntaxError(data)
	}
	// Outside strings a valid JSON text is ASCII, so invalid UTF-8 can only be in a string.
	if !utf8.Valid(data) {
		at := firstInvalidUTF8(data)
		return &JSONError{Offset: int64(at), Msg: "invalid UTF-8 in string"}
	}
	return walkKeys(data)
}

// syntaxError describes why json.Valid refused data.
func syntaxError(data []byte) *JSONError {
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
		return &JSONError{Offset: int64(len(data)), Msg: "empty document"}
	}
	var se *json.SyntaxError
	if err := json.Unmarshal(data, new(json.RawMessage)); errors.As(err, &se) {
		return &JSONError{Offset: se.Offset, Msg: se.Error()}
	}
	return &JSONError{Msg: "not a single JSON value"}
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(data)
}

// frame is one open container of the walk.
type frame struct {
	object bool
	// keys are the member names seen so far in an object: a short list first, a map once
	// the object is large, so small objects cost no map.
	keys    [][]byte
	keySet  map[string]struct{}
	key     []byte // current member name, for an object
	index   int    // current element index, for an array
	wantKey bool   // for an object: the next string is a member name
}

const smallObject = 16

// seen records name (unescaped; it may share memory with the document) in f and reports
// whether it was there already.
func (f *frame) seen(name []byte) bool {
	if f.keySet != nil {
		if _, ok := f.keySet[string(name)]; ok {
			return true
		}
		f.keySet[string(name)] = struct{}{}
		return false
	}
	for _, k := range f.keys {
		if bytes.Equal(k, name) {
			return true
		}
	}
	f.keys = append(f.keys, name)
	if len(f.keys) > smallObject {
		f.keySet = make(map[string]struct{}, 2*len(f.keys))
		for _, k := range f.keys {
			f.keySet[string(k)] = struct{}{}
		}
		f.keys = nil
	}
	return false
}

// walkKeys scans a document that json.Valid accepted, in one pass, for duplicate member
// names and unpaired surrogate escapes. Because the syntax is known to be right, it only
// needs to follow strings and brackets.
func walkKeys(data []byte) error {
	var stack []frame
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{', '[':
			stack = append(stack, frame{object: data[i] == '{', wantKey: data[i] == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if f := &stack[len(stack)-1]; f.object {
				f.wantKey = true
			} else {
				f.index++
			}
		case '"':
			end, escaped := stringEnd(data, i)
			raw := data[i : end+1]
			if escaped && bytes.Contains(raw, []byte(`\u`)) {
				if err := checkEscapes(raw, int64(i)); err != nil {
					return err
				}
			}
			if len(stack) > 0 && stack[len(stack)-1].wantKey {
				f := &stack[len(stack)-1]
				f.wantKey = false
				name := raw[1 : len(raw)-1]
				if escaped {
					var s string // Unmarshal of a string json.Valid accepted cannot fail
					_ = json.Unmarshal(raw, &s)
					name = []byte(s)
				}
				if f.seen(name) {
					return &JSONError{Offset: int64(end + 1), Msg: fmt.Sprintf("duplicate key %s at %s", quoteKey(string(name)), pointerOf(stack[:len(stack)-1]))}
				}
				f.key = name
			}
			i = end
		}
	}
	return nil
}

// stringEnd returns the index of the quote that closes the string opening at data[start],
// and whether the string holds an escape.
func stringEnd(data []byte, start int) (end int, escaped bool) {
	for i := start + 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i, escaped
		}
	}
	return len(data) - 1, escaped
}

// pointerOf renders the JSON pointer of the container whose parents are given, each at its
// current member or element; "/" for the top level.
func pointerOf(parents []frame) string {
	if len(parents) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, f := range parents {
		b.WriteByte('/')
		if f.object {
			b.WriteString(escapePointerToken(string(f.key)))
		} else {
			b.WriteString(strconv.Itoa(f.index))
		}
	}
	return b.String()
}

// quoteKey quotes a member name for a message, bounded so a huge key cannot flood a log.
func quoteKey(k string) string {
	const maxKey = 128
	if len(k) > maxKey {
		cut := maxKey
		for cut > 0 && !utf8.RuneStart(k[cut]) {
			cut--
		}
		return strconv.Quote(k[:cut]) + "..."
	}
	return strconv.Quote(k)
}

// checkEscapes scans the raw bytes of one string, quotes included, for \u escapes of
// UTF-16 surrogates that do not form a pair.
func checkEscapes(raw []byte, base int64) error {
	i := bytes.IndexByte(raw, '"')
	if i < 0 {
		return nil
	}
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			return nil
		case '\\':
			if i+1 >= len(raw) {
				return nil
			}
			if raw[i+1] != 'u' {
				i++
				continue
			}
			r1, ok := hex4(raw, i+2)
			if !ok {
				return nil
			}
			if !utf16.IsSurrogate(r1) {
				i += 5
				continue
			}
			if r1 < 0xdc00 && i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if r2, ok := hex4(raw, i+8); ok && utf16.DecodeRune(r1, r2) != utf8.RuneError {
					i += 11
					continue
				}
			}
			return &JSONError{Offset: base + int64(i), Msg: fmt.Sprintf(`unpaired surrogate %s in string`, raw[i:i+6])}
		}
	}
	return nil
}

func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw[at:at+4]), 16, 32)
	return rune(v), err == nil
}
