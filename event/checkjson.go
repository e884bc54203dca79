package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// Error returns e.g. `invalid JSON at byte 57: duplicate key "issueTitle" at /`, the
// format of package schema's SyntaxError.
func (e *JSONError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// CheckJSON reports, as a *JSONError, why data is not a single JSON value with one meaning:
//
//   - a syntax error, empty input or trailing data, as encoding/json words it;
//   - an object member name given twice at any depth, compared after unescaping (so "a"
//     and "\u0061" are the same name): `invalid JSON at byte 57: duplicate key "issueTitle"
//     at /eventData`, where the JSON pointer names the object ("/" for the top level);
//   - invalid UTF-8 inside a string: "invalid JSON at byte 123: invalid UTF-8 in string";
//   - a \u escape of an unpaired UTF-16 surrogate: "invalid JSON at byte 40: unpaired
//     surrogate \ud800 in string".
//
// encoding/json would otherwise accept the first with the last value winning and replace
// the others with U+FFFD, so that one document could be read two ways (a second
// "issueTitle" re-routing an event). Every decoder in this package and in package schema
// calls it, and an ingress should call it at its door so that it refuses what the intake
// would dead-letter as invalid_json. It reads data once, in one streaming pass.
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
	keys   map[string]struct{} // member names seen, for an object
	key    string              // current member name, for an object
	index  int                 // current element index, for an array
}

// walkKeys streams the tokens of a document json.Valid accepted and finds duplicate member
// names and unpaired surrogate escapes.
func walkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []frame
	// expectKey is true where the next string token of an object is a member name.
	expectKey := false
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil { // json.Valid said otherwise; keep the contract anyway
			return &JSONError{Offset: dec.InputOffset(), Msg: err.Error()}
		}
		end := dec.InputOffset()
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) > 0 {
					advance(&stack[len(stack)-1])
				}
				stack = append(stack, frame{object: t == '{', index: -1})
				expectKey = t == '{'
			case '}', ']':
				stack = stack[:len(stack)-1]
				expectKey = len(stack) > 0 && stack[len(stack)-1].object
			}
			continue
		case string:
			if strings.ContainsRune(t, utf8.RuneError) {
				if err := checkEscapes(data[start:end], start); err != nil {
					return err
				}
			}
			if expectKey {
				f := &stack[len(stack)-1]
				if f.keys == nil {
					f.keys = make(map[string]struct{})
				}
				if _, dup := f.keys[t]; dup {
					return &JSONError{Offset: end, Msg: fmt.Sprintf("duplicate key %s at %s", quoteKey(t), pointerOf(stack[:len(stack)-1]))}
				}
				f.keys[t] = struct{}{}
				f.key = t
				expectKey = false
				continue
			}
		}
		// A scalar value.
		if len(stack) > 0 {
			advance(&stack[len(stack)-1])
			expectKey = stack[len(stack)-1].object
		}
	}
}

// advance moves an array frame to its next element and marks an object frame's member as
// read (the next string is a name again).
func advance(f *frame) {
	if !f.object {
		f.index++
	}
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
			b.WriteString(strings.ReplaceAll(strings.ReplaceAll(f.key, "~", "~0"), "/", "~1"))
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

// checkEscapes scans the raw bytes of one string token (with any whitespace, colon or comma
// before it) for \u escapes of UTF-16 surrogates that do not form a pair.
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
